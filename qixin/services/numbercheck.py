"""Number status check (空号检测) use cases: check numbers, read a check, download its result packages.

Rules:
- ``check``: up to ``max_inline`` (1,000) numbers per request. Entries are normalised (+86 forms,
  spaces) and deduplicated (first seen wins); an entry that is not a mainland mobile number is
  answered ``empty`` by the number plan (``plan:invalid``). The evidence is read with one query per
  source (history, blacklist, complaints, ported numbers) for the whole request; the classes follow
  ``domain/numbercheck`` (documented rules); a check of at most 100 numbers reads every source in one
  statement (one round trip on PostgreSQL), and the channels' protocols come from a 3-second cache. The
  upstream provider is asked only for the numbers the own evidence does not decide (``needs_upstream``),
  in one call.
- Billing (c000 3.1): each answered query costs the account's ``numcheck`` price (a price plan; without
  one the check is refused PRICE_NOT_SET); 库无 (``unknown``) and queries whose upstream timed out or
  failed are free. The fee is debited on the ledger (ref ``numcheck:<check id>``, so statements show
  number checks apart from SMS) in the SAME transaction that stores the check and its results, with
  the audit row; a balance that cannot pay refuses the whole check (INSUFFICIENT_BALANCE), nothing
  stored.
- Marks (skip in batch sends): the check's transaction also keeps, per account and number, the latest
  class when it is 空号 (empty) or 沉默号 (silent) (``number_marks``); a newer check that classes the
  number otherwise removes its mark. A send with ``skip_empty`` (and ``skip_silent``) refuses the
  numbers marked so by a check of the last ``skip_days`` days (``skippable``), per number with
  NUMBER_EMPTY_SKIPPED / NUMBER_SILENT_SKIPPED: neither sent nor billed (services/accept.py).
- Small checks (≤ ``COALESCE_MAX`` numbers) arriving together are coalesced into one evidence read and
  one write job, each check keeping its own id, results, ledger row and audit row (see ``_coalesced``).
- Results stay readable by their account (``get``) and downloadable as the four packages 实号包 / 沉默号包
  / 空号包 / 风险包 (``package``: CSV or XLSX, cells escaped against formulas). The customer sees the
  numbers it submitted in full (they are its own input); logs show them masked.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import functools
import gc
import io
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from qixin.domain.delivery import reason_of
from qixin.domain.export import safe_cell
from qixin.domain.numbercheck import (
    CLASSES,
    PACKAGES,
    History,
    OwnVerdicts,
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
from qixin.services.actor import Actor, UseCase, audit_many
from qixin.services.numberproviders import Provider
from qixin.services.pricing import Plan, load_plans, select_price
from qixin.store import numbercheck as store
from qixin.store.db import Database, Tx, now_ms

PAGE = 1_000  # results stored per row of number_check_pages (JSON)
GC_PAUSE_MIN = 10_000  # batches this large build their objects with the cyclic GC paused
GET_MAX = 10_000  # checks larger than this answer ``get`` without the per-number results (packages instead)
READ_SPLIT = 2  # a large batch's evidence is read in this many parts at once
MARKED = ("empty", "silent")  # the classes a batch send may skip (number_marks)
PACKAGE_COLUMNS = ("number", "class", "carrier", "province", "ported", "confidence", "evidence")
COALESCE_MAX = 10  # a check of at most this many numbers is coalesced with the checks waiting (``check``)
COALESCE_BATCH = 512  # checks per coalesced round
COALESCE_ROUNDS = 2  # coalesced rounds at once (one reads its evidence while another writes)


@dataclass(slots=True)
class _Waiting:
    """A small check waiting for its coalesced round."""

    actor: Actor
    account_id: int
    entries: list[tuple[str, str | None]]
    unit: int
    done: asyncio.Future[tuple[dict[str, Any], list[tuple[Any, ...]]]]


@dataclass(slots=True)
class Evidence:
    """The platform's own evidence for a set of numbers (one read)."""

    history: dict[str, History]
    blacklisted: set[str]
    complaints: dict[str, int]
    ported: dict[str, str]


def read_evidence(tx: Tx, numbers: Sequence[str], protocols: dict[str, str] | None = None) -> Evidence:
    """Every own evidence source for ``numbers``: one query per source and chunk; at most ``store.SMALL``
    numbers (a single check), one statement for all of them. ``protocols`` (channel -> protocol, to read
    receipt codes) is read too unless given."""
    with _gc_paused(len(numbers) >= GC_PAUSE_MIN):
        return _read_evidence(tx, numbers, protocols)


def _read_evidence(tx: Tx, numbers: Sequence[str], protocols: dict[str, str] | None = None) -> Evidence:
    if protocols is None:
        protocols = store.channel_protocols(tx)
    if len(numbers) <= store.SMALL:  # a single check: one statement for every source
        rows = store.evidence_small(tx, numbers)
        history = [r[1:] for r in rows if r[0] == "h"]
        black = {str(r[1]) for r in rows if r[0] == "b"}
        compl = {str(r[1]): int(r[7]) for r in rows if r[0] == "c"}
        moved = {str(r[1]): str(r[3]) for r in rows if r[0] == "p"}
        return Evidence(_history(history, protocols), black, compl, moved)
    hist = _history(store.history(tx, numbers), protocols)
    return Evidence(hist, *store.risk_and_ported(tx, numbers))


def _history(rows: Sequence[Sequence[Any]], protocols: dict[str, str]) -> dict[str, History]:
    hist: dict[str, History] = {}
    reasons: dict[tuple[Any, ...], str] = {}
    for number, status, channel, stat, err, code, count, at in rows:
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
    return hist


def classify_all(
    numbers: Sequence[str], ev: Evidence, now: int, rules: Rules
) -> tuple[list[Verdict], list[tuple[str, str, bool]]]:
    """Own verdicts and (carrier, province, ported) for valid, normalised ``numbers`` (numbers with the same
    evidence share one verdict object: ``OwnVerdicts``)."""
    lookup = prefix_table().lookup_tuple
    verdict = OwnVerdicts(now, rules).of
    verdicts: list[Verdict] = []
    places: list[tuple[str, str, bool]] = []
    hist, black, compl, ported = ev.history.get, ev.blacklisted, ev.complaints.get, ev.ported
    for n in numbers:
        _, carrier, province = lookup(n)
        verdicts.append(verdict(carrier != "unknown", n in black, compl(n, 0), hist(n)))
        if ported and n in ported:
            moved = ported[n]
            places.append((moved or carrier, province, moved != carrier))
        else:
            places.append((carrier, province, False))
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
        skip_days: int = 30,
    ) -> None:
        super().__init__(db)
        self.skip_days = skip_days
        self.provider = provider
        self.rules = rules
        self.max_inline = max_inline
        self.price_ttl = price_ttl
        self._plans: dict[int, tuple[float, list[Plan]]] = {}
        self._protocols: tuple[float, dict[str, str]] | None = None
        self._waiting: list[_Waiting] = []
        self._rounds = 0  # coalesced rounds running
        self._round_tasks: set[asyncio.Task[None]] = set()
        self.stats = {"coalesced_rounds": 0, "coalesced_checks": 0}

    async def unit_price(self, account_id: int) -> int:
        hit = self._plans.get(account_id)
        if hit is None or hit[0] <= time.monotonic():
            plans = await self.db.read(lambda tx: load_plans(tx, account_id))
            hit = self._plans[account_id] = (time.monotonic() + self.price_ttl, plans)
        li = select_price(hit[1], "numcheck", "", "", now_ms(), -1)
        if li < 0:
            raise QxError("PRICE_NOT_SET", product="numcheck")
        return li

    async def protocols(self) -> dict[str, str]:
        """Channel -> protocol (to read receipt codes), cached ``price_ttl`` seconds: a channel added since
        is read at the next refresh."""
        hit = self._protocols
        if hit is None or hit[0] <= time.monotonic():
            found = await self.db.read(store.channel_protocols)
            hit = self._protocols = (time.monotonic() + self.price_ttl, found)
        return hit[1]

    async def _evidence(self, valid: list[str]) -> Evidence:
        """The own evidence; a large batch is read in ``READ_SPLIT`` parts at once (each part on its own
        reader connection, so the database work of the parts overlaps)."""
        if len(valid) < GC_PAUSE_MIN:
            protocols = await self.protocols()
            return await self.db.read(lambda tx: read_evidence(tx, valid, protocols))
        size = -(-len(valid) // READ_SPLIT)
        parts = [valid[i : i + size] for i in range(0, len(valid), size)]
        found = await asyncio.gather(*(self.db.read(functools.partial(read_evidence, numbers=p)) for p in parts))
        ev = found[0]
        for more in found[1:]:
            ev.history.update(more.history)
            ev.blacklisted |= more.blacklisted
            ev.complaints.update(more.complaints)
            ev.ported.update(more.ported)
        return ev

    async def evaluate(
        self, entries: Sequence[tuple[str, str | None]], now: int, first_seq: int = 0
    ) -> tuple[list[tuple[Any, ...]], dict[str, int], int]:
        """Rows, counts per class and billed queries for normalised entries: the own evidence, the
        classes, the upstream for what they leave open."""
        valid = [n for _, n in entries if n is not None]
        own, places, answers = await self._verdicts(valid, now)
        with _gc_paused(len(valid) >= GC_PAUSE_MIN):
            return _rows(entries, valid, own, places, answers, now, first_seq)

    async def _verdicts(
        self, valid: list[str], now: int
    ) -> tuple[list[Verdict], list[tuple[str, str, bool]], dict[str, Upstream]]:
        """Own verdicts and places of distinct valid numbers, and the upstream's answers for those they
        leave open."""
        ev = await self._evidence(valid)
        with _gc_paused(len(valid) >= GC_PAUSE_MIN):
            own, places = classify_all(valid, ev, now, self.rules)
        asked = [n for n, v in zip(valid, own, strict=True) if needs_upstream(v, self.rules)]
        answers: dict[str, Upstream] = {}
        if asked and self.provider is not None:
            answers = await self.provider.check(asked)
        return own, places, answers

    async def check(self, actor: Actor, numbers: Any, account_id: int | None = None) -> dict[str, Any]:
        """Check up to ``max_inline`` numbers now; answered per number (see the module rules)."""
        out, rows = await self._run(actor, numbers, account_id, self.max_inline, coalesce=True)
        return out | {"results": [_item(r) for r in rows]}

    async def check_many(
        self, actor: Actor, numbers: Any, account_id: int | None = None, limit: int = 1_000_000
    ) -> dict[str, Any]:
        """Check up to ``limit`` numbers in one transaction; answered with the summary only (the results
        are read back with ``get`` / ``package``). For batch jobs and the bench."""
        out, _ = await self._run(actor, numbers, account_id, limit)
        return out

    async def _run(
        self, actor: Actor, numbers: Any, account_id: int | None, limit: int, coalesce: bool = False
    ) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
        acct = actor.account_for(account_id, "accounts.write")
        entries = normalized_entries(numbers, limit)
        unit = await self.unit_price(acct)
        if coalesce and len(entries) <= COALESCE_MAX:
            return await self._coalesced(actor, acct, entries, unit)
        now = now_ms()
        rows, counts, charged = await self.evaluate(entries, now)
        fee = charged * unit
        check_id = ids.one()
        pages = [orjson.dumps(rows[i : i + PAGE]).decode() for i in range(0, len(rows), PAGE)]

        def write(tx: Tx) -> None:
            if fee:
                billing.debit(tx, acct, fee, f"numcheck:{check_id}", f"号码检测 {charged} 次")
            store.insert_check(tx, check_id, acct, actor.id, len(entries), charged, fee, unit, counts, now)
            store.insert_pages(tx, check_id, pages)
            record_marks(tx, acct, rows, now)

        await self.change(
            actor, "numbers.check", f"numcheck:{check_id}", write,
            lambda _: {"account_id": acct, "total": len(entries), "charged": charged, "fee_li": fee, "counts": counts},
        )  # fmt: skip
        summary = {
            "check_id": str(check_id), "total": len(entries), "charged": charged, "unit_li": unit, "fee_li": fee,
            "counts": counts,
        }  # fmt: skip
        return summary, rows

    # -- small checks, coalesced ---------------------------------------------------------------------------
    # Checks of at most COALESCE_MAX numbers (single checks) that arrive while others are being processed
    # wait and go together, up to COALESCE_BATCH at a time: one evidence read for all their numbers, one
    # write job (per account: one conditional debit for their sum and one ledger row per check with its own
    # balance after — billing.debit_each —, their check rows, pages, marks and audit rows in a few
    # statements). Each check stays its own: its id, results, fee, ledger row and audit row; a check the
    # balance cannot pay is refused alone (INSUFFICIENT_BALANCE, nothing of it stored). A check arriving
    # when no round runs starts one at once (no added latency).

    async def _coalesced(
        self, actor: Actor, acct: int, entries: list[tuple[str, str | None]], unit: int
    ) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
        done: asyncio.Future[tuple[dict[str, Any], list[tuple[Any, ...]]]] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(actor, acct, entries, unit, done))
        if self._rounds < COALESCE_ROUNDS:
            self._rounds += 1
            task = asyncio.create_task(self._drain(), name="numcheck-coalesce")
            self._round_tasks.add(task)
            task.add_done_callback(self._round_tasks.discard)
        return await done

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[:COALESCE_BATCH]
                del self._waiting[:COALESCE_BATCH]
                try:
                    await self._coalesced_round(batch)
                except asyncio.CancelledError:
                    for w in batch:
                        w.done.cancel()
                    raise
                except Exception as e:
                    for w in batch:
                        if not w.done.done():
                            w.done.set_exception(e)
        finally:
            self._rounds -= 1

    async def _coalesced_round(self, batch: list[_Waiting]) -> None:
        now = now_ms()
        valid = list(dict.fromkeys(n for w in batch for _, n in w.entries if n is not None))
        own, places, answers = await self._verdicts(valid, now)
        by_number = {n: (v, place) for n, v, place in zip(valid, own, places, strict=True)}
        made = []
        for w in batch:
            rows, counts, charged = _rows_by(w.entries, by_number, answers, now)
            made.append((w, ids.one(), rows, counts, charged, charged * w.unit))

        def job(tx: Tx) -> dict[int, QxError]:
            refused: dict[int, QxError] = {}
            by_account: dict[int, list[int]] = {}
            for i, m in enumerate(made):
                by_account.setdefault(m[0].account_id, []).append(i)
            for acct, idx in by_account.items():
                paying = [i for i in idx if made[i][5]]
                charges = [(made[i][5], f"numcheck:{made[i][1]}", f"号码检测 {made[i][4]} 次") for i in paying]
                for i, err in zip(paying, billing.debit_each(tx, acct, charges), strict=True):
                    if err is not None:
                        refused[i] = err
            ok = [m for i, m in enumerate(made) if i not in refused]
            store.insert_checks(tx, [(cid, w.account_id, w.actor.id, len(w.entries), charged, fee, w.unit, counts, now)
                                     for w, cid, _, counts, charged, fee in ok])  # fmt: skip
            pages = [(cid, i // PAGE, orjson.dumps(rows[i : i + PAGE]).decode())
                     for _, cid, rows, _, _, _ in ok for i in range(0, len(rows), PAGE)]  # fmt: skip
            store.insert_pages_many(tx, pages)
            for acct, idx in by_account.items():
                last: dict[Any, tuple[Any, ...]] = {}  # a number checked twice in the round: the later check wins
                for i in idx:
                    if i not in refused:
                        last.update((r[1], r) for r in made[i][2])
                record_marks(tx, acct, list(last.values()), now)
            audit_many(tx, [(w.actor, "numbers.check", f"numcheck:{cid}", {
                "account_id": w.account_id, "total": len(w.entries), "charged": charged, "fee_li": fee,
                "counts": counts,
            }) for w, cid, _, counts, charged, fee in ok])  # fmt: skip
            return refused

        refused = await self.db.write(job)
        self.stats["coalesced_rounds"] += 1
        self.stats["coalesced_checks"] += len(batch)
        for i, (w, cid, rows, counts, charged, fee) in enumerate(made):
            if w.done.done():
                continue
            if i in refused:
                w.done.set_exception(refused[i])
                continue
            summary = {"check_id": str(cid), "total": len(w.entries), "charged": charged, "unit_li": w.unit,
                       "fee_li": fee, "counts": counts}  # fmt: skip
            w.done.set_result((summary, rows))

    async def skippable(self, account_id: int, numbers: Sequence[str], classes: Sequence[str]) -> dict[str, str]:
        """{number: class} of ``numbers`` that a check of the account in the last ``skip_days`` days classed
        as one of ``classes`` (of ``MARKED``): what a send with skip_empty / skip_silent leaves out."""
        wanted = [c for c in classes if c in MARKED]
        if not numbers or not wanted:
            return {}
        since = now_ms() - self.skip_days * 86_400_000
        read = self.db.read_small if len(numbers) <= 100 else self.db.read
        return await read(lambda tx: store.marks(tx, account_id, numbers, wanted, since))

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
        summary = _summary(row)
        if summary["total"] > GET_MAX:  # a large batch: its results are read as packages
            return summary | {"results": None, "results_note": "结果较多，请下载结果包"}
        return summary | {"results": [_item(r) for r in await self._rows(cid)]}

    async def _rows(self, cid: int, cls: str | None = None) -> list[list[Any]]:
        out: list[list[Any]] = []
        after = -1
        while True:
            pages = await self.db.read(functools.partial(store.pages, check_id=cid, after=after))
            for _, text in pages:
                rows = orjson.loads(text)
                out += rows if cls is None else [r for r in rows if r[2] == cls]
            if len(pages) < store.PAGES_PER_READ:
                return out
            after = int(pages[-1][0])

    async def package(self, actor: Actor, check_id: str | int, cls: str, fmt: str = "csv") -> tuple[str, bytes]:
        """One result package (实号包 real / 沉默号包 silent / 空号包 empty / 风险包 risk) as CSV or XLSX:
        (file name, bytes)."""
        cid, _ = await self._own_check(actor, check_id)  # first: another account's check is NOT_FOUND
        if cls not in PACKAGES:
            raise QxError("INVALID_REQUEST", f"结果包必须是 {', '.join(PACKAGES)} 之一")
        if fmt not in ("csv", "xlsx"):
            raise QxError("INVALID_REQUEST", "格式必须是 csv 或 xlsx")
        items = [_item(r) for r in await self._rows(cid, cls)]
        name = f"{PACKAGES[cls]}-{cid}.{fmt}"
        cells = [[safe_cell(_cell(it[c])) for c in PACKAGE_COLUMNS] for it in items]
        if fmt == "csv":
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\r\n")
            w.writerow(PACKAGE_COLUMNS)
            w.writerows(cells)
            return name, ("\ufeff" + buf.getvalue()).encode()
        return name, await asyncio.to_thread(_xlsx, PACKAGES[cls], cells)


def _rows(
    entries: Sequence[tuple[str, str | None]], valid: Sequence[str], own: Sequence[Verdict],
    places: Sequence[tuple[str, str, bool]], answers: dict[str, Upstream], now: int, first_seq: int = 0,
) -> tuple[list[tuple[Any, ...]], dict[str, int], int]:  # fmt: skip
    """The stored rows (seq, number, class, carrier, province, ported, confidence‰, evidence, billed), the
    counts per class and the number of billed queries."""
    by_number = {n: (v, place) for n, v, place in zip(valid, own, places, strict=True)}
    return _rows_by(entries, by_number, answers, now, first_seq)


def _rows_by(
    entries: Sequence[tuple[str, str | None]], by_number: dict[str, tuple[Verdict, tuple[str, str, bool]]],
    answers: dict[str, Upstream], now: int, first_seq: int = 0,
) -> tuple[list[tuple[Any, ...]], dict[str, int], int]:  # fmt: skip
    """``_rows`` with the verdict and place of each valid number given."""
    rows: list[tuple[Any, ...]] = []
    counts = dict.fromkeys(CLASSES, 0)
    charged = 0
    invalid = own_verdict(False, False, False, 0, None, now), ("unknown", "", False)
    # (class, confidence ‰, evidence text, billed) per verdict object: the own verdicts are shared by the
    # numbers with the same evidence (``OwnVerdicts``) and stay alive in ``by_number`` during the loop, so
    # their id is a stable key; a verdict combined with an upstream answer is a new object, never cached
    tails: dict[int, tuple[str, int, str, bool]] = {}
    for seq, (shown, n) in enumerate(entries, first_seq):
        verdict, (carrier, province, moved) = invalid if n is None else by_number[n]
        if answers and n in answers:
            cls, conf, evidence, billed = _tail(decide(verdict, answers[n]))
        else:
            tail = tails.get(id(verdict))
            if tail is None:
                tail = tails[id(verdict)] = _tail(verdict)
            cls, conf, evidence, billed = tail
        charged += billed
        counts[cls] += 1
        rows.append((seq, shown, cls, carrier, province, moved, conf, evidence, billed))
    return rows, counts, charged


def _tail(v: Verdict) -> tuple[str, int, str, bool]:
    return v.cls, round(v.confidence * 1000), " ".join(v.evidence), billing_key(v) not in billing.NUMCHECK_UNCHARGED


def record_marks(tx: Tx, account_id: int, rows: Sequence[Sequence[Any]], now: int) -> None:
    """Keep the 空号 / 沉默号 classes of a check's ``rows`` as the account's marks, replacing the older marks
    of every number it checked (a number now classed otherwise loses its mark)."""
    put: list[tuple[str, str]] = []
    unmarked: list[str] = []
    for r in rows:
        number = str(r[1])
        if len(number) != 11 or not number.isdigit():  # not a mainland mobile number: never sent to
            continue
        if r[2] in MARKED:
            put.append((number, str(r[2])))
        else:
            unmarked.append(number)
    store.replace_marks(tx, account_id, put, unmarked, now)


@contextlib.contextmanager
def _gc_paused(pause: bool) -> Iterator[None]:
    """The cyclic garbage collector off while a large batch builds its ~100,000s of small objects (none
    cyclic: reference counting frees them); its full collections cost more than the work itself."""
    if not pause or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def normalized_entries(numbers: Any, limit: int) -> list[tuple[str, str | None]]:
    """(as written, normalised 11 digits or None) per distinct entry, first seen first; blank entries
    skipped; NUMBERS_EMPTY / TOO_MANY_NUMBERS / INVALID_REQUEST."""
    if not isinstance(numbers, list) or not all(isinstance(x, str) for x in numbers):
        raise QxError("INVALID_REQUEST", "numbers 必须是字符串数组")
    entries: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    for raw in numbers:
        text = raw.strip()
        if not text:
            continue
        if len(text) == 11 and text.isascii() and text.isdigit() and text[0] == "1" and text[1] >= "3":
            n: str | None = text  # already the 11 digits normalize_cn_mobile answers (the usual entry)
        else:
            n = normalize_cn_mobile(text)
        key = n if n is not None else "\0" + text
        if key in seen:
            continue
        seen.add(key)
        entries.append((n or text, n))
    if not entries:
        raise QxError("NUMBERS_EMPTY")
    if len(entries) > limit:
        raise QxError("TOO_MANY_NUMBERS", f"单次最多检测 {limit} 个号码")
    return entries


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
        "confidence": r[6] / 1000, "evidence": r[7].split() if r[7] else [], "billed": bool(r[8]),
    }  # fmt: skip


def _summary(row: Sequence[Any]) -> dict[str, Any]:
    return {
        "check_id": str(row[0]), "account_id": int(row[1]), "total": int(row[3]), "charged": int(row[4]),
        "fee_li": int(row[5]), "unit_li": int(row[6]), "counts": orjson.loads(row[7]), "created_at": int(row[8]),
    }  # fmt: skip
