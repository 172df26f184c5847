"""store/db.py: constants inlined into bulk inserts are safe literals only; rows land the same on both DBs."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any

import pytest

from qixin.store.db import CONST_MIN_ROWS, Database, Tx
from qixin.store.migrate import migrate


def test_bulk_insert_const_rows_and_refusals(db_url: str) -> None:
    migrate(db_url)
    db = Database(db_url)
    try:
        db.write_sync(
            lambda tx: tx.bulk_insert_const(
                "dispatch_queue", ("message_id",), [(1,), (2,), (3,)], {"priority": 2, "due_at": 99, "attempts": 0}
            )
        )
        rows = db.read_sync(lambda tx: tx.all("SELECT message_id, priority, due_at, attempts FROM dispatch_queue"))
        assert sorted(tuple(r) for r in rows) == [(1, 2, 99, 0), (2, 2, 99, 0), (3, 2, 99, 0)]
        if not db.is_pg:  # PostgreSQL binds everything through COPY; SQLite inlines, so it must refuse
            for bad in ("x'); DROP TABLE accounts; --", "客户文本", "Upper"):
                with pytest.raises(ValueError):
                    db.write_sync(
                        lambda tx, b=bad: tx.bulk_insert_const("dispatch_queue", ("message_id",), [(9,)], {"x": b})
                    )
            with pytest.raises(TypeError):
                db.write_sync(lambda tx: tx.bulk_insert_const("dispatch_queue", ("message_id",), [(9,)], {"x": 1.5}))
    finally:
        db.close()


def test_small_const_inserts_keep_one_statement_text(tmp_path: Any) -> None:
    """A single send's rows (few) bind their constants: SQLite gets the same statement text every time and
    compiles it once; a large insert inlines them (fewer parameters per row)."""
    url = f"sqlite:///{tmp_path / 'q.db'}"
    migrate(url)
    db = Database(url)
    texts: list[str] = []

    class Recording:  # the cursor, recording each statement's text
        def __init__(self, cur: Any) -> None:
            self.cur = cur

        def executemany(self, sql: str, rows: Any) -> Any:
            texts.append(sql)
            return self.cur.executemany(sql, rows)

    def insert(rows: list[tuple[int]], due: int) -> None:
        def job(tx: Tx) -> None:
            cur, tx._cur = tx._cur, Recording(tx._cur)
            try:
                tx.bulk_insert_const(
                    "dispatch_queue", ("message_id",), rows, {"priority": 2, "due_at": due, "attempts": 0}
                )
            finally:
                tx._cur = cur

        db.write_sync(job)

    try:
        insert([(1,)], 100)
        insert([(2,)], 200)
        assert len(texts) == 2 and texts[0] == texts[1] and "200" not in texts[1]
        insert([(i,) for i in range(10, 10 + CONST_MIN_ROWS)], 300)
        assert "300" in texts[2]  # the constant is a literal in the statement
        rows = db.read_sync(lambda tx: tx.all("SELECT message_id, due_at FROM dispatch_queue WHERE message_id < 3"))
        assert sorted(tuple(r) for r in rows) == [(1, 100), (2, 200)]
    finally:
        db.close()


def _grouped(db: Database, jobs: list[Callable[[Tx], Any]]) -> list[tuple[str, Any]]:
    """Run ``jobs`` as ONE group commit: they are queued while the only writer is held by a gate job."""
    import threading

    gate, entered = threading.Event(), threading.Event()

    def hold(tx: Tx) -> None:
        entered.set()
        assert gate.wait(10), "gate never opened"

    first = db.submit(hold)
    assert entered.wait(10), "the writer never started the gate job"
    futures = [db.submit(j) for j in jobs]
    gate.set()
    first.result(timeout=10)
    out = []
    for f in futures:
        try:
            out.append(("ok", f.result(timeout=10)))
        except Exception as e:  # the test looks at which error
            out.append(("error", e))
    return out


def test_a_job_that_writes_then_raises_leaves_nothing_and_its_neighbours_commit(db_url: str) -> None:
    from qixin.errors import QxError

    migrate(db_url)
    db = Database(db_url, writers=1)

    def writes(mid: int, fail: bool) -> Callable[[Tx], int]:
        def job(tx: Tx) -> int:
            tx.execute(
                "INSERT INTO dispatch_queue (message_id, priority, due_at, attempts) VALUES (?, 1, 0, 0)", (mid,)
            )
            if fail:
                raise QxError("INSUFFICIENT_BALANCE")
            return mid

        return job

    try:
        out = _grouped(db, [writes(1, False), writes(2, True), writes(3, False), writes(4, True), writes(5, False)])
        assert [o[0] for o in out] == ["ok", "error", "ok", "error", "ok"]
        assert [o[1] for o in out if o[0] == "ok"] == [1, 3, 5]
        assert all(isinstance(o[1], QxError) and o[1].code == "INSUFFICIENT_BALANCE" for o in out if o[0] == "error")
        # alone in its group, too
        with pytest.raises(QxError):
            db.write_sync(writes(6, True))
        rows = db.read_sync(lambda tx: tx.all("SELECT message_id FROM dispatch_queue ORDER BY message_id"))
        assert [int(r[0]) for r in rows] == [1, 3, 5]
    finally:
        db.close()


def test_batched_jobs_of_one_function_run_as_one_unit_and_alone_when_it_raises(db_url: str) -> None:
    """``Batched`` jobs of one fn in a group reach it in ONE call (their items together, plain jobs
    between them unaffected), each caller gets its own result; when that call raises, the items run
    again one at a time, so only the faulty item fails and nothing of it stays."""
    from qixin.errors import QxError
    from qixin.store.db import Batched

    migrate(db_url)
    db = Database(db_url, writers=1)
    calls: list[list[int]] = []

    def insert_all(tx: Tx, items: list[int]) -> list[Any]:
        calls.append(list(items))
        tx.executemany(
            "INSERT INTO dispatch_queue (message_id, priority, due_at, attempts) VALUES (?, 1, 0, 0)",
            [(i,) for i in items if i != 0],  # 0 is refused: it writes nothing (Batched's rule)
        )
        if 13 in items:  # written, then raised: must leave nothing, and take no neighbour with it
            raise QxError("INSUFFICIENT_BALANCE")
        return [QxError("NOT_FOUND") if i == 0 else i * 10 for i in items]  # 0: refused, answered

    def plain(tx: Tx) -> str:
        tx.execute("INSERT INTO dispatch_queue (message_id, priority, due_at, attempts) VALUES (99, 1, 0, 0)")
        return "plain"

    try:
        out = _grouped(db, [Batched(insert_all, 1), plain, Batched(insert_all, 2), Batched(insert_all, 3)])
        assert out == [("ok", 10), ("ok", "plain"), ("ok", 20), ("ok", 30)]
        assert calls == [[1, 2, 3]]  # one call for the three
        calls.clear()
        out = _grouped(db, [Batched(insert_all, 4), Batched(insert_all, 13), Batched(insert_all, 5)])
        assert [o[0] for o in out] == ["ok", "error", "ok"] and [out[0][1], out[2][1]] == [40, 50]
        assert isinstance(out[1][1], QxError) and out[1][1].code == "INSUFFICIENT_BALANCE"
        assert calls == [[4, 13, 5], [4], [13], [5]]  # together, then one by one
        assert db.write_sync(Batched(insert_all, 7)) == 70  # alone: fn(tx, [item])[0]
        refused = db.write_sync(Batched(insert_all, 0))
        assert isinstance(refused, QxError) and refused.code == "NOT_FOUND"
        rows = db.read_sync(lambda tx: tx.all("SELECT message_id FROM dispatch_queue ORDER BY message_id"))
        assert [int(r[0]) for r in rows] == [1, 2, 3, 4, 5, 7, 99]
    finally:
        db.close()


def test_a_job_refused_before_writing_costs_its_neighbours_nothing(db_url: str) -> None:
    """No re-run of the group when the refused job changed nothing (a conditional update matching no row)."""
    from qixin.errors import QxError

    migrate(db_url)
    db = Database(db_url, writers=1)
    runs: list[int] = []

    def insert(mid: int) -> Callable[[Tx], int]:
        def job(tx: Tx) -> int:
            runs.append(mid)
            tx.execute(
                "INSERT INTO dispatch_queue (message_id, priority, due_at, attempts) VALUES (?, 1, 0, 0)", (mid,)
            )
            return mid

        return job

    def refused(tx: Tx) -> None:
        runs.append(0)
        tx.execute("UPDATE dispatch_queue SET attempts = 1 WHERE message_id = ?", (999,))  # matches nothing
        tx.all("SELECT message_id FROM dispatch_queue")
        raise QxError("INSUFFICIENT_BALANCE")

    try:
        out = _grouped(db, [insert(1), refused, insert(2)])
        assert [o[0] for o in out] == ["ok", "error", "ok"]
        assert runs == [1, 0, 2]  # each ran once
        rows = db.read_sync(lambda tx: tx.all("SELECT message_id FROM dispatch_queue ORDER BY message_id"))
        assert [int(r[0]) for r in rows] == [1, 2]
    finally:
        db.close()


def test_a_job_cancelled_before_it_runs_writes_nothing(db_url: str) -> None:
    """A caller that gave up (cancelled future) must not find its job committed behind its back."""
    import threading

    migrate(db_url)
    db = Database(db_url, writers=1)
    gate, entered = threading.Event(), threading.Event()

    def hold(tx: Tx) -> None:
        entered.set()
        assert gate.wait(10), "gate never opened"

    def insert(mid: int) -> Callable[[Tx], int]:
        def job(tx: Tx) -> int:
            tx.execute(
                "INSERT INTO dispatch_queue (message_id, priority, due_at, attempts) VALUES (?, 1, 0, 0)", (mid,)
            )
            return mid

        return job

    try:
        first = db.submit(hold)
        assert entered.wait(10)
        gone, kept = db.submit(insert(1)), db.submit(insert(2))
        assert gone.cancel()
        gate.set()
        first.result(timeout=10)
        assert kept.result(timeout=10) == 2
        rows = db.read_sync(lambda tx: tx.all("SELECT message_id FROM dispatch_queue ORDER BY message_id"))
        assert [int(r[0]) for r in rows] == [2]
    finally:
        db.close()


def test_counters_of_a_group_are_summed_written_once_and_a_failed_jobs_are_dropped(db_url: str) -> None:
    """``Tx.count``: the rollup moves of every job of a group are written by ONE flusher call before the
    commit, summed per key; a job that fails (before or after writing) leaves no count; ``reset_counters``
    drops what earlier jobs left to write, only if its own job succeeds."""
    from qixin.errors import QxError

    migrate(db_url)
    db = Database(db_url, writers=1)
    flushed: list[dict[Any, list[int]]] = []

    def flusher(tx: Tx, counters: dict[Any, list[int]]) -> None:
        flushed.append({k: list(v) for k, v in counters.items()})
        for (mid,), (n,) in ((k, v) for k, v in counters.items()):
            tx.execute(
                "INSERT INTO dispatch_queue (message_id, priority, due_at, attempts) VALUES (?, 1, 0, ?)", (mid, n)
            )

    def counts(key: int, n: int, fail: str = "", reset: bool = False) -> Callable[[Tx], int]:
        def job(tx: Tx) -> int:
            if reset:
                tx.reset_counters(flusher)
            tx.count(flusher, (key,), (n,))
            if fail == "wrote":  # wrote a row too: the group is run again with savepoints
                tx.execute(
                    "INSERT INTO dispatch_queue (message_id, priority, due_at, attempts) VALUES (?, 9, 0, 0)",
                    (1000 + key,),
                )
            if fail:
                raise QxError("INSUFFICIENT_BALANCE")
            return key

        return job

    def stored() -> dict[int, int]:
        rows = db.read_sync(lambda tx: tx.all("SELECT message_id, attempts FROM dispatch_queue"))
        return {int(r[0]): int(r[1]) for r in rows}

    try:
        out = _grouped(
            db, [counts(1, 2), counts(1, 3), counts(2, 5, fail="before"), counts(2, 7), counts(1, 100, "wrote")]
        )
        assert [o[0] for o in out] == ["ok", "ok", "error", "ok", "error"]
        assert stored() == {1: 5, 2: 7}  # summed; the failed jobs' 5 and 100 (and its row 1001) are gone
        assert flushed[-1] == {(1,): [5], (2,): [7]} and len(flushed) in (1, 2)  # one call per group run
        db.write_sync(lambda tx: tx.execute("DELETE FROM dispatch_queue"))

        flushed.clear()
        out = _grouped(
            db, [counts(3, 1), counts(4, 1, reset=True), counts(4, 2), counts(3, 9, fail="before", reset=True)]
        )
        assert [o[0] for o in out] == ["ok", "ok", "ok", "error"]
        assert stored() == {4: 3}  # the reset dropped job 1's count; the failed reset changed nothing
        assert flushed == [{(4,): [3]}]
    finally:
        db.close()


def test_processes_starting_together_seed_the_lexicon_once(db_url: str) -> None:
    """Several dispatchers start at once on one database: each seeds the default lexicon if absent; the
    version row is claimed first, so none fails on its key and the entries are written once."""
    import threading

    from qixin.services.compliance.store import seed_lexicon

    migrate(db_url)
    dbs = [Database(db_url) for _ in range(4)]
    errors: list[BaseException] = []
    go = threading.Barrier(len(dbs))

    def seed(db: Database) -> None:
        go.wait()
        try:
            db.write_sync(seed_lexicon)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=seed, args=(db,)) for db in dbs]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        n = dbs[0].read_sync(lambda tx: tx.one("SELECT COUNT(*) FROM lexicon_versions")[0])
        entries = dbs[0].read_sync(lambda tx: tx.one("SELECT COUNT(*) FROM lexicon_entries")[0])
        distinct = dbs[0].read_sync(
            lambda tx: tx.one("SELECT COUNT(DISTINCT kind || ':' || word) FROM lexicon_entries")[0]
        )
        assert n == 1 and entries == distinct > 0
    finally:
        for db in dbs:
            db.close()


def test_sqlite_writers_of_every_process_take_the_write_lock_file(tmp_path: Any) -> None:
    """A writer takes ``<database>.writelock`` around its transaction, so that writers of other processes
    on the same file wait in the kernel (woken when it is let go) rather than in SQLite's sleeping busy
    handler: while another process holds it (here: another open file), no write commits; once it is let
    go, the write that waited commits."""
    import fcntl
    import os

    from qixin.store.db import WRITE_LOCK_SUFFIX

    path = tmp_path / "q.db"
    db = Database(f"sqlite:///{path}")
    try:
        db.write_sync(lambda tx: tx.execute("CREATE TABLE t (v INTEGER)"))
        fd = os.open(str(path) + WRITE_LOCK_SUFFIX, os.O_RDWR)  # the writer created it
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # once the writer let it go after the CREATE
            fut = db.submit(lambda tx: tx.execute("INSERT INTO t VALUES (1)"))
            done, _ = concurrent.futures.wait([fut], timeout=0.3)
            assert not done  # waiting for the lock, not committed
            assert db.read_sync(lambda tx: tx.one("SELECT COUNT(*) FROM t")[0]) == 0
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        fut.result(timeout=10)
        assert db.read_sync(lambda tx: tx.one("SELECT COUNT(*) FROM t")[0]) == 1
    finally:
        db.close()
