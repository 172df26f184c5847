"""SQL of interception tests (闪测, services/flashtests.py): seed numbers, tests and their batches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qixin.store.db import Tx


def seeds(tx: Tx) -> list[tuple[str, str]]:
    """(number, carrier) of every seed, by carrier and number."""
    return [(str(n), str(c)) for n, c in tx.all("SELECT number, carrier FROM flash_seeds ORDER BY carrier, number")]


def add_seed(tx: Tx, number: str, carrier: str, note: str, at: int) -> None:
    tx.execute(
        "INSERT INTO flash_seeds (number, carrier, note, created_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (number) DO UPDATE SET carrier = excluded.carrier, note = excluded.note",
        (number, carrier, note, at),
    )


def remove_seed(tx: Tx, number: str) -> int:
    return int(tx.execute("DELETE FROM flash_seeds WHERE number = ?", (number,)).rowcount)


def first_active_key(tx: Tx, account_id: int) -> str | None:
    r = tx.one("SELECT app_key FROM api_keys WHERE account_id = ? AND status = 'active' ORDER BY id LIMIT 1",
               (account_id,))  # fmt: skip
    return str(r[0]) if r is not None else None


def insert_test(
    tx: Tx, test_id: int, account_id: int, signature: str, content: str, msg_type: str, timeout_ms: int, at: int
) -> None:
    tx.execute(
        "INSERT INTO flash_tests (id, account_id, signature, content, type, timeout_ms, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (test_id, account_id, signature, content, msg_type, timeout_ms, at),
    )


def insert_batches(tx: Tx, rows: Sequence[tuple[int, str, int | None, str]]) -> None:
    """(test id, channel, batch id or None, rejected JSON) each."""
    tx.executemany("INSERT INTO flash_test_batches (test_id, channel, batch_id, rejected) VALUES (?, ?, ?, ?)", rows)


def test_row(tx: Tx, test_id: int) -> Any:
    """(id, account_id, signature, content, type, timeout_ms, created_at) or None."""
    return tx.one(
        "SELECT id, account_id, signature, content, type, timeout_ms, created_at FROM flash_tests WHERE id = ?",
        (test_id,),
    )


def batches(tx: Tx, test_id: int) -> list[Any]:
    """(channel, batch_id, rejected JSON) of a test, by channel."""
    return tx.all(
        "SELECT channel, batch_id, rejected FROM flash_test_batches WHERE test_id = ? ORDER BY channel", (test_id,)
    )


def batch_messages(tx: Tx, batch_id: int) -> list[Any]:
    """(number, carrier, status, created_at, done_at, error_code, carrier_stat) of a batch's messages."""
    return tx.all(
        "SELECT number, carrier, status, created_at, done_at, error_code, carrier_stat FROM messages"
        " WHERE batch_id = ? ORDER BY id",
        (batch_id,),
    )
