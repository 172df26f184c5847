#!/usr/bin/env python3
"""What a partial index on messages costs the SQLite writer, by the form of its predicate: 20,000 rows
inserted, set submitted, then made final (one transaction per step, WAL), with no partial index, the
console's failed-records index written with ORs, the same predicate as ``IN (…)``, and the number-evidence
index on ``done_at``. Prints the median CPU µs per row of 4 rounds for each step.

    .venv/bin/python bench/bench_index_predicates.py
"""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

N = 20_000
FAILED = ("undelivered", "failed", "rejected", "expired")
CASES: dict[str, str | None] = {
    "no partial index": None,
    "failed, with ORs": "CREATE INDEX ix_f ON m (account_id, id) WHERE "
    + " OR ".join(f"status = '{s}'" for s in FAILED),
    "failed, with IN (…)": "CREATE INDEX ix_f ON m (account_id, id) WHERE status IN ("
    + ", ".join(f"'{s}'" for s in FAILED)
    + ")",
    "done_at IS NOT NULL": "CREATE INDEX ix_f ON m (number) WHERE done_at IS NOT NULL",
}


def one_round(index: str | None, path: Path) -> list[float]:
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE m (id INTEGER PRIMARY KEY, account_id INT, number TEXT, status TEXT, done_at INT,"
        " channel TEXT, content TEXT)"
    )
    conn.execute("CREATE INDEX ix_acc ON m (account_id, id)")
    if index:
        conn.execute(index)

    def timed(step: Callable[[], object]) -> float:
        t = time.process_time()
        conn.execute("BEGIN")
        step()
        conn.execute("COMMIT")
        return (time.process_time() - t) / N * 1e6

    rows = [(i, i % 50, f"138{i:08d}", "queued", None, None, "x" * 40) for i in range(N)]
    out = [timed(lambda: conn.executemany("INSERT INTO m VALUES (?, ?, ?, ?, ?, ?, ?)", rows))]
    ids = [(i,) for i in range(N)]
    out.append(timed(lambda: conn.executemany("UPDATE m SET status = 'submitted', channel = 'c' WHERE id = ?", ids)))
    final = [("delivered" if i % 20 else "undelivered", i) for i in range(N)]
    out.append(timed(lambda: conn.executemany("UPDATE m SET status = ?, done_at = 1 WHERE id = ?", final)))
    conn.close()
    return out


def main() -> None:
    path = Path(tempfile.mkdtemp()) / "idx.db"
    results: dict[str, list[list[float]]] = {k: [] for k in CASES}
    for _ in range(4):  # interleaved, so drift of a loaded machine hits every case alike
        for name, index in CASES.items():
            results[name].append(one_round(index, path))
    for name, runs in results.items():
        insert, submit, final = (statistics.median(r[i] for r in runs) for i in range(3))
        print(f"{name:22} insert {insert:5.2f}  submit {submit:5.2f}  final {final:5.2f} µs CPU per row")


if __name__ == "__main__":
    main()
