"""Statistics rollups (stats_hourly): the queries (SQL only here; the rules are in services/stats.py)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from qixin.store.db import Tx, chunks

DIMS = ("hour", "account_id", "signature", "template_id", "type", "carrier", "province", "channel", "status", "reason")
GROUPABLE = ("account_id", "signature", "template_id", "type", "carrier", "province", "channel", "status", "reason")
Key = tuple[int, int, str, int, str, str, str, str, str, str]  # in DIMS order

_UPSERT = (
    f"INSERT INTO stats_hourly ({', '.join(DIMS)}, messages, parts, fee_li)"
    f" VALUES ({', '.join('?' * (len(DIMS) + 3))})"
    f" ON CONFLICT ({', '.join(DIMS)}) DO UPDATE SET messages = stats_hourly.messages + excluded.messages,"
    " parts = stats_hourly.parts + excluded.parts, fee_li = stats_hourly.fee_li + excluded.fee_li"
)


# The lean rollup: the same sums over fewer dimensions (no signature, template, province or channel), one
# row per account × hour × type × carrier × status × reason. A big account's hour holds hundreds of rows
# of stats_hourly (31 provinces × templates × …) and about a hundred here, so the queries that need only
# these dimensions (the dashboard's by day, carrier, type, status, reason) read a small fraction of the rows.
CORE_TABLE = "stats_hourly_core"
CORE_KEY = ("account_id", "hour", "type", "carrier", "status", "reason")
CORE_DIMS = frozenset(CORE_KEY) - {"hour"}
_CORE_UPSERT = (
    f"INSERT INTO {CORE_TABLE} ({', '.join(CORE_KEY)}, messages, parts, fee_li)"
    f" VALUES ({', '.join('?' * (len(CORE_KEY) + 3))})"
    f" ON CONFLICT ({', '.join(CORE_KEY)}) DO UPDATE SET messages = {CORE_TABLE}.messages + excluded.messages,"
    f" parts = {CORE_TABLE}.parts + excluded.parts, fee_li = {CORE_TABLE}.fee_li + excluded.fee_li"
)


def add(tx: Tx, deltas: dict[Key, list[int]]) -> None:
    """Add ``[messages, parts, fee_li]`` to each bucket (negative to move messages out of one), in
    stats_hourly and in the lean rollup (the same deltas summed over its fewer dimensions)."""
    # in key order: concurrent transactions (PostgreSQL's several writers) lock the buckets they share in
    # the same order, so they wait for each other instead of deadlocking (stats_hourly first, then the
    # lean rollup, each in key order: one order for every transaction)
    rows = sorted((*k, v[0], v[1], v[2]) for k, v in deltas.items() if v[0] or v[1] or v[2])
    if not rows:
        return
    tx.executemany(_UPSERT, rows)
    core: dict[tuple[Any, ...], list[int]] = {}
    for hour, account, _sig, _tpl, mtype, carrier, _prov, _channel, status, reason, n, parts, fee in rows:
        k = (account, hour, mtype, carrier, status, reason)
        v = core.get(k)
        if v is None:
            core[k] = [n, parts, fee]
        else:
            v[0] += n
            v[1] += parts
            v[2] += fee
    lean = sorted((*k, v[0], v[1], v[2]) for k, v in core.items() if v[0] or v[1] or v[2])
    if lean:  # a move between channels only (the same status) changes nothing here
        tx.executemany(_CORE_UPSERT, lean)


def refresh_core(tx: Tx, since: int = 0) -> None:
    """Recompute the lean rollup of the hours from ``since`` on from stats_hourly (what the migration did
    for the rollups stored before it; tests and benches that write stats_hourly directly)."""
    keys = ", ".join(CORE_KEY)
    tx.execute(f"DELETE FROM {CORE_TABLE} WHERE hour >= ?", (since,))
    tx.execute(
        f"INSERT INTO {CORE_TABLE} ({keys}, messages, parts, fee_li) SELECT {keys}, SUM(messages), SUM(parts),"
        f" SUM(fee_li) FROM stats_hourly WHERE hour >= ? GROUP BY {keys}",
        (since,),
    )


# A batch's signature, template and key never change once it is stored (review moves only its send_at):
# kept per process so that a message's buckets read only the messages row. Bounded; cleared when full.
_BATCH_COLUMNS: dict[int, tuple[str, int, int | None]] = {}
_BATCH_COLUMNS_MAX = 100_000


def batch_columns(tx: Tx, batch_ids: Iterable[int]) -> dict[int, tuple[str, int, int | None]]:
    """batch id -> (signature, template_id or 0, api_key_id), from the process cache or read once."""
    cache = _BATCH_COLUMNS
    out: dict[int, tuple[str, int, int | None]] = {}
    missing: list[int] = []
    for b in set(batch_ids):
        got = cache.get(b)
        if got is None:
            missing.append(b)
        else:
            out[b] = got
    if missing:
        if len(cache) + len(missing) > _BATCH_COLUMNS_MAX:
            cache.clear()
        for part in chunks(missing):
            for bid, sig, tpl, key in tx.all(
                "SELECT id, signature, COALESCE(template_id, 0), api_key_id FROM batches"
                f" WHERE id IN ({tx.in_list(part)})",
                tuple(part),
            ):
                out[int(bid)] = cache[int(bid)] = (sig, int(tpl), key)
    return out


def message_dims(tx: Tx, message_ids: Sequence[int]) -> dict[int, tuple[Any, ...]]:
    """id -> (created_at, account_id, signature, template_id, type, carrier, province, channel, status, parts,
    fee_li, carrier_stat, carrier_err, error_code, receipts_pending, submitted_at, send_at, batch_id, out_id,
    token or number, api_key_id) as stored now (the last four: what a final message's webhook event needs
    besides its state, so a receipt reads the message once). The batch's columns come from
    ``batch_columns`` (no join per message)."""
    rows: list[Any] = []
    for part in chunks(list(message_ids)):
        rows += tx.all(
            "SELECT id, created_at, account_id, batch_id, type, carrier, province, COALESCE(channel, ''), status,"
            " parts, fee_li, carrier_stat, carrier_err, error_code, receipts_pending, submitted_at, send_at, out_id,"
            f" COALESCE(token, number) FROM messages WHERE id IN ({tx.in_list(part)})",
            tuple(part),
        )
    batches = batch_columns(tx, (r[3] for r in rows))
    out: dict[int, tuple[Any, ...]] = {}
    for mid, created, account, bid, mtype, carrier, prov, channel, status, parts, fee, stat, err, code, pending, \
            sub_at, send_at, out_id, number in rows:  # fmt: skip
        sig, tpl, key = batches[bid]
        out[int(mid)] = (created, account, sig, tpl, mtype, carrier, prov, channel, status, parts, fee, stat, err,
                         code, pending, sub_at, send_at, bid, out_id, number, key)  # fmt: skip
    return out


def message_states(tx: Tx, message_ids: Sequence[int]) -> dict[int, tuple[Any, ...]]:
    """id -> (channel, status, carrier_stat, carrier_err, error_code) as stored now: what a status change
    reads when the caller already holds the message's fixed dimensions (one row of messages, no join)."""
    out: dict[int, tuple[Any, ...]] = {}
    for part in chunks(list(message_ids)):
        for r in tx.all(
            "SELECT id, COALESCE(channel, ''), status, carrier_stat, carrier_err, error_code FROM messages"
            f" WHERE id IN ({tx.in_list(part)})",
            tuple(part),
        ):
            out[int(r[0])] = tuple(r[1:])
    return out


def query(
    tx: Tx, where: dict[str, Any], since: int, until: int, group_by: Sequence[str], day_offset_ms: int | None
) -> list[Any]:
    """Sums of messages, parts and fee_li per group: the ``group_by`` columns (GROUPABLE), then the time
    bucket when ``day_offset_ms`` is given (None: no time bucket; else days starting at that offset from
    UTC midnight, e.g. -8 h for Asia/Shanghai, or 0 with hours when it is -1)."""
    cols = [c for c in group_by if c in GROUPABLE]
    used = set(cols) | {k for k, v in where.items() if k in GROUPABLE and v is not None}
    table = CORE_TABLE if used <= CORE_DIMS else "stats_hourly"  # the lean rollup when it holds them all
    select = list(cols)
    if day_offset_ms == -1:
        select.append("hour")
    elif day_offset_ms is not None:
        select.append(f"((hour + {int(-day_offset_ms)}) / 86400000)")
    clauses = ["hour >= ?", "hour < ?"]
    params: list[Any] = [since, until]
    for k, v in where.items():
        if k in GROUPABLE and v is not None:
            clauses.append(f"{k} = ?")
            params.append(v)
    sql = (
        f"SELECT {', '.join([*select, 'SUM(messages)', 'SUM(parts)', 'SUM(fee_li)'])} FROM {table}"
        f" WHERE {' AND '.join(clauses)}"
    )
    if select:
        sql += f" GROUP BY {', '.join(select)} ORDER BY {', '.join(select)}"
    return tx.all(sql, tuple(params))


def totals_by_status(tx: Tx, since: int = 0) -> dict[tuple[int, str], tuple[int, int, int]]:
    """(account_id, status) -> (messages, parts, fee_li) from the rollups of the hours from ``since`` on."""
    rows = tx.all(
        "SELECT account_id, status, SUM(messages), SUM(parts), SUM(fee_li) FROM stats_hourly"
        " WHERE hour >= ? GROUP BY account_id, status",
        (since,),
    )
    return {(int(r[0]), str(r[1])): (int(r[2]), int(r[3]), int(r[4])) for r in rows if int(r[2]) or int(r[3])}


def core_totals_by_status(tx: Tx, since: int = 0) -> dict[tuple[int, str], tuple[int, int, int]]:
    """``totals_by_status`` from the lean rollup (it must equal stats_hourly's: ``verify``)."""
    rows = tx.all(
        f"SELECT account_id, status, SUM(messages), SUM(parts), SUM(fee_li) FROM {CORE_TABLE}"
        " WHERE hour >= ? GROUP BY account_id, status",
        (since,),
    )
    return {(int(r[0]), str(r[1])): (int(r[2]), int(r[3]), int(r[4])) for r in rows if int(r[2]) or int(r[3])}


def counts_by_status(tx: Tx, since: int = 0) -> dict[tuple[int, str], tuple[int, int, int]]:
    """(account_id, status) -> (messages, parts, fee_li) counted from the rows of messages accepted from
    ``since`` on (for verify)."""
    rows = tx.all(
        "SELECT account_id, status, COUNT(*), SUM(parts), SUM(fee_li) FROM messages WHERE created_at >= ?"
        " GROUP BY account_id, status",
        (since,),
    )
    return {(int(r[0]), str(r[1])): (int(r[2]), int(r[3]), int(r[4])) for r in rows}


def clear(tx: Tx, since: int = 0) -> None:
    """Drop the rollups of the hours from ``since`` on (both tables)."""
    tx.execute("DELETE FROM stats_hourly WHERE hour >= ?", (since,))
    tx.execute(f"DELETE FROM {CORE_TABLE} WHERE hour >= ?", (since,))


def all_message_dims(tx: Tx, batch: int = 10_000, since: int = 0) -> Iterator[list[tuple[Any, ...]]]:
    """The dims (as ``message_dims``) of every message accepted from ``since`` on, in pages, for a rebuild."""
    last = -1
    while True:
        rows = tx.all(
            "SELECT m.id, m.created_at, m.account_id, b.signature, COALESCE(b.template_id, 0), m.type, m.carrier,"
            " m.province, COALESCE(m.channel, ''), m.status, m.parts, m.fee_li, m.carrier_stat, m.carrier_err,"
            " m.error_code FROM messages m JOIN batches b ON b.id = m.batch_id WHERE m.id > ? AND m.created_at >= ?"
            " ORDER BY m.id LIMIT ?",
            (last, since, batch),
        )
        if not rows:
            return
        yield [tuple(r[1:]) for r in rows]
        last = int(rows[-1][0])


def protocols(tx: Tx) -> dict[str, str]:
    """channel name -> protocol (to read a receipt's codes with the right table)."""
    return {str(r[0]): str(r[1]) for r in tx.all("SELECT name, protocol FROM channels")}
