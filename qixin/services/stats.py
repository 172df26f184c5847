"""Statistics: rollups kept with every status change, and the queries over them.

Rules:
- A message counts in exactly one bucket of ``stats_hourly`` at any time: the hour it was accepted ×
  account × signature × template × type × carrier × province × channel × status × failure reason. Accept
  adds it; every status change moves it (minus one in the old bucket, plus one in the new) in the SAME
  transaction as the change, so rollups equal the message rows after any crash (``verify`` checks it;
  ``rebuild`` recomputes them from the rows).
- A transaction's moves are summed per bucket before they are written: one upsert per bucket, not per
  message (accepting 100,000 numbers writes a few dozen rows).
- Success rate = delivered / (delivered + undelivered + failed + expired); the failure reasons are
  domain.delivery's groups (空号, 关机/停机, …), computed from the carrier's codes when a message fails.
- Days are Asia/Shanghai days (UTC+8, no daylight saving: 24 whole hours).
- The same moves are summed into a lean rollup (``stats_hourly_core``: hour × account × type × carrier ×
  status × reason) in the same write (``store.add``); a query whose groups and filters are all among
  those dimensions reads it instead (a big account's 30 days: a few tens of thousands of rows, not
  millions). ``verify`` checks both against the message rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from qixin.domain import latency as latency_rules
from qixin.domain.calendar import SHANGHAI
from qixin.domain.delivery import FAILED_STATUSES, REASONS, reason_of
from qixin.domain.timeparse import parse_time
from qixin.errors import QxError
from qixin.services import latency
from qixin.services.actor import Actor, UseCase
from qixin.store import latency as latency_store
from qixin.store import retention as retention_store
from qixin.store import stats as store
from qixin.store.db import Tx, add_into, now_ms

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
SHANGHAI_OFFSET_MS = 8 * HOUR_MS
MAX_RANGE_MS = 400 * DAY_MS
RATE_STATUSES = ("delivered", "undelivered", "failed", "expired")


def hour_of(ms: int) -> int:
    return ms // HOUR_MS * HOUR_MS


@dataclass(frozen=True, slots=True)
class Change:
    """A message's new state: what a status transition writes."""

    status: str
    channel: str | None = None  # None: unchanged
    carrier_stat: str | None = None
    carrier_err: str | None = None
    error_code: str | None = None


@lru_cache(maxsize=4096)
def change(
    status: str,
    channel: str | None = None,
    carrier_stat: str | None = None,
    carrier_err: str | None = None,
    error_code: str | None = None,
) -> Change:
    """A shared ``Change`` (they are immutable, and the changes of one batch repeat a few values: one per
    channel at submit, one per receipt code at delivery), instead of a new object per message."""
    return Change(status, channel, carrier_stat, carrier_err, error_code)


def _move(tx: Tx, key: store.Key, messages: int, parts: int, fee_li: int) -> None:
    """Add to one bucket (negative to move messages out of it). The moves are summed per bucket over the
    whole group commit and written once before it commits (``Tx.count``), so concurrent single sends
    cost one upsert per bucket per group, not one per request."""
    tx.count(store.add, key, (messages, parts, fee_li))


def record_accept(
    tx: Tx,
    account_id: int,
    signature: str,
    template_id: int | None,
    msg_type: str,
    status: str,
    created_at: int,
    rows: Iterable[tuple[str, str, int, int]],
) -> None:
    """Newly accepted messages: ``rows`` of (carrier, province, parts, fee_li)."""
    hour = hour_of(created_at)
    # summed per (carrier, province) first: a 100,000-number batch has a few dozen, so a few dozen moves
    # (each builds a bucket key) instead of one per message
    sums: dict[tuple[str, str], list[int]] = {}
    for carrier, province, parts, fee in rows:
        v = sums.get((carrier, province))
        if v is None:
            sums[(carrier, province)] = [1, parts, fee]
        else:
            v[0] += 1
            v[1] += parts
            v[2] += fee
    tpl = template_id or 0
    for (carrier, province), (n, parts, fee) in sums.items():
        _move(tx, (hour, account_id, signature, tpl, msg_type, carrier, province, "", status, ""), n, parts, fee)


def current(tx: Tx, message_ids: Sequence[int]) -> dict[int, tuple[Any, ...]]:
    """Each message's bucket as stored now, with its receipt state: (created_at, account_id, signature,
    template_id, type, carrier, province, channel, status, parts, fee_li, carrier_stat, carrier_err,
    error_code, receipts_pending, submitted_at, send_at). A caller that needs the state too reads it here
    once and hands it to ``record_changes``."""
    return store.message_dims(tx, list(message_ids))


Dims = tuple[int, int, str, int, str, str, str, int, int]


def current_with(tx: Tx, dims: dict[int, Dims]) -> dict[int, tuple[Any, ...]]:
    """``current`` for messages whose fixed dimensions the caller holds (``dims``: id -> (created_at,
    account_id, signature, template_id, type, carrier, province, parts, fee_li), e.g. from the
    dispatcher's claim): reads only their state, and returns rows as ``current`` does (up to
    error_code)."""
    out: dict[int, tuple[Any, ...]] = {}
    for mid, (channel, status, stat, err, code) in store.message_states(tx, list(dims)).items():
        created, account, sig, tpl, mtype, carrier, prov, parts, fee = dims[mid]
        out[mid] = (created, account, sig, tpl, mtype, carrier, prov, channel, status, parts, fee, stat, err, code)
    return out


def record_changes(tx: Tx, changes: dict[int, Change], now: dict[int, tuple[Any, ...]] | None = None) -> None:
    """Move the changed messages between buckets. Call BEFORE the statement that writes ``changes``
    (it reads each message's current bucket, unless ``now`` holds them from ``current``), in the same
    transaction."""
    if not changes:
        return
    current = store.message_dims(tx, list(changes)) if now is None else now
    protocols: dict[str, str] | None = None  # read only when a failure needs its channel's code table
    acc = tx.counters(store.add)  # what _move adds to, summed per bucket over the group commit
    for mid, ch in changes.items():
        row = current.get(mid)
        if row is None:
            continue
        created, account, sig, tpl, mtype, carrier, prov, channel, status, parts, fee, stat, err, code = row[:14]
        new_channel = channel if ch.channel is None else ch.channel
        if ch.status == status and new_channel == channel:
            continue
        if protocols is None and (status in FAILED_STATUSES or ch.status in FAILED_STATUSES):
            protocols = store.protocols(tx)
        hour = hour_of(int(created))
        old_reason = reason_of(protocols.get(channel), status, stat, err, code) if protocols else ""
        new_reason = (
            reason_of(protocols.get(new_channel), ch.status, ch.carrier_stat, ch.carrier_err, ch.error_code)
            if protocols
            else ""
        )
        base = (hour, int(account), sig, int(tpl), mtype, carrier, prov)
        parts, fee = int(parts), int(fee)
        add_into(acc, (*base, channel, status, old_reason), (-1, -parts, -fee))  # _move's two moves, without
        add_into(acc, (*base, new_channel, ch.status, new_reason), (1, parts, fee))  # a counter lookup each


def record_changed(tx: Tx, message_ids: Sequence[int], was: str) -> None:
    """Messages a statement already changed, all from status ``was`` (reason "", channel unchanged): for
    statements that choose their rows themselves (the receipt timeout's UPDATE … RETURNING)."""
    if not message_ids:
        return
    current = store.message_dims(tx, list(message_ids))
    protocols = store.protocols(tx)
    for (
        created,
        account,
        sig,
        tpl,
        mtype,
        carrier,
        prov,
        channel,
        status,
        parts,
        fee,
        stat,
        err,
        code,
        *_rest,
    ) in current.values():
        base = (hour_of(int(created)), int(account), sig, int(tpl), mtype, carrier, prov, channel)
        _move(tx, (*base, was, ""), -1, -int(parts), -int(fee))
        _move(tx, (*base, status, reason_of(protocols.get(channel), status, stat, err, code)), 1, int(parts), int(fee))


def retained_since(tx: Tx) -> int:
    """The first hour whose messages are all still stored: the retention purge's mark rounded up to an hour
    (0 when nothing was purged). Rollups of earlier hours outlive their purged messages."""
    mark = retention_store.mark(tx)
    return -(-mark // HOUR_MS) * HOUR_MS


def verify(tx: Tx) -> dict[str, Any]:
    """Rollups against the message rows, per account and status, over the retained period (the hours from
    ``retained_since`` on). Run it as a read (``db.read``): a write job would see the rows of earlier jobs
    of its group before their rollup moves are written."""
    since = retained_since(tx)
    rolled, counted = store.totals_by_status(tx, since), store.counts_by_status(tx, since)
    core = store.core_totals_by_status(tx, since)  # the lean rollup holds the same sums
    zero = (0, 0, 0)
    keys = sorted(set(rolled) | set(counted) | set(core))
    diffs = [
        {
            "account_id": k[0],
            "status": k[1],
            "rollup": list(rolled.get(k, zero)),
            "rollup_core": list(core.get(k, zero)),
            "messages": list(counted.get(k, zero)),
        }
        for k in keys
        if not rolled.get(k, zero) == core.get(k, zero) == counted.get(k, zero)
    ]
    return {"ok": not diffs, "groups": len(keys), "mismatches": diffs, "since": since}


def rebuild(tx: Tx) -> int:
    """Recompute the rollups of the retained period (``retained_since``) from the message rows; the rollups
    of purged hours stay as they are. Returns the messages counted."""
    since = retained_since(tx)
    tx.reset_counters(store.add)  # earlier jobs' moves of this group: counted from their rows below
    store.clear(tx, since)
    protocols = store.protocols(tx)
    n = 0
    for page in store.all_message_dims(tx, since=since):
        for created, account, sig, tpl, mtype, carrier, prov, channel, status, parts, fee, stat, err, code in page:
            reason = reason_of(protocols.get(channel), status, stat, err, code)
            key = (hour_of(int(created)), int(account), sig, int(tpl), mtype, carrier, prov, channel, status, reason)
            _move(tx, key, 1, int(parts), int(fee))
        n += len(page)
    return n


def _day(index: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=index)).date().isoformat()


def _hour(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, SHANGHAI).strftime("%Y-%m-%d %H:00")


class Statistics(UseCase):
    """Statistics by any of the dimensions, by hour or day, over any range (customers: their account)."""

    async def query(
        self,
        actor: Actor,
        group_by: Sequence[str] = (),
        bucket: str | None = "day",
        since: str | int | None = None,
        until: str | int | None = None,
        filters: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        filters = dict(filters or {})
        if actor.is_customer:
            filters["account_id"] = actor.account_id
        else:
            actor.require("accounts.read")
        unknown = [g for g in group_by if g not in store.GROUPABLE]
        if unknown or bucket not in (None, "hour", "day"):
            raise QxError("INVALID_REQUEST", "group_by 可选 " + "、".join(store.GROUPABLE) + "；bucket 为 hour 或 day")
        end = parse_time(until) or now_ms()
        start = parse_time(since) or end - 30 * DAY_MS
        if not 0 < end - start <= MAX_RANGE_MS:
            raise QxError("INVALID_REQUEST", "统计区间须大于 0 且不超过 400 天")
        cols = [g for g in group_by if g != "status"]
        offset = None if bucket is None else -1 if bucket == "hour" else -SHANGHAI_OFFSET_MS
        rows = await self.read(lambda tx: store.query(tx, filters, hour_of(start), end, [*cols, "status"], offset))
        groups: dict[tuple[Any, ...], dict[str, Any]] = {}
        for r in rows:
            values = list(r[: len(cols)])
            status = r[len(cols)]
            key_parts = values + ([r[len(cols) + 1]] if offset is not None else [])
            g = groups.get(tuple(key_parts))
            if g is None:
                g = dict(zip(cols, values, strict=True))
                if offset == -1:
                    g["hour"] = _hour(int(r[len(cols) + 1]))
                elif offset is not None:
                    g["day"] = _day(int(r[len(cols) + 1]))
                g |= {"messages": 0, "parts": 0, "fee_li": 0, "by_status": {}}
                groups[tuple(key_parts)] = g
            messages, parts, fee = (int(x or 0) for x in r[-3:])
            g["messages"] += messages
            g["parts"] += parts
            g["fee_li"] += fee
            if messages:
                g["by_status"][status] = g["by_status"].get(status, 0) + messages
        out = []
        for g in groups.values():
            if not g["messages"] and not g["parts"]:
                continue
            done = sum(g["by_status"].get(s, 0) for s in RATE_STATUSES)
            g["success_rate"] = round(g["by_status"].get("delivered", 0) / done, 4) if done else None
            out.append(g)
        return {"since": start, "until": end, "bucket": bucket, "group_by": list(group_by), "groups": out,
                "reasons": REASONS}  # fmt: skip

    async def latency(
        self,
        actor: Actor,
        group_by: Sequence[str] = (),
        bucket: str | None = "day",
        since: str | int | None = None,
        until: str | int | None = None,
        filters: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Receipt latency percentiles (p50/p90/p99, ms) per group of ``channel`` and/or ``account_id`` and per
        hour or day (or the whole range), both kinds (submit → receipt, accept → final), merged from the
        hourly histograms (services/latency.py). Customers see their own account only."""
        filters = {k: v for k, v in (filters or {}).items() if k in latency_store.GROUPABLE and v is not None}
        if actor.is_customer:
            filters["account_id"] = actor.account_id
        else:
            actor.require("accounts.read")
        group_by = ["account_id" if g == "account" else g for g in group_by]
        unknown = [g for g in group_by if g not in latency_store.GROUPABLE]
        if unknown or bucket not in (None, "hour", "day"):
            raise QxError("INVALID_REQUEST", "group_by 可选 channel、account_id；bucket 为 hour、day 或 none")
        end = parse_time(until) or now_ms()
        start = parse_time(since) or end - 30 * DAY_MS
        if not 0 < end - start <= MAX_RANGE_MS:
            raise QxError("INVALID_REQUEST", "统计区间须大于 0 且不超过 400 天")
        cols = list(dict.fromkeys(group_by))
        rows = await self.read(lambda tx: latency_store.query(tx, filters, hour_of(start), end, cols, bucket))
        n_keys = len(cols) + (1 if bucket else 0)
        groups = []
        for key, by_kind in latency.histograms(rows, n_keys).items():
            g: dict[str, Any] = dict(zip(cols, key[: len(cols)], strict=True))
            if bucket == "hour":
                g["hour"] = _hour(int(key[-1]))
            elif bucket == "day":
                g["day"] = _day(int(key[-1]))
            for kind in latency_rules.KINDS:
                g[kind] = latency_rules.summary(by_kind.get(kind, {}))
            groups.append(g)
        return {"since": start, "until": end, "bucket": bucket, "group_by": cols, "unit": "ms", "groups": groups}
