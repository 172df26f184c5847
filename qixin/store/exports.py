"""Export jobs (SQL only here; the rules are in services/exports.py).

A runner holds a job through a lease (``runner``, ``lease_until``) taken and renewed with conditional
updates, so two processes never write the same file at once; a checkpoint that finds the lease gone
tells the runner to stop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qixin.domain.delivery import FAILED_STATUSES
from qixin.store.db import Tx, chunks
from qixin.store.reads import SEARCH_FILTERS, search_where

COLUMNS = (
    "id, account_id, created_by, reveal, filters, format, status, total, rows_written, last_id, offset_bytes,"
    " path, size, error_code, created_at, finished_at"
)
ACTIVE = ("queued", "running")
FINAL = ("done", "failed")


def insert_job(tx: Tx, values: Sequence[Any]) -> None:
    """(id, account_id, created_by, reveal, filters, format, status, path, created_at)."""
    tx.execute(
        "INSERT INTO export_jobs (id, account_id, created_by, reveal, filters, format, status, path, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        values,
    )


def job_row(tx: Tx, job_id: int) -> Any:
    return tx.one(f"SELECT {COLUMNS} FROM export_jobs WHERE id = ?", (job_id,))


def list_jobs(tx: Tx, account_id: int | None, limit: int) -> list[Any]:
    """The newest jobs of one customer account, or staff's (account_id None: the staff side's)."""
    if account_id is None:
        return tx.all(f"SELECT {COLUMNS} FROM export_jobs WHERE account_id IS NULL ORDER BY id DESC LIMIT ?", (limit,))
    return tx.all(
        f"SELECT {COLUMNS} FROM export_jobs WHERE account_id = ? ORDER BY id DESC LIMIT ?", (account_id, limit)
    )


def runnable(tx: Tx, now: int, limit: int = 10) -> list[int]:
    """Queued or running jobs whose lease is free or ran out, oldest first."""
    rows = tx.all(
        "SELECT id FROM export_jobs WHERE status IN (?, ?) AND lease_until < ? ORDER BY id LIMIT ?",
        (*ACTIVE, now, limit),
    )
    return [int(r[0]) for r in rows]


def claim(tx: Tx, job_id: int, runner: str, now: int, until: int) -> bool:
    """Take the lease of an unfinished job (free or run out) and mark it running."""
    tx.execute(
        "UPDATE export_jobs SET runner = ?, lease_until = ?, status = 'running'"
        " WHERE id = ? AND status IN (?, ?) AND (lease_until < ? OR runner = ?)",
        (runner, until, job_id, *ACTIVE, now, runner),
    )
    return tx.rowcount == 1


def start_over(tx: Tx, job_id: int, runner: str) -> None:
    tx.execute(
        "UPDATE export_jobs SET rows_written = 0, last_id = NULL, offset_bytes = 0 WHERE id = ? AND runner = ?",
        (job_id, runner),
    )


def set_total(tx: Tx, job_id: int, total: int) -> None:
    tx.execute("UPDATE export_jobs SET total = ? WHERE id = ?", (total, job_id))


def checkpoint(tx: Tx, job_id: int, runner: str, rows: int, last_id: int | None, offset: int, until: int) -> bool:
    """Record progress and renew the lease; False when the job is no longer this runner's."""
    tx.execute(
        "UPDATE export_jobs SET rows_written = ?, last_id = ?, offset_bytes = ?, lease_until = ?"
        " WHERE id = ? AND runner = ? AND status = 'running'",
        (rows, last_id, offset, until, job_id, runner),
    )
    return tx.rowcount == 1


def finish(tx: Tx, job_id: int, runner: str, status: str, rows: int, size: int | None, code: str | None,
           now: int) -> bool:  # fmt: skip
    tx.execute(
        "UPDATE export_jobs SET status = ?, rows_written = ?, size = ?, error_code = ?, finished_at = ?,"
        " lease_until = 0 WHERE id = ? AND runner = ? AND status = 'running'",
        (status, rows, size, code, now, job_id, runner),
    )
    return tx.rowcount == 1


def count_matching(tx: Tx, where: dict[str, Any]) -> int:
    """How many messages the search conditions match (store/reads.search_messages' filters)."""
    clauses = [SEARCH_FILTERS[k] for k in SEARCH_FILTERS if where.get(k) is not None]
    params = [where[k] for k in SEARCH_FILTERS if where.get(k) is not None]
    cond = " WHERE " + " AND ".join(clauses) if clauses else ""
    join = (
        " JOIN batches b ON b.id = m.batch_id"
        if any(where.get(k) is not None for k in ("template_id", "signature"))
        else ""
    )
    return int(tx.one(f"SELECT COUNT(*) FROM messages m{join}{cond}", tuple(params))[0])


# the failure statuses as SQL literals (constants of domain.delivery, never input): the channel's protocol is
# joined only for the rows whose reason depends on it
_FAILED_SQL = ", ".join(f"'{s}'" for s in sorted(FAILED_STATUSES))
assert all(s.isalpha() for s in FAILED_STATUSES)
_EXPORT_SELECT = (
    "SELECT m.id, m.batch_id, m.account_id, COALESCE(m.token, m.number), m.carrier, m.province, m.type, m.parts,"
    " m.fee_li, m.status, m.carrier_stat, m.carrier_err, m.error_code, c.protocol, m.out_id, m.channel,"
    " b.signature, b.template_id, m.created_at, m.submitted_at, m.done_at"
    " FROM messages m JOIN batches b ON b.id = m.batch_id"
    f" LEFT JOIN channels c ON c.name = m.channel AND m.status IN ({_FAILED_SQL})"
)


def export_rows(tx: Tx, where: dict[str, Any], limit: int) -> list[Any]:
    """The rows of a message export, newest first, at most ``limit``: the filters of
    ``reads.search_messages`` (``before_id`` is the cursor), each row already in the export's column
    order (services/queries.EXPORT_COLUMNS) with one exception: the ``reason`` column (index 13) holds the
    channel's protocol for a failed message, NULL for every other one (whose reason is empty), so that
    the caller computes a reason only where there is one (domain/export.csv_rows)."""
    cond, params = search_where(where)
    return tx.all(f"{_EXPORT_SELECT}{cond} ORDER BY m.id DESC LIMIT ?", (*params, limit))


def old_jobs(tx: Tx, after_id: int, finished_before: int, limit: int) -> list[tuple[int, str]]:
    """(id, path) of finished jobs finished before ``finished_before``, by id."""
    rows = tx.all(
        "SELECT id, path FROM export_jobs WHERE id > ? AND status IN (?, ?) AND finished_at < ? ORDER BY id LIMIT ?",
        (after_id, *FINAL, finished_before, limit),
    )
    return [(int(r[0]), str(r[1])) for r in rows]


def count_old_jobs(tx: Tx, finished_before: int) -> int:
    return int(
        tx.one(
            "SELECT COUNT(*) FROM export_jobs WHERE status IN (?, ?) AND finished_at < ?", (*FINAL, finished_before)
        )[0]
    )


def delete_jobs(tx: Tx, ids: Sequence[int]) -> int:
    n = 0
    for part in chunks(list(ids)):
        tx.execute(f"DELETE FROM export_jobs WHERE id IN ({tx.in_list(part)})", tuple(part))
        n += tx.rowcount
    return n
