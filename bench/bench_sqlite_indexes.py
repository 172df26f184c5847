#!/usr/bin/env python3
"""SQLite micro-bench of the messages table's keys and indexes, 20,000 rows, 3 rounds, CPU per row:

- keys: ``BIGINT PRIMARY KEY`` (a hidden rowid plus a separate key index) against ``INTEGER PRIMARY KEY``
  (the key is the rowid; migration 0015_rowid_keys) for inserts, updates and reads by id;
- partial indexes: what ``ix_messages_awaiting_receipt`` and ``ix_messages_number`` (both on status,
  before migration 0022_writer) cost the submit and delivery updates, which must maintain them; against
  them the alternatives: one of them, a plain index on number (paid at insert), a per-number history
  table upserted at delivery, and ``ix_messages_number_done`` (partial on done_at, which only the final
  change writes: what 0022_writer keeps).

    .venv/bin/python bench/bench_sqlite_indexes.py
"""

from __future__ import annotations

import os
import random
import sqlite3
import tempfile
import time

N = 20_000
COLUMNS = (
    "batch_id BIGINT NOT NULL, account_id BIGINT NOT NULL, number TEXT NOT NULL, status TEXT NOT NULL,"
    " channel TEXT, created_at BIGINT NOT NULL, submitted_at BIGINT, done_at BIGINT, receipts_pending INT,"
    " carrier_stat TEXT, carrier_err TEXT"
)


NUMBER = "CREATE INDEX ix_n ON m (number) WHERE status IN ('delivered', 'undelivered', 'expired')"
WAITING = "CREATE INDEX ix_w ON m (submitted_at) WHERE status = 'submitted'"
PLAIN_NUMBER = "CREATE INDEX ix_np ON m (number)"
NUMBER_DONE = "CREATE INDEX ix_nd ON m (number) WHERE done_at IS NOT NULL"  # migration 0022_writer
HISTORY = (
    "CREATE TABLE h (number TEXT PRIMARY KEY, last_delivered_at BIGINT, last_empty_at BIGINT,"
    " empty_receipts INT NOT NULL DEFAULT 0, unreachable_receipts INT NOT NULL DEFAULT 0,"
    " last_unreachable_at BIGINT) WITHOUT ROWID"
)
HISTORY_UPSERT = (
    "INSERT INTO h (number, last_delivered_at) VALUES (?, ?) ON CONFLICT (number) DO UPDATE"
    " SET last_delivered_at = excluded.last_delivered_at"
)


def table(path: str, key_type: str, partial: bool | tuple[str, ...]) -> sqlite3.Connection:
    if os.path.exists(path):
        os.remove(path)
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=NORMAL")
    c.execute(f"CREATE TABLE m (id {key_type} NOT NULL, {COLUMNS}, PRIMARY KEY (id))")
    c.execute("CREATE INDEX ix_b ON m (batch_id)")
    c.execute("CREATE INDEX ix_a ON m (account_id, created_at)")
    for sql in (NUMBER, WAITING) if partial is True else partial or ():
        c.execute(sql)
    return c


def batched(c: sqlite3.Connection, sql: str, rows: list[tuple[int, ...]], size: int) -> float:
    t = time.process_time()
    for k in range(0, len(rows), size):
        c.execute("BEGIN")
        c.executemany(sql, rows[k : k + size])
        c.execute("COMMIT")
    return (time.process_time() - t) / len(rows) * 1e6


def one_round(c: sqlite3.Connection, base: int, history: bool = False) -> tuple[float, float, float, float]:
    ids = [base + i for i in range(N)]
    nums = [f"13{random.randrange(10**9):09d}" for _ in range(N)]
    insert = batched(
        c,
        "INSERT INTO m (id, batch_id, account_id, number, status, created_at) VALUES (?, 1, 1, ?, 'queued', 0)",
        [(i, int(n)) for i, n in zip(ids, nums, strict=True)],
        30,  # a group commit of single sends
    )
    submit = batched(
        c, "UPDATE m SET status='submitted', channel='x', submitted_at=?, receipts_pending=1 WHERE id=?",
        [(i, i) for i in ids], 500,
    )  # fmt: skip
    deliver = batched(
        c,
        "UPDATE m SET status='delivered', receipts_pending=0, carrier_stat='DELIVRD', carrier_err='000',"
        " done_at=? WHERE id=?",
        [(i, i) for i in ids],
        500,
    )
    if history:  # the per-number evidence row written at delivery instead of an index entry
        deliver += batched(c, HISTORY_UPSERT, [(n, i) for i, n in zip(ids, nums, strict=True)], 500)
    t = time.process_time()
    for k in range(0, N, 500):
        part = ids[k : k + 500]
        c.execute(f"SELECT id, status FROM m WHERE id IN ({','.join('?' * len(part))})", part).fetchall()
    read = (time.process_time() - t) / N * 1e6
    return insert, submit, deliver, read


def main() -> None:
    tmp = tempfile.mkdtemp(prefix="qixin-bench-sqlite-")
    variants = {
        "BIGINT key, no partial index": table(f"{tmp}/a.db", "BIGINT", False),
        "INTEGER key, no partial index": table(f"{tmp}/b.db", "INTEGER", False),
        "INTEGER key, both partial indexes": table(f"{tmp}/c.db", "INTEGER", True),
        "INTEGER key, ix_messages_number only": table(f"{tmp}/d.db", "INTEGER", (NUMBER,)),
        "INTEGER key, plain index on number": table(f"{tmp}/e.db", "INTEGER", (PLAIN_NUMBER,)),
        "INTEGER key, number WHERE done_at (0022)": table(f"{tmp}/g.db", "INTEGER", (NUMBER_DONE,)),
        "INTEGER key, number history table": table(f"{tmp}/f.db", "INTEGER", (HISTORY,)),
    }
    print("µs CPU per row: insert (30 per commit) / submit update / delivery update / read by id")
    for r in range(3):
        for name, c in variants.items():
            ins, sub, dlv, rd = one_round(c, 10**15 + r * 10**9, history="history" in name)
            print(f"round {r + 1} {name:44s} {ins:5.1f} / {sub:5.1f} / {dlv:5.1f} / {rd:5.1f}")


if __name__ == "__main__":
    main()
