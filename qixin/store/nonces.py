"""SQL of the durable nonce store (table ``api_nonces``; services/nonces.py decides when to call it)."""

from __future__ import annotations

from qixin.store.db import Tx

PURGE_BATCH = 1000  # expired rows deleted per purge: keeps one purge's transaction short


def claim(tx: Tx, app_key: str, nonce: str, now: int, expires_at: int) -> bool:
    """Record ``nonce`` for ``app_key`` until ``expires_at`` (ms UTC); False when it is already recorded
    and not yet expired at ``now`` — a replay. An expired row is taken over, so purging is never urgent."""
    tx.execute(
        "INSERT INTO api_nonces (app_key, nonce, expires_at) VALUES (?, ?, ?)"
        " ON CONFLICT (app_key, nonce) DO UPDATE SET expires_at = excluded.expires_at"
        " WHERE api_nonces.expires_at <= ?",
        (app_key, nonce, expires_at, now),
    )
    return tx.rowcount == 1


def purge(tx: Tx, now: int, limit: int = PURGE_BATCH) -> int:
    """Delete up to ``limit`` nonces expired at ``now``; the number deleted."""
    tx.execute(
        "DELETE FROM api_nonces WHERE (app_key, nonce) IN"
        " (SELECT app_key, nonce FROM api_nonces WHERE expires_at <= ? LIMIT ?)",
        (now, limit),
    )
    return tx.rowcount


def count(tx: Tx) -> int:
    return int(tx.one("SELECT COUNT(*) FROM api_nonces")[0])
