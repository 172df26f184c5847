"""Number status check (空号检测) use cases: check numbers, read a check, download its result packages.

Rules:
- ``check``: up to ``max_inline`` (1,000) numbers per request. Entries are normalised (+86 forms,
  spaces) and deduplicated (first seen wins); an entry that is not a mainland mobile number is
  answered ``empty`` by the number plan (``plan:invalid``). The evidence is read with one query per
  source (history, blacklist, complaints, ported numbers) for the whole request; the classes follow
  ``domain/numbercheck`` (documented rules). The upstream provider is asked only for the numbers the
  own evidence does not decide (``needs_upstream``), in one call.
- Billing (c000 3.1): each answered query costs the account's ``numcheck`` price (a price plan; without
  one the check is refused PRICE_NOT_SET); 库无 (``unknown``) and queries whose upstream timed out or
  failed are free. The fee is debited on the ledger (ref ``numcheck:<check id>``, so statements show
  number checks apart from SMS) in the SAME transaction that stores the check and its results, with
  the audit row; a balance that cannot pay refuses the whole check (INSUFFICIENT_BALANCE), nothing
  stored.
- Results stay readable by their account (``get``) and downloadable as the four packages 实号包 / 沉默号包
  / 空号包 / 风险包 (``package``: CSV or XLSX, cells escaped against formulas). The customer sees the
  numbers it submitted in full (they are its own input); logs show them masked.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from qixin.domain.delivery import reason_of
from qixin.domain.export import safe_cell
from qixin.domain.numbercheck import (
    CLASSES,
    PACKAGES,
    History,
    Rules,
    Upstream,
    Verdict,
    billing_key,
    decide,
    needs_upstream,
    own_verdict,
)
from qixin.domain.numbers import normalize_cn_mobile, prefix_table
from qixin.errors import QxError
from qixin.ids import ids
from qixin.services import billing
from qixin.services.actor import Actor, UseCase
from qixin.services.numberproviders import Provider
from qixin.services.pricing import Plan, load_plans, select_price
from qixin.store import numbercheck as store
from qixin.store.db import Database, Tx, now_ms

PACKAGE_COLUMNS = ("number", "class", "carrier", "province", "ported", "confidence", "evidence")


@dataclass(slots=True)
class Evidence:
    """The platform's own evidence for a set of numbers (one read)."""

    history: dict[str, History]
    blacklisted: set[str]
    complaints: dict[str, int]
    ported: dict[str, str]


def read_evidence(tx: Tx, numbers: Sequence[str]) -> Evidence:
    """Every own evidence source for ``numbers``: one query per source and chunk."""
    protocols = store.channel_protocols(tx)
    hist: dict[str, History] = {}
    reasons: dict[tuple[Any, ...], str] = {}
    for number, status, channel, stat, err, code, count, at in store.history(tx, numbers):
        h = hist.get(number)
        if h is None:
            h = hist[number] = History()
        at = int(at) if at is not None else 0
        if status == "delivered":
            if h.last_delivered_at is None or at > h.last_delivered_at:
                h.last_delivered_at = at
            continue
        key = (channel, status, stat, err, code)
        reason = reasons.get(key)
        if reason is None:
            reason = reasons[key] = reason_of(protocols.get(channel or ""), status, stat, err, code)
        if reason == "invalid_number":
            h.empty_receipts += int(count)
            if h.last_empty_at is None or at > h.last_empty_at:
                h.last_empty_at = at
        elif reason == "unreachable":
            h.unreachable_receipts += int(count)
            if h.last_unreachable_at is None or at > h.last_unreachable_at:
                h.last_unreachable_at = at
    return Evidence(
        hist, store.blacklisted(tx, numbers), store.complaint_counts(tx, numbers), store.ported(tx, numbers)
    )


def classify_all(
    numbers: Sequence[str], ev: Evidence, now: int, rules: Rules
) -> tuple[list[Verdict], list[tuple[str, str, bool]]]:
    """Own verdicts and (carrier, province, ported) for valid, normalised ``numbers``."""
    table = prefix_table()
    verdicts: list[Verdict] = []
    places: list[tuple[str, str, bool]] = []
    hist, black, compl, ported = ev.history, ev.blacklisted, ev.complaints, ev.ported
    for n in numbers:
        _, carrier, province = table.lookup_tuple(n)
        moved = ported.get(n)
        allocated = carrier != "unknown"
        verdicts.append(own_verdict(allocated, True, n in black, compl.get(n, 0), hist.get(n), now, rules))
        places.append((moved or carrier, province, moved is not None and moved != carrier))
    return verdicts, places


class NumberChecks(UseCase):
    """The number status check (空号检测)."""

    def __init__(
        self,
        db: Database,
        provider: Provider | None = None,
        rules: Rules = Rules(),
        max_inline: int = 1_000,
        price_ttl: float = 3.0,
    ) -> None:
        super().__init__(db)
        self.provider = provider
        self.rules = rules
        self.max_inline = max_inline
        self.price_ttl = price_ttl
        self._plans: dict[int, tuple[float, list[Plan]]] = {}

    async def unit_price(self, account_id: int) -> int:
        hit = self._plans.get(account_id)
        if hit is None or hit[0] <= time.monotonic():
            plans = await self.db.read(lambda tx: load_plans(tx, account_id))
            hit = self._plans[account_id] = (time.monotonic() + self.price_ttl, plans)
        li = select_price(hit[1], "numcheck", "", "", now_ms(), -1)
        if li < 0:
            raise QxError("PRICE_NOT_SET", product="numcheck")
        return li

    async def check(self, actor: Actor, numbers: Any, account_id: int | None = None) -> dict[str, Any]:
        """Check up to ``max_inline`` numbers now; answered per number (see the module rules)."""
        acct = actor.account_for(account_id, "accounts.write")
        if not isinstance(numbers, list) or not all(isinstance(x, str) for x in numbers):
            raise QxError("INVALID_REQUEST", "numbers 必须是字符串数组")
        entries: list[tuple[str, str | None]] = []  # (as written, normalised or None)
        seen: set[str] = set()
        for raw in numbers:
            text = raw.strip()
            if not text:
                continue
            n = normalize_cn_mobile(text)
            key = n if n is not None else "\0" + text
            if key in seen:
                continue
            seen.add(key)
            entries.append((n or text, n))
        if not entries:
            raise QxError("NUMBERS_EMPTY")
        if len(entries) > self.max_inline:
            raise QxError("TOO_MANY_NUMBERS", f"单次最多检测 {self.max_inline} 个号码")
        unit = await self.unit_price(acct)
        valid = [n for _, n in entries if n is not None]
        ev = await self.db.read(lambda tx: read_evidence(tx, valid))
        now = now_ms()
        own, places = classify_all(valid, ev, now, self.rules)
        asked = [n for n, v in zip(valid, own, strict=True) if needs_upstream(v, self.rules)]
        answers: dict[str, Upstream] = {}
        if asked and self.provider is not None:
            answers = await self.provider.check(asked)
        by_number = {n: (decide(v, answers.get(n)), place) for n, v, place in zip(valid, own, places, strict=True)}
        results: list[dict[str, Any]] = []
        rows: list[tuple[Any, ...]] = []
        counts = dict.fromkeys(CLASSES, 0)
        charged = 0
        for seq, (shown, n) in enumerate(entries):
            if n is None:
                verdict, (carrier, province, moved) = (
                    own_verdict(False, False, False, 0, None, now),
                    ("unknown", "", False),
                )
            else:
                verdict, (carrier, province, moved) = by_number[n]
            billed = billing_key(verdict) not in billing.NUMCHECK_UNCHARGED
            charged += billed
            counts[verdict.cls] += 1
            results.append({
                "number": shown, "class": verdict.cls, "carrier": carrier, "province": province, "ported": moved,
                "confidence": verdict.confidence, "evidence": verdict.evidence, "billed": billed,
            })  # fmt: skip
            rows.append((seq, shown, verdict.cls, carrier, province, moved, round(verdict.confidence * 1000),
                         " ".join(verdict.evidence), billed))  # fmt: skip
        fee = charged * unit
        check_id = ids.one()

        def write(tx: Tx) -> None:
            if fee:
                billing.debit(tx, acct, fee, f"numcheck:{check_id}", f"号码检测 {charged} 次")
            store.insert_check(tx, check_id, acct, actor.id, len(entries), charged, fee, unit, counts, now)
            store.insert_results(tx, check_id, rows)

        await self.change(
            actor, "numbers.check", f"numcheck:{check_id}", write,
            lambda _: {"account_id": acct, "total": len(entries), "charged": charged, "fee_li": fee, "counts": counts},
        )  # fmt: skip
        return {
            "check_id": str(check_id), "total": len(entries), "charged": charged, "unit_li": unit, "fee_li": fee,
            "counts": counts, "results": results,
        }  # fmt: skip

    async def _own_check(self, actor: Actor, check_id: str | int) -> tuple[int, Any]:
        from qixin.services.queries import parse_id

        cid = parse_id(check_id)
        row = await self.db.read(lambda tx: store.check_row(tx, cid))
        if row is None:
            raise QxError("NOT_FOUND")
        if actor.is_customer:
            if int(row[1]) != actor.account_id:
                raise QxError("NOT_FOUND")
        else:
            actor.require("accounts.read")
        return cid, row

    async def get(self, actor: Actor, check_id: str | int) -> dict[str, Any]:
        """A stored check: its summary and every result, in request order."""
        cid, row = await self._own_check(actor, check_id)
        items = [_item(r) for r in await self.db.read(lambda tx: store.results(tx, cid, limit=self.max_inline * 10))]
        return _summary(row) | {"results": items}

    async def package(self, actor: Actor, check_id: str | int, cls: str, fmt: str = "csv") -> tuple[str, bytes]:
        """One result package (实号包 real / 沉默号包 silent / 空号包 empty / 风险包 risk) as CSV or XLSX:
        (file name, bytes)."""
        if cls not in PACKAGES:
            raise QxError("INVALID_REQUEST", f"结果包必须是 {', '.join(PACKAGES)} 之一")
        if fmt not in ("csv", "xlsx"):
            raise QxError("INVALID_REQUEST", "格式必须是 csv 或 xlsx")
        cid, _ = await self._own_check(actor, check_id)
        items: list[dict[str, Any]] = []
        after = -1
        while True:
            page = await self.db.read(functools.partial(store.results, check_id=cid, cls=cls, after_seq=after))
            items += [_item(r) for r in page]
            if len(page) < 10_000:
                break
            after = int(page[-1][0])
        name = f"{PACKAGES[cls]}-{cid}.{fmt}"
        cells = [[safe_cell(_cell(it[c])) for c in PACKAGE_COLUMNS] for it in items]
        if fmt == "csv":
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\r\n")
            w.writerow(PACKAGE_COLUMNS)
            w.writerows(cells)
            return name, ("\ufeff" + buf.getvalue()).encode()
        return name, await asyncio.to_thread(_xlsx, PACKAGES[cls], cells)


def _cell(v: Any) -> Any:
    if isinstance(v, list):
        return " ".join(v)
    if isinstance(v, bool):
        return int(v)
    return v


def _xlsx(title: str, cells: list[list[Any]]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title)
    ws.append(list(PACKAGE_COLUMNS))
    for row in cells:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _item(r: Sequence[Any]) -> dict[str, Any]:
    return {
        "number": r[1], "class": r[2], "carrier": r[3], "province": r[4], "ported": bool(r[5]),
        "confidence": int(r[6]) / 1000, "evidence": str(r[7]).split() if r[7] else [], "billed": bool(r[8]),
    }  # fmt: skip


def _summary(row: Sequence[Any]) -> dict[str, Any]:
    return {
        "check_id": str(row[0]), "account_id": int(row[1]), "total": int(row[3]), "charged": int(row[4]),
        "fee_li": int(row[5]), "unit_li": int(row[6]), "counts": orjson.loads(row[7]), "created_at": int(row[8]),
    }  # fmt: skip
