"""Database access for hot paths: raw DB-API connections, one writer thread with group commit.

Rules:
- SQL is written once with ``?`` placeholders; on PostgreSQL they become ``%s``.
- All writes go through ``Database.write(job)``: a job is a function ``job(tx) -> result`` run in a
  writer thread. The writer takes every job waiting (up to ``group``), runs them in ONE transaction and
  commits once (group commit). Each job's changes therefore commit together or not at all.
- Jobs are isolated: a job that raises ``QxError`` leaves nothing, even if it wrote before raising;
  the error is handed to that job's caller and the rest of the group commits. Each job of a group
  runs inside a SAVEPOINT only when needed: the group first runs without any (no extra statements on
  the hot path). A job refused before it changed anything (the writer's Tx notes whether a statement
  may have changed rows) needs nothing undone. When a job that did change rows raises ``QxError``, the
  group is rolled back and run again with one SAVEPOINT per job, and the failing job is rolled back to
  its own; a group of that one job is simply rolled back. Any other exception rolls the whole group
  back and every job of it is run again alone, so one faulty job cannot take others with it. Jobs must
  therefore be safe to run again (they only read and write through ``tx``).
- ``Batched`` jobs made by one function run as one unit of their group: that function writes all of
  their items at once (one statement per table) and answers per item; when it raises, they run again
  one at a time as above.
- SQLite: one writer (SQLite has one writer anyway), WAL, synchronous=NORMAL. PostgreSQL: several
  writers, each with its own connection; concurrency is made safe by conditional updates and
  ``FOR UPDATE SKIP LOCKED``, never by the writer being single.
- Reads run in worker threads with one connection per thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from qixin.errors import QxError

T = TypeVar("T")
Job = Callable[["Tx"], Any]
Counters = dict[Any, list[int]]
Flusher = Callable[["Tx", Counters], None]


COPY_MIN_ROWS = 64  # PostgreSQL: below this, plain INSERTs beat COPY
CONST_MIN_ROWS = 64  # SQLite: below this, bulk_insert_const binds its constants too (one statement text)
IN_LIST_MAX = 500  # values per "IN (?, …)" list: well under SQLite's parameter limit
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # BIGINT on both databases


def chunks(seq: Sequence[T], n: int = IN_LIST_MAX) -> list[Sequence[T]]:
    """``seq`` cut into pieces of at most ``n`` (for IN lists)."""
    return [seq[i : i + n] for i in range(0, len(seq), n)]


def now_ms() -> int:
    return int(time.time() * 1000)


def add_into(counters: dict[Any, list[int]], key: Any, values: Sequence[int]) -> None:
    """Add ``values`` to ``counters[key]`` (a new list when the key is new)."""
    v = counters.get(key)
    if v is None:
        counters[key] = list(values)
    else:
        for i, x in enumerate(values):
            v[i] += x


def _literal(name: str, v: bool | int | str | None) -> str:
    """SQL text of a ``bulk_insert_const`` constant: bools, ints, None, or short identifiers only."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "1" if v else "0"
    if not isinstance(v, int | str):
        raise TypeError(f"constant {name} must be bool, int, str or None")
    if isinstance(v, int):
        return str(int(v))
    if v.isascii() and v.replace("_", "").isalpha() and v.islower():
        return f"'{v}'"
    raise ValueError(f"constant {name}={v!r} is not a plain identifier; bind it as a column")


class Tx:
    """A thin cursor wrapper that speaks one placeholder style on both databases."""

    __slots__ = ("_conn", "_cur", "_group_counters", "_job_counters", "is_pg")

    def __init__(self, conn: Any, is_pg: bool) -> None:
        self._conn = conn
        self._cur = conn.cursor()
        self.is_pg = is_pg
        # additive counters (``count``): the current job's, and the group's (jobs that succeeded)
        self._job_counters: dict[Flusher, tuple[bool, Counters]] = {}
        self._group_counters: dict[Flusher, Counters] = {}

    # -- additive counters, written once per transaction -----------------------------------------
    def count(self, flusher: Flusher, key: Any, values: Sequence[int]) -> None:
        """Add ``values`` to the counters under ``key``; ``flusher(tx, counters)`` writes them once,
        summed over every job of the group, just before the commit (rollups: one upsert per bucket per
        group, not per request). A job that fails leaves nothing: its counters are dropped with it."""
        add_into(self.counters(flusher), key, values)

    def counters(self, flusher: Flusher) -> dict[Any, list[int]]:
        """This job's counters of ``flusher`` (key -> values), for callers that add many moves with
        ``add_into`` (no lookup per move); the same rules as ``count``."""
        entry = self._job_counters.get(flusher)
        if entry is None:
            entry = self._job_counters[flusher] = (False, {})
        return entry[1]

    def reset_counters(self, flusher: Flusher) -> None:
        """Drop the counters of ``flusher`` that earlier jobs left to write (a job that recomputes what
        they count from the rows themselves); takes effect only if this job succeeds."""
        self._job_counters[flusher] = (True, {})

    def _end_job(self, ok: bool) -> None:
        if ok:
            for flusher, (reset, acc) in self._job_counters.items():
                group = self._group_counters.get(flusher)
                if reset or group is None:
                    self._group_counters[flusher] = acc
                    continue
                for key, values in acc.items():
                    add_into(group, key, values)
        self._job_counters = {}

    def flush_counters(self) -> None:
        """Write the group's counters (the writer calls it before each commit)."""
        groups, self._group_counters = self._group_counters, {}
        for flusher, acc in groups.items():
            if acc:
                flusher(self, acc)

    def _sql(self, sql: str) -> str:
        return _pg_sql(sql) if self.is_pg else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        for p in params:  # both databases store signed 64-bit integers: a larger one is bad input, not a crash
            if type(p) is int and not INT64_MIN <= p <= INT64_MAX:
                raise QxError("INVALID_REQUEST", "数值超出范围（须为 64 位有符号整数）")
        self._cur.execute(self._sql(sql), params)
        return self._cur

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            self._cur.executemany(self._sql(sql), rows)

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.execute(sql, params).fetchone()

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(self.execute(sql, params).fetchall())

    @property
    def rowcount(self) -> int:
        return int(self._cur.rowcount)

    def bulk_insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert many rows: COPY on PostgreSQL, executemany on SQLite."""
        if not rows:
            return
        if self.is_pg and len(rows) >= COPY_MIN_ROWS:
            with self._cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        elif self.is_pg:  # a few rows: COPY's set-up costs more than the INSERT
            marks = ", ".join(["%s"] * len(columns))
            self._cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
        else:
            marks = ", ".join("?" * len(columns))
            self._cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    def bulk_insert_const(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        constants: dict[str, bool | int | str | None],
    ) -> None:
        """``bulk_insert`` where some columns hold the same value in every row.

        SQLite binds only the varying columns of a large insert (the constants become literals in the
        statement: far fewer parameters per row); below ``CONST_MIN_ROWS`` rows it binds them too, so that
        a single send's insert keeps one statement text (compiled once). PostgreSQL COPYs full rows.
        Constants must be bools, ints, None, or short identifiers (``[a-z_]``) — never customer text,
        which must stay a parameter.
        """
        if not rows:
            return
        literals = [] if self.is_pg else [_literal(name, v) for name, v in constants.items()]  # refuses non-constants
        if self.is_pg or len(rows) < CONST_MIN_ROWS:
            # every value bound: COPY on PostgreSQL; on SQLite a few rows keep one statement text from
            # request to request, so SQLite compiles it once (its statement cache), not once per request
            values = tuple(constants.values())
            self.bulk_insert(table, (*columns, *constants), [(*r, *values) for r in rows])
            return
        marks = ", ".join("?" * len(columns))
        sql = f"INSERT INTO {table} ({', '.join((*columns, *constants))}) VALUES ({marks}, {', '.join(literals)})"
        self._cur.executemany(sql, rows)

    def in_list(self, values: Sequence[Any]) -> str:
        return ", ".join("?" * len(values))

    # savepoints isolate the jobs of one group commit (Database._run_group, name qx_job) and the items of
    # a Batched job that may refuse after writing (services/accept.py, qx_item)
    def savepoint(self, name: str = "qx_job") -> None:
        self._cur.execute(f"SAVEPOINT {name}")

    def release_savepoint(self, name: str = "qx_job") -> None:
        self._cur.execute(f"RELEASE SAVEPOINT {name}")

    def rollback_to_savepoint(self, name: str = "qx_job") -> None:
        self._cur.execute(f"ROLLBACK TO SAVEPOINT {name}")
        self._cur.execute(f"RELEASE SAVEPOINT {name}")


_pg_cache: dict[str, str] = {}


def _pg_sql(sql: str) -> str:
    out = _pg_cache.get(sql)
    if out is None:
        out = sql.replace("%", "%%").replace("?", "%s")
        _pg_cache[sql] = out
    return out


# On SQLite the writers of every process on one file (the API's, the dispatcher's, the workers') take this lock
# file (``<database>.writelock``, flock) around each group's transaction, before BEGIN IMMEDIATE. A writer that
# finds the database locked otherwise waits in SQLite's busy handler, which sleeps 1, 2, 5, 10, 15, 20, 25 … ms
# between tries whatever the holder does: with the dispatcher's 10–15 ms flushes, a port's accept waited up to
# twice as long as the lock was held. flock wakes the waiter when the lock is let go. A writer that does not take
# it (the sqlite3 shell, a migration) is still kept out by SQLite's own lock and busy timeout.
WRITE_LOCK_SUFFIX = ".writelock"


def _sqlite_path(url: str) -> str:
    path = url.split("///", 1)[1] if "///" in url else url.split(":", 1)[1]
    return path


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be reached rather than that the request was wrong: a
    PostgreSQL connection that was cut or cannot be opened (``psycopg.OperationalError``: the server
    restarted, refuses connections, the network failed; ``InterfaceError``: used after it was closed), or
    SQLite still locked after its busy timeout.
    The entry points answer these with a retryable SERVICE_UNAVAILABLE instead of INTERNAL_ERROR."""
    if isinstance(exc, sqlite3.OperationalError):
        return "locked" in str(exc) or "busy" in str(exc)
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    # InterfaceError: a statement on a connection already closed under it ("the connection is closed")
    return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))


def connection_errors() -> tuple[type[Exception], ...]:
    """The exception classes ``unavailable`` looks at (the entry points register their handler on these, so
    that an outage is answered without the generic handler's re-raise and traceback in the log)."""
    import psycopg

    return (sqlite3.OperationalError, psycopg.OperationalError, psycopg.InterfaceError)


def pg_dsn(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


class Batched:
    """A write job that the writer may run together with the other jobs of its group made by the same
    ``fn``: ``fn(tx, items)`` does the work of every item at once (one statement per table instead of
    one per item) and returns one result per item, in order. An item it refuses gets its QxError as its
    result (returned, not raised), and such an item must have written nothing; ``fn`` raising fails
    the whole run, which then runs again one item at a time (``fn(tx, [item])``, as any job), so one
    item can never take the others with it. Called alone it is ``fn(tx, [item])[0]``."""

    __slots__ = ("fn", "item")

    def __init__(self, fn: Callable[[Tx, list[Any]], list[Any]], item: Any) -> None:
        self.fn, self.item = fn, item

    def __call__(self, tx: Tx) -> Any:
        return self.fn(tx, [self.item])[0]


def _units(group: list[tuple[Job, concurrent.futures.Future[Any]]]) -> list[list[tuple[Job, Any]]]:
    """The group as units of work: every ``Batched`` job of one ``fn`` in one unit (where the first of
    them stands: jobs of one group were submitted concurrently, so any order of them is a valid one),
    every other job alone."""
    units: list[list[tuple[Job, Any]]] = []
    runs: dict[Any, list[tuple[Job, Any]]] = {}
    for g in group:
        job = g[0]
        if isinstance(job, Batched):
            run = runs.get(job.fn)
            if run is None:
                run = runs[job.fn] = []
                units.append(run)
            run.append(g)
        else:
            units.append([g])
    return units


class _Isolate(Exception):
    """A job of a group raised QxError after writing: run the group again with a savepoint per job."""


class _JobTx(Tx):
    """The writer's Tx: notes whether the current job may have changed anything (``wrote``), so that a
    job refused before its first change (the usual case: a conditional update that matched nothing)
    needs no savepoint and no re-run. Errs on the side of "wrote"."""

    __slots__ = ("wrote",)

    def __init__(self, conn: Any, is_pg: bool) -> None:
        super().__init__(conn, is_pg)
        self.wrote = False

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        cur = super().execute(sql, params)
        if not self.wrote and cur.rowcount != 0 and sql.lstrip()[:6].upper() != "SELECT":
            self.wrote = True
        return cur

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            self.wrote = True
        super().executemany(sql, rows)

    def bulk_insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.wrote = True
        super().bulk_insert(table, columns, rows)

    def bulk_insert_const(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        constants: dict[str, bool | int | str | None],
    ) -> None:
        if rows:
            self.wrote = True
        super().bulk_insert_const(table, columns, rows, constants)


DEADLOCK_RETRIES = 8  # a single job chosen as a deadlock victim runs again up to this many times
_RETRY_STATES = ("40P01", "40001")  # deadlock_detected, serialization_failure: the transaction was rolled back


class Database:
    def __init__(self, url: str, writers: int | None = None, group: int = 512) -> None:
        self.url = url
        self.is_pg = url.startswith("postgres")
        self.group = group
        self._n_writers = writers or (4 if self.is_pg else 1)
        self._jobs: queue.SimpleQueue[tuple[Job, concurrent.futures.Future[Any]] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._local = threading.local()
        self._read_conns: list[Any] = []
        self._lock = threading.Lock()
        self._started = False
        # the writers' lock file (WRITE_LOCK_SUFFIX); none for PostgreSQL or an in-memory SQLite database
        self._lock_path = ""
        if not self.is_pg:
            path = _sqlite_path(url)
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            if path and ":memory:" not in path and "mode=memory" not in path:
                self._lock_path = path + WRITE_LOCK_SUFFIX

    # -- connections -----------------------------------------------------------------------------
    def connect(self) -> Any:
        if self.is_pg:
            import psycopg

            return psycopg.connect(pg_dsn(self.url), autocommit=False)
        conn = sqlite3.connect(
            _sqlite_path(self.url), isolation_level=None, check_same_thread=False, cached_statements=512
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA foreign_keys=OFF")
        return conn

    def _begin(self, conn: Any) -> None:
        if not self.is_pg:
            conn.execute("BEGIN IMMEDIATE")

    # -- writes ----------------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
            for i in range(self._n_writers):
                t = threading.Thread(target=self._writer_loop, name=f"qixin-writer-{i}", daemon=True)
                t.start()
                self._threads.append(t)

    def close(self) -> None:
        with self._lock:
            if self._started:
                for _ in self._threads:
                    self._jobs.put(None)
                for t in self._threads:
                    t.join(timeout=10)
                self._threads.clear()
                self._started = False
            for c in self._read_conns:
                with contextlib.suppress(Exception):
                    c.close()
            self._read_conns.clear()

    def submit(self, job: Job) -> concurrent.futures.Future[Any]:
        if not self._started:
            self.start()
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._jobs.put((job, fut))
        return fut

    async def write(self, job: Callable[[Tx], T]) -> T:
        return await asyncio.wrap_future(self.submit(job))

    def write_sync(self, job: Callable[[Tx], T]) -> T:
        return self.submit(job).result()  # type: ignore[no-any-return,unused-ignore]

    def _broken(self, conn: Any) -> bool:
        """A PostgreSQL connection the server or the network closed (psycopg marks it; SQLite never is)."""
        return self.is_pg and bool(conn.closed or conn.broken)

    def _lost(self, conn: Any, exc: BaseException) -> bool:
        """Whether ``exc`` says ``conn`` was lost; such a connection is closed here, so that the next use opens
        a new one. psycopg does not always mark it: when the socket fails under a wait it raises
        "connection socket closed" while libpq still calls the connection good (seen in CI after
        ``pg_terminate_backend``), so an error without a SQLSTATE, or of class 08 (connection exception) or
        57P (the server shutting down or terminating the backend), counts as lost too."""
        if not self.is_pg:
            return False
        if self._broken(conn):
            return True
        if not unavailable(exc):  # not a connection's error at all (a constraint, a bad statement)
            return False
        state = getattr(exc, "sqlstate", None)
        if state is not None and not state.startswith(("08", "57P")):
            return False  # a statement's own error (a timeout, a cancel): the connection is fine
        with contextlib.suppress(Exception):
            conn.close()
        return True

    def _writer_conn(self, conn: Any, group: list[tuple[Job, concurrent.futures.Future[Any]]]) -> Any:
        """The writer's connection, opened again when it was lost (PostgreSQL restarted, the connection cut):
        without this a writer whose connection died failed every job for ever. When it cannot be opened,
        the group fails with that error (each caller retries in its own way) and None is returned."""
        if conn is not None and not self._broken(conn):
            return conn
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
        try:
            return self.connect()
        except Exception as exc:
            for _, fut in group:
                if not fut.done():
                    fut.set_exception(exc)
            return None

    def _writer_loop(self) -> None:
        conn: Any = None
        lock_fd: int | None = None
        try:
            while True:
                item = self._jobs.get()
                if item is None:
                    return
                if lock_fd is None and self._lock_path:
                    lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
                if lock_fd is not None:
                    fcntl.flock(lock_fd, fcntl.LOCK_EX)  # the GIL is released while it waits
                try:
                    # the group is taken once the lock is held: jobs that came while another process wrote
                    # go into this transaction instead of waiting for the lock once more
                    group, stop = self._take_group(item)
                    if group:
                        conn = self._writer_conn(conn, group)
                        if conn is not None:
                            self._run_group(conn, group)
                finally:
                    if lock_fd is not None:
                        fcntl.flock(lock_fd, fcntl.LOCK_UN)
                if stop:
                    return
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
            if lock_fd is not None:
                os.close(lock_fd)

    def _take_group(
        self, item: tuple[Job, concurrent.futures.Future[Any]]
    ) -> tuple[list[tuple[Job, concurrent.futures.Future[Any]]], bool]:
        """``item`` and the jobs waiting behind it, up to ``group``; and whether the stop mark was met. A job
        whose caller gave up (its future cancelled) before it started does not run; once running, its future
        can no longer be cancelled, so a caller never sees "cancelled" for a job that committed."""
        group = [item]
        stop = False
        while len(group) < self.group:
            try:
                nxt = self._jobs.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                stop = True
                break
            group.append(nxt)
        return [g for g in group if g[1].set_running_or_notify_cancel()], stop

    def _run_group(
        self,
        conn: Any,
        group: list[tuple[Job, concurrent.futures.Future[Any]]],
        savepoints: bool = False,
        attempt: int = 0,
    ) -> None:
        results: list[tuple[bool, Any]] = []
        # Batched jobs of one fn run as one unit, except when the group runs again to isolate a job
        units = [[g] for g in group] if savepoints or len(group) == 1 else _units(group)
        if len(units) < len(group):
            group = [g for unit in units for g in unit]  # the order the results come in
        try:
            self._begin(conn)
            tx = _JobTx(conn, self.is_pg)
            for unit in units:
                tx.wrote = False
                if savepoints:
                    tx.savepoint()
                try:
                    if len(unit) == 1:
                        values = [unit[0][0](tx)]
                    else:
                        first = unit[0][0]
                        assert isinstance(first, Batched)
                        values = first.fn(tx, [j.item for j, _ in unit])  # type: ignore[attr-defined]  # every job of the unit is Batched
                        if len(values) != len(unit):
                            raise RuntimeError(f"{first.fn!r} answered {len(values)} results for {len(unit)} items")
                except QxError as e:
                    tx._end_job(False)
                    if savepoints:
                        tx.rollback_to_savepoint()  # only this job's writes go
                    elif (tx.wrote or len(unit) > 1) and len(group) > 1:  # a batched run: whose error?
                        raise _Isolate from e
                    elif tx.wrote:  # alone in its transaction: nothing of it may stay
                        conn.rollback()
                        if not group[0][1].done():
                            group[0][1].set_exception(e)
                        return
                    # else: refused before changing anything, nothing to undo
                    results.extend((False, e) for _ in unit)
                    continue
                except BaseException:
                    tx._end_job(False)
                    raise
                tx._end_job(True)
                if savepoints:
                    tx.release_savepoint()
                results.extend((True, v) for v in values)
            tx.flush_counters()
            conn.commit()
        except _Isolate:
            conn.rollback()
            self._run_group(conn, group, savepoints=True)
            return
        except Exception as exc:
            with contextlib.suppress(Exception):
                conn.rollback()
            if len(group) == 1 and attempt < DEADLOCK_RETRIES and getattr(exc, "sqlstate", None) in _RETRY_STATES:
                # PostgreSQL chose this transaction as a deadlock victim and rolled all of it back: run
                # the job again (as the isolation below does), after a short pause that grows. Several
                # writer threads' group commits lock accounts and packages in the order of their jobs, so
                # two groups can meet in opposite orders (found by tests/test_money_contention.py)
                time.sleep(0.002 * (attempt + 1) * (1 + (threading.get_ident() % 7)))
                self._run_group(conn, group, savepoints, attempt + 1)
                return
            if self._lost(conn, exc) or len(group) == 1:  # a lost connection fails every job of the group
                for _, fut in group:
                    if not fut.done():
                        fut.set_exception(exc)
                return
            for one in group:  # isolate the faulty job
                self._run_group(conn, [one])
            return
        for (_, fut), (ok, value) in zip(group, results, strict=True):
            if fut.done():
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

    # -- reads -----------------------------------------------------------------------------------
    def _reader(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._broken(conn):
            self._drop_reader(conn)
            conn = None
        if conn is None:
            conn = self.connect()
            if self.is_pg:
                conn.autocommit = True
            self._local.conn = conn
            with self._lock:
                self._read_conns.append(conn)
        return conn

    def _drop_reader(self, conn: Any) -> None:
        self._local.conn = None
        with self._lock:
            if conn in self._read_conns:
                self._read_conns.remove(conn)
        with contextlib.suppress(Exception):
            conn.close()

    def read_sync(self, fn: Callable[[Tx], T]) -> T:
        conn = self._reader()
        try:
            return fn(Tx(conn, self.is_pg))
        except Exception as exc:
            if not self._lost(conn, exc):
                raise
            # the connection was lost (cut by the server, PostgreSQL restarted): a read changes nothing, so
            # it runs once more on a new connection instead of failing every later read of this thread
            self._drop_reader(conn)
        return fn(Tx(self._reader(), self.is_pg))

    async def read(self, fn: Callable[[Tx], T]) -> T:
        return await asyncio.to_thread(self.read_sync, fn)

    async def read_small(self, fn: Callable[[Tx], T]) -> T:
        """A small indexed read (a few rows by key). On SQLite it runs inline: a local WAL read takes tens
        of microseconds, less than the hop to a worker thread. On PostgreSQL (a network round trip) it
        goes to a thread like ``read``. Never use it for scans."""
        if self.is_pg:
            return await asyncio.to_thread(self.read_sync, fn)
        return self.read_sync(fn)
