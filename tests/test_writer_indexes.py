"""The writer's indexes (migration 0022_writer): no index on messages depends on ``status`` but the console's
failed-records index, whose OR-form predicate costs a status change next to nothing; the number evidence
and the MO opt-out's signature lookup read ``ix_messages_number_done`` (partial on done_at, written only
when a message becomes final); an account's period (the statement) is a range of
``ix_messages_account_id`` — no (account_id, created_at) index."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from _billing import Bill, numbers

from qixin.store import compliance, numbercheck, statements
from qixin.store import stats as stats_store
from qixin.store.db import Database
from qixin.store.migrate import migrate

# The one index on messages allowed to name ``status``: the console's failed-records page (migration
# 0022_console3), written with ORs. A partial index whose predicate is ``status IN (…)`` costs SQLite about
# 2–3.5 µs more per insert and per status change; the same predicate with ORs costs 0.1–0.3 µs
# (bench/bench_index_predicates.py, figures in bench/RESULTS.md). No ``IN`` form, ever.
STATUS_INDEX_ALLOWED = {"ix_messages_account_failed"}


def _status_indexes(rows: list[Any]) -> list[Any]:
    for name, sql in rows:
        if sql and str(name) in STATUS_INDEX_ALLOWED:
            assert " IN (" not in str(sql).upper() and "ANY (" not in str(sql).upper(), (name, sql)
    return [(n, sql) for n, sql in rows if sql and "status" in str(sql) and str(n) not in STATUS_INDEX_ALLOWED]


class Recorder:
    """Stands in for a transaction: keeps the statements instead of running them."""

    is_pg = False

    def __init__(self) -> None:
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    def all(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        self.statements.append((sql, tuple(params)))
        return []

    def one(self, sql: str, params: tuple[Any, ...]) -> Any:
        self.statements.append((sql, tuple(params)))
        return None


def _plans(path: Path, rec: Recorder) -> list[str]:
    out = []
    with sqlite3.connect(path) as conn:
        for sql, params in rec.statements:
            out.append("\n".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()))
    return out


def test_no_index_on_messages_depends_on_status(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    migrate(f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages'"
        ).fetchall()
    names = {n for n, _ in rows}
    gone = {"ix_messages_number", "ix_messages_awaiting_receipt", "ix_messages_account_created"}
    assert "ix_messages_number_done" in names and not names & gone
    assert not _status_indexes(rows), rows


def test_number_evidence_and_mo_signature_read_the_final_messages_index(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    migrate(f"sqlite:///{path}")
    rec = Recorder()
    numbercheck.history(rec, ["13800000000", "13800000001"])  # type: ignore[arg-type]
    numbercheck.evidence_small(rec, ["13800000000"])  # type: ignore[arg-type]
    compliance.last_signature_to(rec, 1, "13800000000", 0)  # type: ignore[arg-type]
    plans = _plans(path, rec)
    assert len(plans) == 3
    for p in plans:
        assert "ix_messages_number_done" in p, p


def test_a_statement_reads_a_range_of_the_account_index(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    migrate(f"sqlite:///{path}")
    rec = Recorder()
    statements.sms_totals(rec, 1, 1_767_225_600_000, 1_769_904_000_000)  # type: ignore[arg-type]
    (p,) = _plans(path, rec)
    assert "ix_messages_account_id (account_id=? AND id>? AND id<?)" in p, p


@pytest.mark.pg
def test_no_index_on_messages_depends_on_status_on_postgresql(pg_url: str) -> None:
    migrate(pg_url)
    db = Database(pg_url)
    try:
        rows = db.read_sync(
            lambda tx: tx.all("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'messages'")
        )
    finally:
        db.close()
    names = {str(n) for n, _ in rows}
    assert "ix_messages_number_done" in names
    assert not names & {"ix_messages_number", "ix_messages_awaiting_receipt", "ix_messages_account_created"}, names
    assert not _status_indexes(rows), rows


class Spy:
    """A transaction that records the statements it runs."""

    def __init__(self, tx: Any) -> None:
        self.tx, self.sql = tx, []

    def all(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        self.sql.append(sql)
        return self.tx.all(sql, params)

    def in_list(self, values: Any) -> str:
        return self.tx.in_list(values)


async def test_a_messages_buckets_read_its_batch_once_per_process(tmp_path: Path) -> None:
    bill = Bill(f"sqlite:///{tmp_path / 'q.db'}")
    try:
        key = await bill.account()
        data = await bill.send(key, numbers(2))
        ids_ = [int(m["id"]) for m in data["accepted"]]
        stats_store._BATCH_COLUMNS.clear()
        spies: list[Spy] = []

        def read(tx: Any) -> dict[int, tuple[Any, ...]]:
            spies.append(Spy(tx))
            return stats_store.message_dims(spies[-1], ids_)  # type: ignore[arg-type]

        first, again = bill.r(read), bill.r(read)
        assert first == again and {(d[2], d[20]) for d in first.values()} == {("企信", key.key_id)}
        assert [s for s in spies[0].sql if "FROM batches" in s]  # read once …
        assert not [s for s in spies[1].sql if "FROM batches" in s], spies[1].sql  # … then messages only
    finally:
        bill.close()
