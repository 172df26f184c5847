"""Read models for the customer API. Every query is scoped by account (invariant I4)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qixin.domain.delivery import reason_of
from qixin.domain.export import csv_header, csv_rows, safe_cell
from qixin.domain.numbers import mask, parse_numbers
from qixin.domain.timeparse import parse_time
from qixin.errors import QxError
from qixin.services.actor import Actor, UseCase
from qixin.store import exports as export_store
from qixin.store import reads
from qixin.store.db import Tx


def parse_id(value: str | int) -> int:
    """A message or batch id from a path: anything that is not a positive 64-bit integer is NOT_FOUND."""
    try:
        out = int(value)
    except (TypeError, ValueError) as e:
        raise QxError("NOT_FOUND") from e
    if not 0 < out < 2**63:
        raise QxError("NOT_FOUND")
    return out


def message(tx: Tx, account_id: int, message_id: str | int) -> dict[str, Any]:
    r = reads.message_row(tx, account_id, parse_id(message_id))
    if r is None:
        raise QxError("NOT_FOUND", "短信不存在")
    out = dict(zip(reads.MESSAGE_COLUMNS, r, strict=True))
    out["id"], out["batch_id"], out["refunded"] = str(out["id"]), str(out["batch_id"]), bool(out["refunded"])
    return out


def batch(tx: Tx, account_id: int, batch_id: str | int) -> dict[str, Any]:
    bid = parse_id(batch_id)
    r = reads.batch_row(tx, account_id, bid)
    if r is None:
        raise QxError("NOT_FOUND", "批次不存在")
    keys = ("id", "type", "signature", "total", "accepted", "rejected", "fee_li", "out_id", "created_at", "send_at")
    out = dict(zip(keys, r, strict=True))
    out["id"] = str(out["id"])
    out["status_counts"] = reads.batch_status_counts(tx, bid)
    return out


class Queries(UseCase):
    """What a customer (or staff for an account) reads about its messages and batches."""

    async def message(self, actor: Actor, message_id: str | int, account_id: int | None = None) -> dict[str, Any]:
        acct = actor.account_for(account_id)
        return await self.db.read_small(lambda tx: message(tx, acct, message_id))

    async def batch(self, actor: Actor, batch_id: str | int, account_id: int | None = None) -> dict[str, Any]:
        acct = actor.account_for(account_id)
        return await self.read(lambda tx: batch(tx, acct, batch_id))


STATUSES = ("accepted", "scheduled", "queued", "submitted", "delivered", "undelivered", "failed", "rejected",
            "expired", "cancelled")  # fmt: skip
MESSAGE_TYPES = ("verification", "notification", "marketing")
EXPORT_PAGE = 5000
EXPORT_COLUMNS = (
    "id", "batch_id", "account_id", "to", "carrier", "province", "type", "parts", "fee_li", "status", "carrier_stat",
    "carrier_err", "error_code", "reason", "out_id", "channel", "signature", "template_id", "created_at",
    "submitted_at", "done_at",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """What a message search may filter on (every field optional)."""

    number: str | None = None
    batch_id: str | None = None
    out_id: str | None = None
    status: str | None = None
    type: str | None = None
    template_id: str | None = None
    signature: str | None = None
    channel: str | None = None
    carrier: str | None = None
    province: str | None = None
    since: str | int | None = None  # ISO 8601 (naive = Beijing time) or Unix seconds
    until: str | int | None = None
    account_id: int | None = None  # staff only


def _conditions(f: MessageFilter, account_id: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"account_id": account_id}
    if f.number and f.number.startswith("tk_"):  # privacy numbers: messages sent to a token
        out["token"] = f.number
    elif f.number:
        parsed = parse_numbers([f.number])
        if not parsed.valid:
            raise QxError("NUMBER_INVALID", "查询号码格式错误")
        out["number"] = parsed.valid[0]
    if f.status is not None and f.status not in STATUSES:
        raise QxError("INVALID_REQUEST", "status 必须是 " + "、".join(STATUSES) + " 之一")
    if f.type is not None and f.type not in MESSAGE_TYPES:
        raise QxError("TYPE_INVALID")
    for name in ("batch_id", "template_id"):
        value = getattr(f, name)
        if value is not None:
            out[name] = parse_id(value)
    for name in ("out_id", "status", "type", "signature", "channel", "carrier", "province"):
        out[name] = getattr(f, name)
    out["since"] = parse_time(f.since)
    out["until"] = parse_time(f.until)
    return out


class MessageSearch(UseCase):
    """Search and export of messages: customers their own, staff any account (numbers masked unless the
    staff role may read numbers)."""

    def _scope(self, actor: Actor, f: MessageFilter) -> tuple[int | None, bool]:
        if actor.is_customer:
            return actor.account_id, True
        actor.require("accounts.read")
        return f.account_id, actor.may("numbers.read")

    def _item(self, r: Any, reveal: bool) -> dict[str, Any]:
        out = dict(zip(reads.SEARCH_COLUMNS, r, strict=True))
        out["id"], out["batch_id"] = str(out["id"]), str(out["batch_id"])
        if out["template_id"] is not None:
            out["template_id"] = str(out["template_id"])
        if not reveal:
            out["to"] = mask(out["to"])
        out["reason"] = reason_of(
            out.pop("protocol"), out["status"], out["carrier_stat"], out["carrier_err"], out["error_code"]
        )
        return out

    async def search(
        self, actor: Actor, f: MessageFilter, cursor: str | None = None, limit: int = 50,
        scan_window: int | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """One page, newest first; ``next_cursor`` continues after its last row (stable under inserts:
        new messages have larger ids and never shift a page).

        A failure status (undelivered, failed, rejected, expired) walks only the account's failed messages
        (index ix_messages_account_failed). Any other status, with ``scan_window`` (the console's records
        page), reads at most that many of the account's messages per page: the page may then hold fewer
        rows than ``limit`` with ``next_cursor`` set and ``scanned_to`` naming the oldest message id
        looked at, so "继续查找" goes on from there; without it (the API) the page is always full."""
        account_id, reveal = self._scope(actor, f)
        where = _conditions(f, account_id)
        if cursor:
            where["before_id"] = parse_id(cursor)
        limit = max(1, min(int(limit), 1000))
        bounded = (
            scan_window is not None and account_id is not None and where.get("status") is not None
            and where["status"] not in reads.FAILED_STATUSES
            and not any(where.get(k) is not None for k in ("number", "token", "batch_id", "out_id"))
        )  # fmt: skip

        def q(tx: Tx) -> tuple[list[Any], int | None]:
            floor = None
            if bounded:
                assert account_id is not None and scan_window is not None
                floor = reads.scan_floor(tx, account_id, where.get("before_id"), scan_window)
                where["min_id"] = floor
            return reads.search_messages(tx, where, limit + 1), floor

        rows, floor = await self.read(q)
        items = [self._item(r, reveal) for r in rows[:limit]]
        if actor.is_customer:
            for it in items:
                it.pop("account_id")
        if len(rows) > limit:
            return {"items": items, "next_cursor": items[-1]["id"]}
        if floor is not None:
            return {"items": items, "next_cursor": str(floor), "scanned_to": str(floor)}
        return {"items": items, "next_cursor": None}

    def rows(self, actor: Actor, f: MessageFilter) -> AsyncIterator[list[dict[str, Any]]]:
        """Every matching message, page by page (constant memory), for exports. The actor's rights and
        the filter are checked here, at the call, so a refusal comes before a streamed answer starts
        (found by schemathesis: a bad ``type`` broke a 200 CSV stream half-way)."""
        account_id, reveal = self._scope(actor, f)
        return self._pages(_conditions(f, account_id), reveal)

    def conditions(self, actor: Actor, f: MessageFilter) -> tuple[dict[str, Any], bool]:
        """The validated search conditions for ``actor`` (its scope included) and whether numbers are shown:
        what an export job stores at creation and later runs with ``pages`` (services/exports.py)."""
        account_id, reveal = self._scope(actor, f)
        return _conditions(f, account_id), reveal

    def pages(self, where: dict[str, Any], reveal: bool) -> AsyncIterator[list[dict[str, Any]]]:
        """Pages of the rows ``conditions`` chose, newest first, from ``where["before_id"]`` when given."""
        return self._pages(dict(where), reveal)

    async def _pages(self, where: dict[str, Any], reveal: bool) -> AsyncIterator[list[dict[str, Any]]]:
        while True:
            page = await self.read(lambda tx: reads.search_messages(tx, dict(where), EXPORT_PAGE))
            if not page:
                return
            yield [self._item(r, reveal) for r in page]
            if len(page) < EXPORT_PAGE:
                return
            where["before_id"] = int(page[-1][0])

    def export_csv(self, actor: Actor, f: MessageFilter) -> AsyncIterator[bytes]:
        """The search as CSV (UTF-8 with BOM, for Excel), streamed; cells escaped against formulas. Refusals
        (rights, filter) are raised at the call, before the first byte."""
        where, reveal = self.conditions(actor, f)
        return self._csv(where, reveal)

    async def _csv(self, where: dict[str, Any], reveal: bool) -> AsyncIterator[bytes]:
        yield csv_header(EXPORT_COLUMNS)
        async for data, _rows, _last_id in self.csv_pages(where, reveal):
            yield data

    async def csv_pages(self, where: dict[str, Any], reveal: bool) -> AsyncIterator[tuple[bytes, int, int]]:
        """The rows ``conditions`` chose as CSV lines, newest first (from ``where["before_id"]`` when given),
        page by page: (the page's CSV bytes, its rows, its last message id). The same text as the items of
        ``pages`` written cell by cell through ``safe_cell`` (domain/export.csv_rows), made in worker
        threads: a page is read (store/exports.export_rows) while the one before it is encoded, and the
        event loop only hands them on."""
        where, size = dict(where), EXPORT_PAGE

        def fetch(w: dict[str, Any]) -> asyncio.Future[list[Any]]:
            return asyncio.ensure_future(self.read(lambda tx: export_store.export_rows(tx, w, size)))

        nxt = fetch(dict(where))
        try:
            while True:
                rows = await nxt
                if not rows:
                    return
                last = int(rows[-1][0])
                more = len(rows) >= size
                if more:
                    nxt = fetch(where | {"before_id": last})
                yield await asyncio.to_thread(csv_rows, rows, reveal), len(rows), last
                if not more:
                    return
        finally:
            if not nxt.done():
                nxt.cancel()
                with contextlib.suppress(BaseException):
                    await nxt

    async def export_xlsx(self, actor: Actor, f: MessageFilter, path: Path) -> int:
        """The search as an XLSX file at ``path`` (openpyxl write-only mode: constant memory); returns rows."""
        from openpyxl import Workbook

        wb = Workbook(write_only=True)
        ws = wb.create_sheet("短信记录")
        ws.append(list(EXPORT_COLUMNS))
        n = 0
        async for page in self.rows(actor, f):
            for it in page:
                ws.append([safe_cell(it.get(c)) for c in EXPORT_COLUMNS])
            n += len(page)
        await asyncio.to_thread(wb.save, path)
        return n

    async def batch_report(self, actor: Actor, batch_id: str, account_id: int | None = None) -> dict[str, Any]:
        """Every number of a batch with its state and the carrier's codes, and the failures grouped by reason."""
        acct = actor.account_for(account_id)
        summary = await self.read(lambda tx: batch(tx, acct, batch_id))
        f = MessageFilter(batch_id=batch_id, account_id=acct)
        items: list[dict[str, Any]] = []
        async for page in self.rows(actor, f):
            items.extend(page)
        reasons: dict[str, int] = {}
        for it in items:
            if it["reason"]:
                reasons[it["reason"]] = reasons.get(it["reason"], 0) + 1
        keys = ("id", "to", "status", "carrier_stat", "carrier_err", "error_code", "reason", "done_at")
        return summary | {
            "failures_by_reason": reasons,
            "messages": [{k: it[k] for k in keys} for it in reversed(items)],
        }
