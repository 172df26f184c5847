"""File jobs and their committed chunks (SQL only here; the rules are in services/filejobs.py).

Customer-facing reads filter by ``account_id`` (invariant I4). A runner holds a job through a lease
(``runner``, ``lease_until``) taken and renewed with conditional updates, so two processes never run
the same job at once; the chunks' idempotency keys make even that harmless.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qixin.store.db import Tx

JOB_COLUMNS = (
    "id, account_id, app_key, status, filename, path, size, options, total, duplicates, chunks, error_code,"
    " error_message, created_by, created_at, finished_at"
)
ACTIVE = "running"


def insert_job(tx: Tx, values: Sequence[Any]) -> None:
    """(id, account_id, app_key, status, filename, path, size, options, total, duplicates, chunks,
    created_by, runner, lease_until, created_at)."""
    tx.execute(
        "INSERT INTO file_jobs (id, account_id, app_key, status, filename, path, size, options, total, duplicates,"
        " chunks, created_by, runner, lease_until, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        values,
    )


def job_row(tx: Tx, job_id: int, account_id: int | None = None) -> Any:
    """The job (JOB_COLUMNS), of ``account_id`` when given; None otherwise."""
    if account_id is None:
        return tx.one(f"SELECT {JOB_COLUMNS} FROM file_jobs WHERE id = ?", (job_id,))
    return tx.one(f"SELECT {JOB_COLUMNS} FROM file_jobs WHERE id = ? AND account_id = ?", (job_id, account_id))


def list_jobs(tx: Tx, account_id: int | None, limit: int) -> list[Any]:
    if account_id is None:
        return tx.all(f"SELECT {JOB_COLUMNS} FROM file_jobs ORDER BY id DESC LIMIT ?", (limit,))
    return tx.all(
        f"SELECT {JOB_COLUMNS} FROM file_jobs WHERE account_id = ? ORDER BY id DESC LIMIT ?", (account_id, limit)
    )


def chunk_rows(tx: Tx, job_id: int) -> list[Any]:
    """(n, size, accepted, rejected, fee_li, refused JSON, batch_ids) of the committed chunks, in order."""
    return tx.all(
        "SELECT n, size, accepted, rejected, fee_li, refused, batch_ids FROM file_job_chunks WHERE job_id = ?"
        " ORDER BY n",
        (job_id,),
    )


def committed_chunks(tx: Tx, job_id: int) -> set[int]:
    return {int(n) for (n,) in tx.all("SELECT n FROM file_job_chunks WHERE job_id = ?", (job_id,))}


def insert_chunk(tx: Tx, values: Sequence[Any]) -> bool:
    """(job_id, n, size, accepted, rejected, fee_li, refused, batch_ids, committed_at); False when the chunk
    was already recorded (by another runner)."""
    if tx.one("SELECT 1 FROM file_job_chunks WHERE job_id = ? AND n = ?", (values[0], values[1])) is not None:
        return False
    tx.execute(
        "INSERT INTO file_job_chunks (job_id, n, size, accepted, rejected, fee_li, refused, batch_ids, committed_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        values,
    )
    return True


def runnable_jobs(tx: Tx, now: int, limit: int = 20) -> list[int]:
    """Running jobs whose lease is free or ran out, oldest first."""
    return [
        int(r[0])
        for r in tx.all(
            "SELECT id FROM file_jobs WHERE status = ? AND lease_until < ? ORDER BY id LIMIT ?", (ACTIVE, now, limit)
        )
    ]


def claim(tx: Tx, job_id: int, runner: str, now: int, until: int) -> bool:
    """Take (or renew) the lease of a running job: free, run out, or already ours."""
    tx.execute(
        "UPDATE file_jobs SET runner = ?, lease_until = ? WHERE id = ? AND status = ?"
        " AND (lease_until < ? OR runner = ?)",
        (runner, until, job_id, ACTIVE, now, runner),
    )
    return tx.rowcount == 1


def release(tx: Tx, job_id: int, runner: str) -> None:
    tx.execute("UPDATE file_jobs SET lease_until = 0 WHERE id = ? AND runner = ?", (job_id, runner))


def finish(tx: Tx, job_id: int, status: str, now: int, code: str | None = None, message: str | None = None) -> bool:
    """Move a running job to ``status`` (done, failed, cancelled); False when it was no longer running."""
    tx.execute(
        "UPDATE file_jobs SET status = ?, error_code = ?, error_message = ?, finished_at = ?, lease_until = 0"
        " WHERE id = ? AND status = ?",
        (status, code, message, now, job_id, ACTIVE),
    )
    return tx.rowcount == 1


def job_status(tx: Tx, job_id: int) -> str | None:
    r = tx.one("SELECT status FROM file_jobs WHERE id = ?", (job_id,))
    return str(r[0]) if r else None


def first_active_key(tx: Tx, account_id: int) -> str | None:
    """The oldest active API key of an account (the operator's file jobs send as it)."""
    r = tx.one(
        "SELECT app_key FROM api_keys WHERE account_id = ? AND status = 'active' ORDER BY id LIMIT 1", (account_id,)
    )
    return str(r[0]) if r else None
