"""SQL of the number status check (services/numbercheck.py): the evidence, the checks and their results.

Evidence is read with ONE query per source per chunk of numbers (``CHUNK`` numbers as one parameter:
``= ANY(?)`` on PostgreSQL, ``json_each(?)`` on SQLite), never one query per number. The history
query uses ``ix_messages_number`` (migration 0014_numbers), partial on the final statuses: its
``status IN (...)`` is written as literals so that both databases see that the index applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from qixin.store.db import Tx

CHUNK = 5_000
RECEIPT_STATUSES = ("delivered", "undelivered", "expired")


def _in(tx: Tx, column: str, numbers: Sequence[str]) -> tuple[str, tuple[Any, ...]]:
    if tx.is_pg:
        return f"{column} = ANY(?)", (list(numbers),)
    return f"{column} IN (SELECT value FROM json_each(?))", (orjson.dumps(list(numbers)).decode(),)


def channel_protocols(tx: Tx) -> dict[str, str]:
    return {str(n): str(p) for n, p in tx.all("SELECT name, protocol FROM channels")}


def history(tx: Tx, numbers: Sequence[str]) -> list[Any]:
    """(number, status, channel, stat, err, error_code, count, latest time) of the final receipts of
    ``numbers``, grouped (every account: the platform's own evidence)."""
    out: list[Any] = []
    final = ", ".join(f"'{s}'" for s in RECEIPT_STATUSES)  # literal: it must match the partial index's WHERE
    for part in _chunks(numbers):
        cond, params = _in(tx, "number", part)
        out += tx.all(
            "SELECT number, status, channel, carrier_stat, carrier_err, error_code, COUNT(*),"
            " MAX(COALESCE(done_at, submitted_at, created_at)) FROM messages"
            f" WHERE {cond} AND status IN ({final})"
            " GROUP BY number, status, channel, carrier_stat, carrier_err, error_code",
            params,
        )
    return out


def blacklisted(tx: Tx, numbers: Sequence[str]) -> set[str]:
    out: set[str] = set()
    for part in _chunks(numbers):
        cond, params = _in(tx, "number", part)
        out.update(str(r[0]) for r in tx.all(f"SELECT number FROM blacklist WHERE {cond}", params))
    return out


def complaint_counts(tx: Tx, numbers: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in _chunks(numbers):
        cond, params = _in(tx, "number", part)
        for n, c in tx.all(f"SELECT number, COUNT(*) FROM complaints WHERE {cond} GROUP BY number", params):
            out[str(n)] = int(c)
    return out


def ported(tx: Tx, numbers: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in _chunks(numbers):
        cond, params = _in(tx, "number", part)
        for n, c in tx.all(f"SELECT number, carrier FROM ported_numbers WHERE {cond}", params):
            out[str(n)] = str(c)
    return out


def _chunks(numbers: Sequence[str]) -> list[Sequence[str]]:
    return [numbers[i : i + CHUNK] for i in range(0, len(numbers), CHUNK)]


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


PAGES_PER_READ = 100


def insert_pages(tx: Tx, check_id: int, pages: Sequence[str]) -> None:
    """The results in pages of JSON rows (page numbers from 0)."""
    tx.bulk_insert("number_check_pages", ("check_id", "page", "rows"), [(check_id, i, p) for i, p in enumerate(pages)])


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
    tx.bulk_insert(
        "number_check_pages", ("check_id", "page", "rows"), [(check_id, first_page + i, p) for i, p in enumerate(pages)]
    )
