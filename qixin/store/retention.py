"""SQL of the retention purge (rules: services/retention.py). Every function works on one bounded chunk
(an id range or a LIMIT), so that one transaction stays short."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qixin.store.db import Tx, chunks

FINAL = ("delivered", "undelivered", "failed", "rejected", "expired", "cancelled")


def open_complaints(tx: Tx) -> tuple[set[str], set[int]]:
    """Numbers and message ids named by complaints not closed yet (their messages are evidence)."""
    rows = tx.all(
        "SELECT c.number, c.message_id FROM complaints c"
        " LEFT JOIN complaint_closures x ON x.complaint_id = c.id WHERE x.complaint_id IS NULL"
    )
    numbers = {str(r[0]) for r in rows if r[1] is None}
    ids = {int(r[1]) for r in rows if r[1] is not None}
    return numbers, ids


def message_rows(tx: Tx, after_id: int, below_id: int, limit: int) -> list[Any]:
    """(id, number, status, created_at, batch_id) of messages with after_id < id < below_id, by id."""
    return tx.all(
        "SELECT id, number, status, created_at, batch_id FROM messages WHERE id > ? AND id < ? ORDER BY id LIMIT ?",
        (after_id, below_id, limit),
    )


def delete_message_range(tx: Tx, low: int, high: int) -> tuple[int, int]:
    """Delete the messages low ≤ id ≤ high and their submitted parts; (messages, submits) deleted."""
    tx.execute("DELETE FROM submits WHERE message_id >= ? AND message_id <= ?", (low, high))
    submits = tx.rowcount
    tx.execute("DELETE FROM messages WHERE id >= ? AND id <= ?", (low, high))
    return tx.rowcount, submits


def delete_messages(tx: Tx, ids: Sequence[int]) -> tuple[int, int]:
    """Delete these messages and their submitted parts; (messages, submits) deleted."""
    messages = submits = 0
    for part in chunks(list(ids)):
        tx.execute(f"DELETE FROM submits WHERE message_id IN ({tx.in_list(part)})", tuple(part))
        submits += tx.rowcount
        tx.execute(f"DELETE FROM messages WHERE id IN ({tx.in_list(part)})", tuple(part))
        messages += tx.rowcount
    return messages, submits


def old_batches(tx: Tx, after_id: int, below_id: int, before_at: int, limit: int) -> list[int]:
    """Ids of batches after_id < id < below_id created before ``before_at``, by id (the id bound keeps the
    walk out of the recent batches)."""
    rows = tx.all(
        "SELECT id FROM batches WHERE id > ? AND id < ? AND created_at < ? ORDER BY id LIMIT ?",
        (after_id, below_id, before_at, limit),
    )
    return [int(r[0]) for r in rows]


def delete_unreferenced_batches(tx: Tx, ids: Sequence[int]) -> int:
    """Delete those of ``ids`` that no message refers to any more (and their declared audience)."""
    n = 0
    for part in chunks(list(ids)):
        free = [
            int(r[0])
            for r in tx.all(
                f"SELECT b.id FROM batches b WHERE b.id IN ({tx.in_list(part)})"
                " AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.batch_id = b.id)",
                tuple(part),
            )
        ]
        if free:
            tx.execute(f"DELETE FROM batch_audience WHERE batch_id IN ({tx.in_list(free)})", tuple(free))
            tx.execute(f"DELETE FROM batches WHERE id IN ({tx.in_list(free)})", tuple(free))
            n += tx.rowcount
    return n


def count_old_batches(tx: Tx, before_at: int) -> int:
    return int(tx.one("SELECT COUNT(*) FROM batches WHERE created_at < ?", (before_at,))[0])


_SIMPLE = {
    # table: (its time column, the statuses that may go; None: any)
    "mo_messages": ("received_at", None),
    "webhook_outbox": ("created_at", ("sent", "dead")),
    "receipt_inbox": ("received_at", None),
    "alert_notices": ("created_at", ("sent", "dead")),  # staff notices delivered or given up (services/alerts.py)
}


def delete_old(tx: Tx, table: str, after_id: int, before_at: int, limit: int) -> tuple[int, int, bool]:
    """Walk ``limit`` rows of ``table`` (one of _SIMPLE) by id after ``after_id`` and delete those older than
    ``before_at`` (and in a status that may go). Ids grow with time, so the walk ends at the first row as
    new as the cutoff: no chunk scans the recent part of the table. Returns (last id seen, deleted, done)."""
    col, statuses = _SIMPLE[table]
    status = ", status" if statuses else ""
    rows = tx.all(f"SELECT id, {col}{status} FROM {table} WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit))
    go: list[int] = []
    done = len(rows) < limit
    for r in rows:
        if int(r[1]) >= before_at:
            done = True
            break
        if statuses is None or r[2] in statuses:
            go.append(int(r[0]))
    n = 0
    for part in chunks(go):
        tx.execute(f"DELETE FROM {table} WHERE id IN ({tx.in_list(part)})", tuple(part))
        n += tx.rowcount
    return (int(rows[-1][0]) if rows else after_id), n, done


def count_old(tx: Tx, table: str, before_at: int) -> int:
    """How many rows ``delete_old`` would delete (a read: a full count, for the dry run)."""
    col, statuses = _SIMPLE[table]
    cond = f" AND status IN ({', '.join(repr(x) for x in statuses)})" if statuses else ""
    return int(tx.one(f"SELECT COUNT(*) FROM {table} WHERE {col} < ?{cond}", (before_at,))[0])


SIMPLE_TABLES = tuple(_SIMPLE)


def mark(tx: Tx) -> int:
    """Messages created before this (ms UTC) have been purged (0: never)."""
    row = tx.one("SELECT before_at FROM retention_marks WHERE name = 'messages'")
    return int(row[0]) if row else 0


def set_mark(tx: Tx, before_at: int, now: int) -> None:
    """Move the mark forward to ``before_at`` (never back)."""
    tx.execute(
        "INSERT INTO retention_marks (name, before_at, updated_at) VALUES ('messages', ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET before_at = CASE WHEN excluded.before_at > retention_marks.before_at"
        " THEN excluded.before_at ELSE retention_marks.before_at END, updated_at = excluded.updated_at",
        (before_at, now),
    )


def close_complaint(tx: Tx, complaint_id: int, actor: str, note: str, now: int) -> bool:
    """Close a complaint (False when it does not exist); closing twice keeps the first closure."""
    if tx.one("SELECT id FROM complaints WHERE id = ?", (complaint_id,)) is None:
        return False
    tx.execute(
        "INSERT INTO complaint_closures (complaint_id, actor, note, closed_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (complaint_id) DO NOTHING",
        (complaint_id, actor, note, now),
    )
    return True


FILE_JOB_FINAL = ("done", "failed", "cancelled")


def old_file_jobs(tx: Tx, after_id: int, before_at: int, limit: int) -> list[tuple[int, str]]:
    """(id, stored file relative to data_dir) of finished file jobs created before ``before_at``, by id."""
    rows = tx.all(
        f"SELECT id, path FROM file_jobs WHERE id > ? AND created_at < ? AND status IN ({tx.in_list(FILE_JOB_FINAL)})"
        " ORDER BY id LIMIT ?",
        (after_id, before_at, *FILE_JOB_FINAL, limit),
    )
    return [(int(r[0]), str(r[1])) for r in rows]


def delete_file_jobs(tx: Tx, ids: Sequence[int]) -> int:
    """Delete these file jobs and their chunk rows; the jobs deleted."""
    n = 0
    for part in chunks(list(ids)):
        tx.execute(f"DELETE FROM file_job_chunks WHERE job_id IN ({tx.in_list(part)})", tuple(part))
        tx.execute(f"DELETE FROM file_jobs WHERE id IN ({tx.in_list(part)})", tuple(part))
        n += tx.rowcount
    return n


def count_old_file_jobs(tx: Tx, before_at: int) -> int:
    return int(
        tx.one(
            f"SELECT COUNT(*) FROM file_jobs WHERE created_at < ? AND status IN ({tx.in_list(FILE_JOB_FINAL)})",
            (before_at, *FILE_JOB_FINAL),
        )[0]
    )
