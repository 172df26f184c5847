"""SQL of recipient tokens (services/tokens.py) and of what accept adds to a batch's messages: the token a
message was sent to, the channel an interception test pins it to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qixin.store.db import Tx, chunks


def insert(
    tx: Tx, token: str, account_id: int, sealed: str, number_hash: str, expires_at: int, by: str, at: int
) -> None:
    tx.execute(
        "INSERT INTO recipient_tokens (token, account_id, number_sealed, number_hash, expires_at, created_by,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (token, account_id, sealed, number_hash, expires_at, by, at),
    )


def of_account(tx: Tx, account_id: int, tokens: Sequence[str]) -> list[Any]:
    """(token, number_sealed, expires_at) of those ``tokens`` that belong to ``account_id``."""
    out: list[Any] = []
    for part in chunks(list(tokens)):
        out += tx.all(
            "SELECT token, number_sealed, expires_at FROM recipient_tokens"
            f" WHERE account_id = ? AND token IN ({tx.in_list(part)})",
            (account_id, *part),
        )
    return out


def row(tx: Tx, token: str) -> Any:
    """(token, account_id, number_sealed, expires_at, created_at) or None."""
    return tx.one(
        "SELECT token, account_id, number_sealed, expires_at, created_at FROM recipient_tokens WHERE token = ?",
        (token,),
    )


def latest_for_number(tx: Tx, account_id: int, number_hash: str) -> str | None:
    """The account's most recent token for the number with this keyed hash (expired ones included)."""
    r = tx.one(
        "SELECT token FROM recipient_tokens WHERE account_id = ? AND number_hash = ? ORDER BY created_at DESC,"
        " token LIMIT 1",
        (account_id, number_hash),
    )
    return str(r[0]) if r is not None else None


def latest_for_hashes(tx: Tx, account_id: int, hashes: Sequence[str]) -> dict[str, str]:
    """{number hash: the account's most recent token for it} for those ``hashes`` it holds tokens for."""
    out: dict[str, tuple[int, str]] = {}
    for part in chunks(list(hashes)):
        for h, token, at in tx.all(
            "SELECT number_hash, token, created_at FROM recipient_tokens"
            f" WHERE account_id = ? AND number_hash IN ({tx.in_list(part)})",
            (account_id, *part),
        ):
            best = out.get(str(h))
            key = (-int(at), str(token))  # newest first, then by token: the order of latest_for_number
            if best is None or key < best:
                out[str(h)] = key
    return {h: t for h, (_, t) in out.items()}


def tag_messages(tx: Tx, rows: Sequence[tuple[str, int]]) -> None:
    """(token, message id) each: the messages sent to a token carry it."""
    tx.executemany("UPDATE messages SET token = ? WHERE id = ?", rows)


def pin_batch(tx: Tx, batch_id: int, channel: str) -> None:
    """Every message of the batch goes to ``channel`` only (an interception test, services/flashtests.py)."""
    tx.execute("UPDATE messages SET pin_channel = ? WHERE batch_id = ?", (channel, batch_id))
