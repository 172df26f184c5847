"""SQL of manual content review (人工审核): held batches, staff decisions, retrained classifier models
(services/compliance/review.py keeps the rules)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qixin.store.db import Tx

# the due time of a held message's queue row: never, until a decision moves it
HELD_DUE = 2**62

_HOLD_COLUMNS = (
    "h.batch_id, h.account_id, h.status, h.category, h.score, h.evidence, h.model_version, h.send_at,"
    " h.created_at, h.expires_at, h.decided_at, h.decided_by, h.reason, b.content, b.type, b.signature,"
    " b.accepted, b.fee_li"
)


def insert_hold(tx: Tx, values: Sequence[Any]) -> None:
    """(batch_id, account_id, category, score, evidence, model_version, send_at, created_at, expires_at)."""
    tx.execute(
        "INSERT INTO review_holds (batch_id, account_id, status, category, score, evidence, model_version,"
        " send_at, created_at, expires_at) VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?)",
        values,
    )


def list_holds(tx: Tx, status: str | None, account_id: int | None, limit: int) -> list[Any]:
    where: list[str] = []
    args: list[Any] = []
    if status is not None:
        where.append("h.status = ?")
        args.append(status)
    if account_id is not None:
        where.append("h.account_id = ?")
        args.append(account_id)
    cond = (" WHERE " + " AND ".join(where)) if where else ""
    return tx.all(
        f"SELECT {_HOLD_COLUMNS} FROM review_holds h JOIN batches b ON b.id = h.batch_id{cond}"
        " ORDER BY h.created_at, h.batch_id LIMIT ?",
        (*args, limit),
    )


def hold(tx: Tx, batch_id: int) -> Any:
    sql = f"SELECT {_HOLD_COLUMNS} FROM review_holds h JOIN batches b ON b.id = h.batch_id WHERE h.batch_id = ?"
    return tx.one(sql, (batch_id,))


def decide(tx: Tx, batch_id: int, status: str, at: int, by: str, reason: str | None) -> bool:
    """Pending → ``status``, once: False when another decision (or the expiry) came first."""
    tx.execute(
        "UPDATE review_holds SET status = ?, decided_at = ?, decided_by = ?, reason = ?"
        " WHERE batch_id = ? AND status = 'pending'",
        (status, at, by, reason, batch_id),
    )
    return tx.rowcount > 0


def expired(tx: Tx, now: int, limit: int) -> list[int]:
    rows = tx.all(
        "SELECT batch_id FROM review_holds WHERE status = 'pending' AND expires_at <= ? ORDER BY expires_at LIMIT ?",
        (now, limit),
    )
    return [int(r[0]) for r in rows]


def held_messages(tx: Tx, batch_id: int) -> list[int]:
    """The batch's messages still waiting for the decision (queued "never"; not cancelled meanwhile)."""
    rows = tx.all(
        "SELECT m.id FROM messages m JOIN dispatch_queue q ON q.message_id = m.id"
        " WHERE m.batch_id = ? AND m.status = 'scheduled' AND q.due_at = ? ORDER BY m.id",
        (batch_id, HELD_DUE),
    )
    return [int(r[0]) for r in rows]


def release_messages(tx: Tx, batch_id: int, ids: Sequence[int], due: int) -> None:
    """Approved: the queue rows become due at ``due`` (the messages stay ``scheduled`` until submitted)."""
    tx.executemany("UPDATE dispatch_queue SET due_at = ? WHERE message_id = ?", [(due, i) for i in ids])
    tx.executemany("UPDATE messages SET send_at = ? WHERE id = ?", [(due, i) for i in ids])
    tx.execute("UPDATE batches SET send_at = ? WHERE id = ?", (due, batch_id))


def insert_decision(tx: Tx, batch_id: int | None, text: str, label: str, by: str, at: int) -> None:
    tx.execute(
        "INSERT INTO classifier_decisions (batch_id, text, label, decided_by, created_at) VALUES (?, ?, ?, ?, ?)",
        (batch_id, text, label, by, at),
    )


def decisions(tx: Tx) -> list[tuple[str, str]]:
    """Every staff decision (text, label), oldest first."""
    return [(str(r[0]), str(r[1])) for r in tx.all("SELECT text, label FROM classifier_decisions ORDER BY id")]


def insert_model(tx: Tx, version: str, model: str, decisions: int, by: str, at: int) -> None:
    tx.execute(
        "INSERT INTO classifier_models (version, model, decisions, created_by, created_at) VALUES (?, ?, ?, ?, ?)",
        (version, model, decisions, by, at),
    )


def latest_model_version(tx: Tx) -> str | None:
    r = tx.one("SELECT version FROM classifier_models ORDER BY id DESC LIMIT 1")
    return None if r is None else str(r[0])


def latest_model(tx: Tx) -> str | None:
    r = tx.one("SELECT model FROM classifier_models ORDER BY id DESC LIMIT 1")
    return None if r is None else str(r[0])


def model_exists(tx: Tx, version: str) -> bool:
    return tx.one("SELECT 1 FROM classifier_models WHERE version = ?", (version,)) is not None


def batch_callback(tx: Tx, batch_id: int) -> tuple[int, str] | None:
    """(api_key_id, callback_url) of the key that sent the batch, when it has a callback URL."""
    r = tx.one(
        "SELECT b.api_key_id, k.callback_url FROM batches b JOIN api_keys k ON k.id = b.api_key_id WHERE b.id = ?",
        (batch_id,),
    )
    return None if r is None or not r[1] else (int(r[0]), str(r[1]))
