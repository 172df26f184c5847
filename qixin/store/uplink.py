"""SQL of uplink (MO) messages (services/uplink.py)."""

from __future__ import annotations

from qixin.store.db import Tx


def insert_mo(
    tx: Tx, account_id: int | None, channel: str, source: str, destination: str, content: str, received_at: int
) -> int:
    row = tx.one(
        "INSERT INTO mo_messages (account_id, channel, source, destination, content, received_at)"
        " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        (account_id, channel, source, destination, content, received_at),
    )
    return int(row[0])


def callback_key(tx: Tx, account_id: int) -> tuple[int, str] | None:
    """(api key id, callback_url) of the account's newest active key that has a callback URL."""
    row = tx.one(
        "SELECT id, callback_url FROM api_keys WHERE account_id = ? AND status = 'active'"
        " AND callback_url IS NOT NULL ORDER BY id DESC LIMIT 1",
        (account_id,),
    )
    return (int(row[0]), str(row[1])) if row else None
