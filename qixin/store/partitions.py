"""PostgreSQL only: the message archive range-partitioned by month (rules: services/retention.py,
docs/retention.md).

- ``messages`` is partitioned by ``id`` and ``submits`` by ``message_id``: ids are time-ordered
  (qixin/ids.py: milliseconds since 2024-01-01 << 22), so the ids of a month are one range and every
  lookup by id stays as it is. A month is a Beijing-time calendar month: ``messages_pYYYYMM`` /
  ``submits_pYYYYMM`` hold the ids from 00:00 Asia/Shanghai on its first day to the next month's.
- ``messages_default`` / ``submits_default`` catch what no month holds (a month not created in time,
  the complaint evidence kept from a dropped month). Creating a month moves its rows out of the default.
- ``messages_legacy`` / ``submits_legacy``: a table that held rows when migration 0022_retention2
  converted it became one partition covering every id below the month after the conversion
  (no rewrite); it is dropped like a month once all of it is past retention.
- SQLite has none of this: ``is_partitioned`` is False and the purge deletes in chunks.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from qixin import ids
from qixin.domain.calendar import SHANGHAI
from qixin.store.db import Database, Tx

T = TypeVar("T")

# partitioned table → its partition key
TABLES = {"messages": "id", "submits": "message_id"}
_BOUND = re.compile(r"FOR VALUES FROM \((MINVALUE|'?-?\d+'?)\) TO \((MAXVALUE|'?-?\d+'?)\)")


def id_at(ms: int) -> int:
    """The smallest id generated at ``ms`` (ms UTC) or later."""
    return max(ms - ids.EPOCH_MS, 0) << 22


def ms_of_id(i: int) -> int:
    return (i >> 22) + ids.EPOCH_MS


def month_start(year: int, month: int) -> int:
    """00:00 Beijing time on the first day of the month, ms UTC."""
    while month > 12:
        year, month = year + 1, month - 12
    while month < 1:
        year, month = year - 1, month + 12
    return int(datetime(year, month, 1, tzinfo=SHANGHAI).timestamp() * 1000)


def month_of(ms: int) -> tuple[int, int]:
    d = datetime.fromtimestamp(ms / 1000, SHANGHAI)
    return d.year, d.month


def next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


@dataclass(frozen=True)
class Part:
    name: str
    low: int | None  # None: MINVALUE (or the default partition)
    high: int | None  # None: MAXVALUE (or the default partition)
    default: bool = False


def is_partitioned(tx: Tx, table: str = "messages") -> bool:
    if not tx.is_pg:
        return False
    row = tx.one("SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(?)", (table,))
    return row is not None


def partitions(tx: Tx, table: str) -> list[Part]:
    """The partitions of ``table``, by lower bound (the default last)."""
    rows = tx.all(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
        " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(?)",
        (table,),
    )
    out: list[Part] = []
    for name, bound in rows:
        if bound == "DEFAULT":
            out.append(Part(str(name), None, None, True))
            continue
        m = _BOUND.search(str(bound))
        if m is None:
            continue
        low, high = (None if v in ("MINVALUE", "MAXVALUE") else int(v.strip("'")) for v in m.groups())
        out.append(Part(str(name), low, high))
    return sorted(out, key=lambda p: (p.default, -(2**63) if p.low is None else p.low))


def lock_parents(tx: Tx, lock_timeout_ms: int) -> None:
    """The exclusive lock a detach takes on the parents, taken up front (messages, then submits: one order
    for every process), so that what the transaction checks first still holds when it detaches."""
    set_lock_timeout(tx, lock_timeout_ms)
    tx.execute("LOCK TABLE messages, submits IN ACCESS EXCLUSIVE MODE")


def attached(tx: Tx, table: str, name: str) -> bool:
    """Whether ``name`` is (still) a partition of ``table``."""
    row = tx.one(
        "SELECT 1 FROM pg_inherits WHERE inhparent = to_regclass(?) AND inhrelid = to_regclass(?)", (table, name)
    )
    return row is not None


def month_name(table: str, year: int, month: int) -> str:
    return f"{table}_p{year:04d}{month:02d}"


def set_lock_timeout(tx: Tx, ms: int) -> None:
    """Waiting for a lock longer than ``ms`` fails the transaction (``isolated`` tries it again)."""
    tx.execute(f"SET LOCAL lock_timeout = '{int(ms)}ms'")


def creators_lock(tx: Tx) -> None:
    """One creator of partitions at a time (a transaction-level advisory lock: it blocks no send). Two
    processes checking and creating the same month at once would otherwise fail, or deadlock on the
    default partition that both read."""
    tx.execute("SELECT pg_advisory_xact_lock(?)", (CREATORS_LOCK,))


CREATORS_LOCK = 0x71786E_70617274  # "qxn" "part": this module's advisory lock key


def create_month(tx: Tx, year: int, month: int) -> list[str]:
    """Create the month's partition of every partitioned table unless a partition already covers any of
    its ids; rows of the month that landed in the default partition move into it. The names created.
    Callers other than ``ensure_months`` (tests, benches) run alone or take ``creators_lock`` first."""
    low, high = id_at(month_start(year, month)), id_at(month_start(year, month + 1))
    made: list[str] = []
    for table, key in TABLES.items():
        parts = partitions(tx, table)
        if any(not p.default and (p.low is None or p.low < high) and (p.high is None or p.high > low) for p in parts):
            continue
        name = month_name(table, year, month)
        if table == "messages":
            forget_seal(tx, name)  # a seal left by an earlier table of this name (dropped, made again)
        default = next((p.name for p in parts if p.default), None)
        stray = default is not None and tx.one(
            f"SELECT 1 FROM {default} WHERE {key} >= ? AND {key} < ? LIMIT 1", (low, high)
        )
        if stray:
            # ATTACH refuses while the default holds rows of the range: move them into the new table first
            tx.execute(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS)")
            tx.execute(f"INSERT INTO {name} SELECT * FROM {default} WHERE {key} >= ? AND {key} < ?", (low, high))
            tx.execute(f"DELETE FROM {default} WHERE {key} >= ? AND {key} < ?", (low, high))
            tx.execute(f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ({low}) TO ({high})")
        else:
            tx.execute(f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES FROM ({low}) TO ({high})")
        made.append(name)
    return made


def ensure_months(tx: Tx, now: int, ahead: int = 1) -> list[str]:
    """The current Beijing month and ``ahead`` more exist (where no partition covers them yet)."""
    if not is_partitioned(tx):
        return []
    set_lock_timeout(tx, 2000)
    creators_lock(tx)
    year, month = month_of(now)
    made: list[str] = []
    for _ in range(ahead + 1):
        made += create_month(tx, year, month)
        year, month = next_month(year, month)
    return made


def droppable(tx: Tx, below_id: int) -> list[tuple[Part, Part | None]]:
    """(messages partition, its submits partition) pairs whose whole id range is below ``below_id``."""
    subs = {(p.low, p.high): p for p in partitions(tx, "submits") if not p.default}
    return [
        (p, subs.get((p.low, p.high)))
        for p in partitions(tx, "messages")
        if not p.default and p.high is not None and p.high <= below_id
    ]


def scan_month(tx: Tx, part: str, before_at: int, final: Iterable[str],
               numbers: set[str], protected: set[int]) -> tuple[int, list[Any]]:  # fmt: skip
    """(rows, kept) of one messages partition in one scan; kept: (id, number, status, created_at,
    batch_id) of the messages the purge keeps — not final, not older than ``before_at``, or named by an
    open complaint (by number or by id)."""
    row = tx.one(
        "SELECT COUNT(*), COALESCE(json_agg(json_build_array(id, number, status, created_at, batch_id) ORDER BY id)"
        " FILTER (WHERE NOT (status = ANY(?)) OR created_at >= ? OR number = ANY(?) OR id = ANY(?)), '[]')"
        f" FROM {part}",
        (sorted(final), before_at, sorted(numbers), sorted(protected)),
    )
    kept = row[1] if isinstance(row[1], list) else json.loads(row[1])
    return int(row[0]), [tuple(k) for k in kept]


def count_rows(tx: Tx, part: str) -> int:
    return int(tx.one(f"SELECT COUNT(*) FROM {part}")[0])


# -- sealed months (table archive_months) ---------------------------------------------------------------------
SEAL_AFTER_MS = 86_400_000  # a month is sealed a day after it ended (ids of a burst borrow milliseconds, clocks drift)
_MONTH = re.compile(r"^messages_p[0-9]{6}$")


@dataclass(frozen=True)
class Seal:
    """A month counted once it was over: its messages, their parts, and the ids that were not final then."""

    messages: int
    submits: int
    open_ids: tuple[int, ...]


def sealable(tx: Tx, now: int) -> list[tuple[Part, Part | None]]:
    """(messages, submits) month partitions whose month ended ``SEAL_AFTER_MS`` before ``now`` and that
    have no seal yet (the legacy and default partitions are never sealed: the chunked walk deletes there)."""
    sealed = {str(r[0]) for r in tx.all("SELECT name FROM archive_months")}
    return [pair for pair in droppable(tx, id_at(now - SEAL_AFTER_MS))
            if _MONTH.match(pair[0].name) and pair[0].name not in sealed]  # fmt: skip


def count_month(tx: Tx, mpart: Part, spart: Part | None, final: Iterable[str]) -> Seal:
    """One scan of a past month (read-only, no lock anyone waits for): its rows, its parts' rows and the
    ids of the messages that may still change — not final (no ``done_at``, or a status that is not final)
    or created after the month's range (a margin no clock should reach: kept, decided at the purge)."""
    assert mpart.high is not None
    row = tx.one(
        "SELECT COUNT(*), COALESCE(json_agg(id ORDER BY id) FILTER (WHERE done_at IS NULL"
        f" OR NOT (status = ANY(?)) OR created_at >= ?), '[]') FROM {mpart.name}",
        (sorted(final), ms_of_id(mpart.high)),
    )
    open_ids = row[1] if isinstance(row[1], list) else json.loads(row[1])
    parts = count_rows(tx, spart.name) if spart is not None else 0
    return Seal(int(row[0]), parts, tuple(int(i) for i in open_ids))


def save_seal(tx: Tx, name: str, seal: Seal, at: int) -> bool:
    """Record a month's seal unless one is there (two processes sealing at once: the first stays)."""
    tx.execute(
        "INSERT INTO archive_months (name, messages, submits, open_ids, sealed_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (name) DO NOTHING",
        (name, seal.messages, seal.submits, json.dumps(list(seal.open_ids)), at),
    )
    return tx.rowcount == 1


def seal_of(tx: Tx, name: str) -> Seal | None:
    row = tx.one("SELECT messages, submits, open_ids FROM archive_months WHERE name = ?", (name,))
    if row is None:
        return None
    return Seal(int(row[0]), int(row[1]), tuple(int(i) for i in json.loads(row[2])))


def forget_seal(tx: Tx, name: str) -> None:
    tx.execute("DELETE FROM archive_months WHERE name = ?", (name,))


def sealed_keep(tx: Tx, part: str, seal: Seal, before_at: int, final: Iterable[str],
                numbers: set[str], protected: set[int]) -> list[Any]:  # fmt: skip
    """What ``scan_month`` finds, for a sealed month, by index instead of a scan: the final messages to the
    complaints' numbers (``ix_messages_number_done`` holds every message with ``done_at``), the complaints'
    messages and the seal's open ids by key — then the same rule: kept when not final, newer than
    ``before_at``, or named by an open complaint. (id, number, status, created_at, batch_id), by id."""
    done = set(final)
    rows = tx.all(
        f"SELECT id, number, status, created_at, batch_id FROM {part}"
        " WHERE (number = ANY(?) AND done_at IS NOT NULL) OR id = ANY(?) ORDER BY id",
        (sorted(numbers), sorted(protected | set(seal.open_ids))),
    )
    return [
        tuple(r) for r in rows
        if r[2] not in done or int(r[3]) >= before_at or r[1] in numbers or int(r[0]) in protected
    ]  # fmt: skip


def first_month_low(tx: Tx, above: int) -> int | None:
    """The lowest id of the month partitions not wholly below ``above``: where the chunked walk stops on a
    partitioned archive (months go whole, by ``detach_month``; the walk keeps to the legacy and default
    partitions' old rows, so a sealed month's counts stay true)."""
    lows = [p.low for p in partitions(tx, "messages")
            if _MONTH.match(p.name) and p.low is not None and (p.high is None or p.high > above)]  # fmt: skip
    return min(lows) if lows else None


def detach_month(tx: Tx, messages_part: str, submits_part: str | None, keep: Sequence[int],
                 lock_timeout_ms: int, timings: dict[str, float] | None = None) -> tuple[int, int]:  # fmt: skip
    """Detach one month (messages and its submits) from the parents; the messages in ``keep`` and their
    parts are copied out first and written back through the parents (they land in the default
    partitions). The parents' exclusive lock lasts for this transaction only: catalog changes and the copy
    of ``keep``. The detached tables are dropped afterwards (``drop_detached``), in a transaction of their
    own, because a DROP frees the files at commit, which on a big month takes seconds, and it would hold
    the lock that long. Returns the rows kept (messages, submits); ``timings`` receives each step's ms."""
    times = timings if timings is not None else {}
    t = time.perf_counter()

    def step(name: str, sql: str, params: Sequence[Any] = ()) -> None:
        nonlocal t
        tx.execute(sql, params)
        now = time.perf_counter()
        times[name] = round((now - t) * 1000, 1)
        t = now

    set_lock_timeout(tx, lock_timeout_ms)
    step("detach_messages", f"ALTER TABLE messages DETACH PARTITION {messages_part}")
    forget_seal(tx, messages_part)
    if submits_part:
        step("detach_submits", f"ALTER TABLE submits DETACH PARTITION {submits_part}")
    kept = kept_subs = 0
    if keep:
        step("write_back", f"INSERT INTO messages SELECT * FROM {messages_part} WHERE id = ANY(?)", (list(keep),))
        kept = tx.rowcount
        if submits_part:
            step("write_back_submits", f"INSERT INTO submits SELECT * FROM {submits_part} WHERE message_id = ANY(?)",
                 (list(keep),))  # fmt: skip
            kept_subs = tx.rowcount
    return kept, kept_subs


_DETACHED = r"^(messages|submits)_(p[0-9]{6}|legacy)$"


def detached(tx: Tx) -> list[str]:
    """Month (or legacy) tables no longer attached: detached by a purge whose drop has not run yet."""
    rows = tx.all(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND c.relkind = 'r' AND NOT c.relispartition AND c.relname ~ ?"
        " ORDER BY c.relname",
        (_DETACHED,),
    )
    return [str(r[0]) for r in rows]


def drop_detached(tx: Tx, names: Sequence[str], lock_timeout_ms: int) -> None:
    """Drop detached month tables (their rows to keep were written back when they were detached)."""
    set_lock_timeout(tx, lock_timeout_ms)
    for name in names:
        if re.match(_DETACHED, name):
            tx.execute(f"DROP TABLE IF EXISTS {name}")


def isolated(db: Database, fn: Callable[[Tx], T], attempts: int = 5) -> T:
    """Run ``fn`` in a transaction of its own connection (not the group-committing writers): DDL that
    takes an exclusive lock must not share a transaction with sends, nor hold one of their writers while
    it waits for the lock. ``fn`` sets a lock timeout; a timeout rolls back and tries again, a little
    later each time, at most ``attempts`` times."""
    import psycopg

    for attempt in range(attempts):
        conn = db.connect()
        try:
            value = fn(Tx(conn, db.is_pg))
            conn.commit()
            return value
        except psycopg.errors.LockNotAvailable:
            conn.rollback()
            if attempt == attempts - 1:
                raise
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()
        time.sleep(0.2 * (attempt + 1))  # a backoff between attempts (the lock holder is a running query)
    raise AssertionError("unreachable")


def describe(tx: Tx) -> list[dict[str, Any]]:
    """The partitions of the archive with their time ranges and estimated rows (``qixin retention
    partitions``); empty on SQLite or before the conversion."""
    if not is_partitioned(tx):
        return []
    out: list[dict[str, Any]] = []
    for table in TABLES:
        for p in partitions(tx, table):
            est = tx.one("SELECT reltuples FROM pg_class WHERE oid = to_regclass(?)", (p.name,))
            out.append({
                "table": table, "partition": p.name, "default": p.default,
                "from": None if p.low is None else ms_of_id(p.low),
                "to": None if p.high is None else ms_of_id(p.high),
                "rows_estimate": max(int(est[0]), 0) if est else 0,
            })  # fmt: skip
    return out


_PARTITION_NAME = re.compile(r"^(?:messages|submits)_(?:p\d{6}|default|legacy)$")


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Alembic's ``include_name``: the monthly, default and legacy partitions are not tables of the
    declared schema (qixin/store/schema.py declares the partitioned parents)."""
    return not (type_ == "table" and name is not None and _PARTITION_NAME.match(name))
