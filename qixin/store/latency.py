"""Receipt-latency histograms (latency_hourly): the upsert and the query (rules: domain/latency.py,
services/latency.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qixin.store.db import Tx

DIMS = ("hour", "channel", "account_id", "kind", "bucket")
GROUPABLE = ("channel", "account_id")
Key = tuple[int, str, int, str, int]  # in DIMS order

_UPSERT = (
    f"INSERT INTO latency_hourly ({', '.join(DIMS)}, count) VALUES ({', '.join('?' * (len(DIMS) + 1))})"
    f" ON CONFLICT ({', '.join(DIMS)}) DO UPDATE SET count = latency_hourly.count + excluded.count"
)


def add(tx: Tx, deltas: dict[Key, list[int]]) -> None:
    """Add ``[count]`` to each (hour, channel, account, kind, bucket): one upsert per bucket per group commit
    (the flusher of ``Tx.count``)."""
    rows = [(*k, v[0]) for k, v in deltas.items() if v[0]]
    if rows:
        tx.executemany(_UPSERT, rows)


def query(
    tx: Tx, where: dict[str, Any], since: int, until: int, group_by: Sequence[str], time_bucket: str | None
) -> list[Any]:
    """Rows of (group columns…, time bucket?, kind, bucket, count) of the hours in [since, until).
    ``time_bucket``: None (the whole range), "hour" (the hour's start, ms) or "day" (the Asia/Shanghai day's
    index since 1970-01-01)."""
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
    group = [*select, "kind", "bucket"]
    sql = (
        f"SELECT {', '.join([*group, 'SUM(count)'])} FROM latency_hourly WHERE {' AND '.join(clauses)}"
        f" GROUP BY {', '.join(group)} ORDER BY {', '.join(group)}"
    )
    return tx.all(sql, tuple(params))


def all_counts(tx: Tx) -> list[Any]:
    """Every row (for tests and checks): hour, channel, account_id, kind, bucket, count."""
    return tx.all(f"SELECT {', '.join(DIMS)}, count FROM latency_hourly ORDER BY {', '.join(DIMS)}")
