"""SQL of the webhook outbox (services/webhooks.py and the writers of events)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qixin.store.db import Tx, chunks

_CLAIM_SQLITE = (
    "UPDATE webhook_outbox SET next_at = ? WHERE id IN (SELECT id FROM webhook_outbox"
    " WHERE status = 'pending' AND next_at <= ? ORDER BY next_at LIMIT ?)"
    " RETURNING id, api_key_id, url, payload, attempts"
)
_CLAIM_PG = (
    "UPDATE webhook_outbox o SET next_at = ? FROM (SELECT id FROM webhook_outbox"
    " WHERE status = 'pending' AND next_at <= ? ORDER BY next_at LIMIT ? FOR UPDATE SKIP LOCKED) s"
    " WHERE o.id = s.id RETURNING o.id, o.api_key_id, o.url, o.payload, o.attempts"
)

_INSERT = (
    "INSERT INTO webhook_outbox (account_id, api_key_id, url, payload, next_at, created_at, status, attempts)"
    " VALUES (?, ?, ?, ?, ?, ?, 'pending', 0)"
)


def claim_due(tx: Tx, now: int, lease_until: int, limit: int) -> list[Any]:
    """Lease up to ``limit`` due pending events: rows (id, api_key_id, url, payload, attempts)."""
    return tx.all(_CLAIM_PG if tx.is_pg else _CLAIM_SQLITE, (lease_until, now, limit))


def key_targets(tx: Tx, key_ids: Sequence[int]) -> dict[int, tuple[str, str, str | None]]:
    """api key id -> (app_key, app_secret, current callback_url)."""
    out: dict[int, tuple[str, str, str | None]] = {}
    for chunk in chunks(list(key_ids)):
        for kid, app_key, secret, url in tx.all(
            f"SELECT id, app_key, app_secret, callback_url FROM api_keys WHERE id IN ({tx.in_list(chunk)})",
            tuple(chunk),
        ):
            out[int(kid)] = (app_key, secret, url)
    return out


def insert_events(tx: Tx, events: Sequence[tuple[int, int, str, str, int, int]]) -> None:
    """(account_id, api_key_id, url, payload, next_at, created_at) each, pending."""
    tx.executemany(_INSERT, events)


def mark_sent(tx: Tx, ids: Sequence[int]) -> None:
    tx.executemany(
        "UPDATE webhook_outbox SET status = 'sent', attempts = attempts + 1 WHERE id = ?", [(i,) for i in ids]
    )


def set_attempts(tx: Tx, updates: Sequence[tuple[str, int, int, str, int]]) -> None:
    """(status, attempts, next_at, last_error, id) each."""
    tx.executemany(
        "UPDATE webhook_outbox SET status = ?, attempts = ?, next_at = ?, last_error = ? WHERE id = ?", updates
    )
