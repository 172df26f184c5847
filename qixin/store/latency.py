"""Receipt-latency histograms (latency_hourly): the upsert and the query (rules: domain/latency.py,
services/latency.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qixin.store.db import Tx, chunks

DIMS = ("hour", "channel", "account_id", "bucket")
KINDS = ("submit_receipt", "accept_final")  # one count column each
GROUPABLE = ("channel", "account_id")
Key = tuple[int, str, int, int]  # in DIMS order

_SET = ", ".join(f"{k} = latency_hourly.{k} + excluded.{k}" for k in KINDS)
_ROW = f"({', '.join('?' * (len(DIMS) + len(KINDS)))})"
_UPSERT = (
    f"INSERT INTO latency_hourly ({', '.join((*DIMS, *KINDS))}) VALUES {_ROW}"
    f" ON CONFLICT ({', '.join(DIMS)}) DO UPDATE SET {_SET}"
)
_MULTI = (
    f"INSERT INTO latency_hourly ({', '.join((*DIMS, *KINDS))}) VALUES {{}}"
    f" ON CONFLICT ({', '.join(DIMS)}) DO UPDATE SET {_SET}"
)


def add(tx: Tx, deltas: dict[Key, list[int]]) -> None:
    """Add ``[submit_receipt, accept_final]`` counts to each (hour, channel, account, bucket): one upsert per
    bucket per group commit (the flusher of ``Tx.count``)."""
    rows = [(*k, v[0], v[1]) for k, v in deltas.items() if v[0] or v[1]]
    if not rows:
        return
    if not tx.is_pg:  # SQLite: executemany runs in process, one prepared statement
        tx.executemany(_UPSERT, rows)
        return
    # PostgreSQL: executemany is a round trip per row; one multi-row upsert per 500 buckets instead (the keys
    # are distinct, so no row is affected twice by one statement)
    for part in chunks(rows, 500):
        tx.execute(_MULTI.format(", ".join([_ROW] * len(part))), tuple(v for r in part for v in r))


def query(
    tx: Tx, where: dict[str, Any], since: int, until: int, group_by: Sequence[str], time_bucket: str | None
) -> list[Any]:
    """Rows of (group columns…, time bucket?, bucket, submit_receipt, accept_final) of the hours in
    [since, until). ``time_bucket``: None (the whole range), "hour" (the hour's start, ms) or "day" (the
    Asia/Shanghai day's index since 1970-01-01)."""
    select = [c for c in group_by if c in GROUPABLE]
    if time_bucket == "hour":
        select.append("hour")
    elif time_bucket == "day":
        select.append("((hour + 28800000) / 86400000)")
    clauses = ["hour >= ?", "hour < ?"]
    params: list[Any] = [since, until]
    for k, v in where.items():
        if k in GROUPABLE and v is not None:
            clauses.append(f"{k} = ?")
            params.append(v)
    group = [*select, "bucket"]
    sums = [f"SUM({k})" for k in KINDS]
    sql = (
        f"SELECT {', '.join([*group, *sums])} FROM latency_hourly WHERE {' AND '.join(clauses)}"
        f" GROUP BY {', '.join(group)} ORDER BY {', '.join(group)}"
    )
    return tx.all(sql, tuple(params))


def all_counts(tx: Tx) -> list[Any]:
    """Every row (for tests and checks): hour, channel, account_id, bucket, submit_receipt, accept_final."""
    return tx.all(f"SELECT {', '.join((*DIMS, *KINDS))} FROM latency_hourly ORDER BY {', '.join(DIMS)}")
