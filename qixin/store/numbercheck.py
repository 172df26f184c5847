"""SQL of the number status check (services/numbercheck.py): the evidence, the checks and their results.

Evidence is read with ONE query per source per chunk of numbers (``CHUNK`` numbers as one parameter:
``= ANY(?)`` on PostgreSQL, ``json_each(?)`` on SQLite), never one query per number. The history
query uses ``ix_messages_number_done`` (migration 0022_writer), partial on ``done_at IS NOT NULL`` (set
exactly when a message becomes final): the condition is repeated in the query so that both databases
see that the index applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import orjson

from qixin.store.db import Tx

T = TypeVar("T")

CHUNK = 5_000
# PostgreSQL: numbers per statement. On a table where the numbers' rows are a large share the planner scans
# it once per statement (hashed ``= ANY``): fewer, larger statements scan it fewer times (a 100,000-number
# history read: 20 statements 3.1 s, 2 statements 1.8 s, loaded machine; bench/RESULTS.md).
PG_CHUNK = 50_000
PG_WORK_MEM = "64MB"  # a large history read's session work_mem on PostgreSQL (reset after)
RECEIPT_STATUSES = ("delivered", "undelivered", "expired")


def _in(tx: Tx, column: str, numbers: Sequence[str]) -> tuple[str, tuple[Any, ...]]:
    if tx.is_pg:
        text = ",".join(numbers)
        if text.count(",") == len(numbers) - 1:  # no entry holds a comma: one text, split by the server
            # (a text[] parameter of 50,000 entries costs ~30-100 ms of client CPU to adapt and as much for
            # the server to parse; string_to_array of one text is a few ms, and folds to the same constant)
            return f"{column} = ANY(string_to_array(?, ','))", (text,)
        return f"{column} = ANY(?)", (list(numbers),)
    return f"{column} IN (SELECT value FROM json_each(?))", (orjson.dumps(list(numbers)).decode(),)


def channel_protocols(tx: Tx) -> dict[str, str]:
    return {str(n): str(p) for n, p in tx.all("SELECT name, protocol FROM channels")}


def history(tx: Tx, numbers: Sequence[str]) -> list[Any]:
    """(number, status, channel, stat, err, error_code, count, latest time) of the final receipts of
    ``numbers``, grouped (every account: the platform's own evidence)."""
    out: list[Any] = []
    final = ", ".join(f"'{s}'" for s in RECEIPT_STATUSES)
    big = tx.is_pg and len(numbers) > CHUNK
    if big:  # the GROUP BY of a large read sorts in memory instead of spilling to disk (default 4 MB)
        tx.execute(f"SET work_mem = '{PG_WORK_MEM}'")
    try:
        for part in _chunks(numbers, tx):
            cond, params = _in(tx, "number", part)
            out += tx.all(
                "SELECT number, status, channel, carrier_stat, carrier_err, error_code, COUNT(*),"
                " MAX(COALESCE(done_at, submitted_at, created_at)) FROM messages"
                f" WHERE {cond} AND done_at IS NOT NULL AND status IN ({final})"
                " GROUP BY number, status, channel, carrier_stat, carrier_err, error_code",
                params,
            )
    finally:
        if big:
            tx.execute("RESET work_mem")
    return out


def risk_and_ported(tx: Tx, numbers: Sequence[str]) -> tuple[set[str], dict[str, int], dict[str, str]]:
    """``blacklisted``, ``complaint_counts`` and ``ported`` of ``numbers`` in one statement per chunk (one
    round trip instead of three on PostgreSQL)."""
    black: set[str] = set()
    compl: dict[str, int] = {}
    moved: dict[str, str] = {}
    for part in _chunks(numbers, tx):
        cond, params = _in(tx, "number", part)
        rows = tx.all(
            f"SELECT 'b', number, NULL, 0 FROM blacklist WHERE {cond}"
            f" UNION ALL SELECT 'c', number, NULL, COUNT(*) FROM complaints WHERE {cond} GROUP BY number"
            f" UNION ALL SELECT 'p', number, carrier, 0 FROM ported_numbers WHERE {cond}",
            params * 3,
        )
        for src, n, carrier, count in rows:
            if src == "b":
                black.add(str(n))
            elif src == "c":
                compl[str(n)] = int(count)
            else:
                moved[str(n)] = str(carrier)
    return black, compl, moved


def blacklisted(tx: Tx, numbers: Sequence[str]) -> set[str]:
    out: set[str] = set()
    for part in _chunks(numbers, tx):
        cond, params = _in(tx, "number", part)
        out.update(str(r[0]) for r in tx.all(f"SELECT number FROM blacklist WHERE {cond}", params))
    return out


def complaint_counts(tx: Tx, numbers: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in _chunks(numbers, tx):
        cond, params = _in(tx, "number", part)
        for n, c in tx.all(f"SELECT number, COUNT(*) FROM complaints WHERE {cond} GROUP BY number", params):
            out[str(n)] = int(c)
    return out


def ported(tx: Tx, numbers: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in _chunks(numbers, tx):
        cond, params = _in(tx, "number", part)
        for n, c in tx.all(f"SELECT number, carrier FROM ported_numbers WHERE {cond}", params):
            out[str(n)] = str(c)
    return out


SMALL = 100  # at most this many numbers: every own evidence source in ONE statement (``evidence_small``)


def evidence_small(tx: Tx, numbers: Sequence[str]) -> list[Any]:
    """Every own evidence source of at most ``SMALL`` numbers in one statement (one round trip instead of
    four on PostgreSQL): rows (source, number, status, channel, stat, err, error_code, count, time) with
    source ``h`` (as ``history``), ``b`` (blacklisted), ``c`` (complaint count in ``count``), ``p`` (ported:
    the carrier in ``channel``)."""
    assert len(numbers) <= SMALL
    cond, params = _in(tx, "number", numbers)
    final = ", ".join(f"'{s}'" for s in RECEIPT_STATUSES)
    return tx.all(
        "SELECT 'h', number, status, channel, carrier_stat, carrier_err, error_code, COUNT(*),"
        " MAX(COALESCE(done_at, submitted_at, created_at)) FROM messages"
        f" WHERE {cond} AND done_at IS NOT NULL AND status IN ({final})"
        " GROUP BY number, status, channel, carrier_stat, carrier_err, error_code"
        f" UNION ALL SELECT 'b', number, NULL, NULL, NULL, NULL, NULL, 0, 0 FROM blacklist WHERE {cond}"
        f" UNION ALL SELECT 'c', number, NULL, NULL, NULL, NULL, NULL, COUNT(*), 0 FROM complaints WHERE {cond}"
        " GROUP BY number"
        f" UNION ALL SELECT 'p', number, NULL, carrier, NULL, NULL, NULL, 0, 0 FROM ported_numbers WHERE {cond}",
        params * 4,
    )


def _chunks(numbers: Sequence[T], tx: Tx | None = None) -> list[Sequence[T]]:
    size = PG_CHUNK if tx is not None and tx.is_pg else CHUNK
    return [numbers[i : i + size] for i in range(0, len(numbers), size)]


# -- checks and results --------------------------------------------------------------------------------


def insert_check(
    tx: Tx, check_id: int, account_id: int, actor: str, total: int, charged: int, fee_li: int, unit_li: int,
    counts: dict[str, int], at: int,
) -> None:  # fmt: skip
    tx.execute(
        "INSERT INTO number_checks (id, account_id, actor, total, charged, fee_li, unit_li, counts, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (check_id, account_id, actor, total, charged, fee_li, unit_li, orjson.dumps(counts).decode(), at),
    )


def insert_checks(tx: Tx, checks: Sequence[tuple[Any, ...]]) -> None:
    """``insert_check`` of many: (check_id, account_id, actor, total, charged, fee_li, unit_li, counts, at)."""
    tx.executemany(
        "INSERT INTO number_checks (id, account_id, actor, total, charged, fee_li, unit_li, counts, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(*c[:7], orjson.dumps(c[7]).decode(), c[8]) for c in checks],
    )


def insert_pages_many(tx: Tx, pages: Sequence[tuple[int, int, str]]) -> None:
    """(check_id, page, rows JSON) of several checks."""
    tx.executemany("INSERT INTO number_check_pages (check_id, page, rows) VALUES (?, ?, ?)", pages)


PAGES_PER_READ = 100


LZ4_MIN_PAGES = 10  # at least this many pages are compressed with lz4 on PostgreSQL (``_copy_pages``)


def insert_pages(tx: Tx, check_id: int, pages: Sequence[str]) -> None:
    """The results in pages of JSON rows (page numbers from 0)."""
    _copy_pages(tx, [(check_id, i, p) for i, p in enumerate(pages)])


def _copy_pages(tx: Tx, rows: Sequence[tuple[int, int, str]]) -> None:
    """COPY result pages. On PostgreSQL a large check's pages (~90 KB of JSON each, TOASTed) are compressed
    with lz4 instead of the default pglz when the server has it: 100 pages COPY in 0.16-0.30 s instead of
    0.41-0.67 s on the loaded 2-core box, for ~35 % more bytes stored (bench/RESULTS.md). The setting is
    changed for this COPY only (``set_config`` local to the transaction, restored after it: the writer's
    transaction holds other jobs too); reading needs nothing (each value records its method)."""
    prev = None
    if tx.is_pg and len(rows) >= LZ4_MIN_PAGES:
        found = tx.one(
            "SELECT setting, 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
        if found is not None and found[1] and found[0] != "lz4":
            prev = str(found[0])
            tx.execute("SELECT set_config('default_toast_compression', 'lz4', true)")
    tx.bulk_insert("number_check_pages", ("check_id", "page", "rows"), rows)
    if prev is not None:  # (a failed COPY rolls the transaction, or the job's savepoint, back with the setting)
        tx.execute("SELECT set_config('default_toast_compression', ?, true)", (prev,))


def check_row(tx: Tx, check_id: int) -> Any:
    """(id, account_id, actor, total, charged, fee_li, unit_li, counts, created_at) or None."""
    return tx.one(
        "SELECT id, account_id, actor, total, charged, fee_li, unit_li, counts, created_at FROM number_checks"
        " WHERE id = ?",
        (check_id,),
    )


def pages(tx: Tx, check_id: int, after: int = -1) -> list[Any]:
    """(page, rows JSON) after page ``after``, up to PAGES_PER_READ, in order."""
    return tx.all(
        "SELECT page, rows FROM number_check_pages WHERE check_id = ? AND page > ? ORDER BY page LIMIT ?",
        (check_id, after, PAGES_PER_READ),
    )


# -- file jobs -------------------------------------------------------------------------------------------

JOB_KEYS = (
    "id", "account_id", "status", "total", "chunks", "chunk_size", "done_chunks", "unit_li", "created_at",
)  # fmt: skip


def insert_job(
    tx: Tx, job_id: int, account_id: int, total: int, chunk_size: int, unit_li: int, inputs: Sequence[str], at: int
) -> None:
    """The job and its input, one JSON text per chunk."""
    tx.execute(
        "INSERT INTO number_check_jobs (id, account_id, status, total, chunks, chunk_size, done_chunks, unit_li,"
        " lease_until, created_at, updated_at) VALUES (?, ?, 'queued', ?, ?, ?, 0, ?, 0, ?, ?)",
        (job_id, account_id, total, len(inputs), chunk_size, unit_li, at, at),
    )
    tx.bulk_insert(
        "number_check_inputs", ("job_id", "chunk", "entries"), [(job_id, i, e) for i, e in enumerate(inputs)]
    )


def job_input(tx: Tx, job_id: int, chunk: int) -> str:
    return str(tx.one("SELECT entries FROM number_check_inputs WHERE job_id = ? AND chunk = ?", (job_id, chunk))[0])


def claim_job(tx: Tx, now: int, lease_until: int) -> Any:
    """Lease the oldest unfinished job whose lease has lapsed: a JOB_KEYS row, or None."""
    return tx.one(
        "UPDATE number_check_jobs SET status = 'running', lease_until = ?, updated_at = ?"
        " WHERE id = (SELECT id FROM number_check_jobs WHERE status IN ('queued', 'running') AND lease_until < ?"
        " ORDER BY created_at LIMIT 1) AND lease_until < ?"
        f" RETURNING {', '.join(JOB_KEYS)}",
        (lease_until, now, now, now),
    )


def advance_job(tx: Tx, job_id: int, chunk: int, lease_until: int, now: int) -> bool:
    """done_chunks chunk -> chunk + 1 (only if it still is ``chunk``), lease renewed."""
    cur = tx.execute(
        "UPDATE number_check_jobs SET done_chunks = ?, lease_until = ?, updated_at = ?"
        " WHERE id = ? AND done_chunks = ?",
        (chunk + 1, lease_until, now, job_id, chunk),
    )
    return bool(cur.rowcount)


def finish_job(tx: Tx, job_id: int, charged: int, fee_li: int, counts: dict[str, int], now: int) -> None:
    tx.execute("UPDATE number_check_jobs SET status = 'done', updated_at = ? WHERE id = ?", (now, job_id))
    tx.execute("DELETE FROM number_check_inputs WHERE job_id = ?", (job_id,))
    tx.execute(
        "UPDATE number_checks SET charged = ?, fee_li = ?, counts = ? WHERE id = ?",
        (charged, fee_li, orjson.dumps(counts).decode(), job_id),
    )


def job_row(tx: Tx, job_id: int) -> Any:
    return tx.one(f"SELECT {', '.join(JOB_KEYS)} FROM number_check_jobs WHERE id = ?", (job_id,))


def insert_pages_from(tx: Tx, check_id: int, first_page: int, pages: Sequence[str]) -> None:
    _copy_pages(tx, [(check_id, first_page + i, p) for i, p in enumerate(pages)])


# -- marks: the latest 空号 / 沉默号 class per account and number (batch sends may skip them) ------------------


def put_marks(tx: Tx, account_id: int, marks: Sequence[tuple[str, str]], at: int) -> None:
    """(number, class) each: the account's latest check classed the number so (replacing an older mark).
    A few marks are upserted; many (a batch check) are COPied on PostgreSQL, so the caller must have
    cleared those numbers' older marks first (``clear_marks``)."""
    if not marks:
        return
    if len(marks) > SMALL:
        tx.bulk_insert("number_marks", ("account_id", "number", "cls", "checked_at"),
                       [(account_id, n, c, at) for n, c in marks])  # fmt: skip
        return
    tx.executemany(
        "INSERT INTO number_marks (account_id, number, cls, checked_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (account_id, number) DO UPDATE SET cls = excluded.cls, checked_at = excluded.checked_at",
        [(account_id, n, c, at) for n, c in marks],
    )


def replace_marks(tx: Tx, account_id: int, marks: Sequence[tuple[str, str]], unmarked: Sequence[str], at: int) -> None:
    """A check's marks: ``marks`` (number, class) become the account's marks of those numbers, the
    ``unmarked`` numbers (checked, classed otherwise) lose theirs; all numbers distinct. A large check
    looks first whether the account has marks to clear at all (its first one has none). Many marks on
    PostgreSQL are COPied, so every checked number's older mark is deleted first; otherwise the marks are
    upserted (an older mark replaced in place: on SQLite a 100,000-number check's second round writes
    ~0.2 s less than deleting and inserting them again) and only the unmarked numbers are cleared."""
    copy = tx.is_pg and len(marks) > SMALL
    clear = [*unmarked, *(n for n, _ in marks)] if copy else list(unmarked)
    if clear and (len(marks) + len(unmarked) <= CHUNK or has_marks(tx, account_id)):
        clear_marks(tx, account_id, clear)
    if copy:
        put_marks(tx, account_id, marks, at)
    elif marks:
        tx.executemany(
            "INSERT INTO number_marks (account_id, number, cls, checked_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (account_id, number) DO UPDATE SET cls = excluded.cls, checked_at = excluded.checked_at",
            [(account_id, n, c, at) for n, c in marks],
        )


def has_marks(tx: Tx, account_id: int) -> bool:
    return tx.one("SELECT 1 FROM number_marks WHERE account_id = ? LIMIT 1", (account_id,)) is not None


def clear_marks(tx: Tx, account_id: int, numbers: Sequence[str]) -> None:
    """The marks of these numbers go (a newer check classed them)."""
    for part in _chunks(numbers, tx):
        cond, params = _in(tx, "number", part)
        tx.execute(f"DELETE FROM number_marks WHERE account_id = ? AND {cond}", (account_id, *params))


def marks(tx: Tx, account_id: int, numbers: Sequence[str], classes: Sequence[str], since: int) -> dict[str, str]:
    """{number: class} of those ``numbers`` the account's checks since ``since`` classed as one of ``classes``."""
    out: dict[str, str] = {}
    wanted = ", ".join("?" * len(classes))
    for part in _chunks(numbers, tx):
        cond, params = _in(tx, "number", part)
        rows = tx.all(
            f"SELECT number, cls FROM number_marks WHERE account_id = ? AND {cond} AND cls IN ({wanted})"
            " AND checked_at >= ?",
            (account_id, *params, *classes, since),
        )
        out.update((str(n), str(c)) for n, c in rows)
    return out


# -- provider probes ------------------------------------------------------------------------------------------


def put_probe(tx: Tx, provider: str, status: str, latency_ms: int, detail: str, at: int) -> None:
    """The provider's latest probe; ``failures`` counts consecutive failed probes (reset by an ok one)."""
    tx.execute(
        "INSERT INTO numcheck_probes (provider, status, latency_ms, detail, failures, probed_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (provider) DO UPDATE SET status = excluded.status,"
        " latency_ms = excluded.latency_ms, detail = excluded.detail, probed_at = excluded.probed_at,"
        " failures = CASE WHEN excluded.status = 'ok' THEN 0 ELSE numcheck_probes.failures + 1 END",
        (provider, status, latency_ms, detail[:200], 0 if status == "ok" else 1, at),
    )


def probes(tx: Tx) -> list[Any]:
    """(provider, status, latency_ms, detail, failures, probed_at) of every provider probed."""
    return tx.all(
        "SELECT provider, status, latency_ms, detail, failures, probed_at FROM numcheck_probes ORDER BY provider"
    )
