"""SQL of ``ported_numbers`` (services/portability.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qixin.store.db import Tx


def upsert(tx: Tx, rows: Sequence[tuple[str, str, int]]) -> None:
    """(number, carrier, learned_at) each; the latest word wins."""
    tx.executemany(
        "INSERT INTO ported_numbers (number, carrier, learned_at) VALUES (?, ?, ?)"
        " ON CONFLICT (number) DO UPDATE SET carrier = excluded.carrier, learned_at = excluded.learned_at",
        rows,
    )


def learned_since(tx: Tx, since: int) -> list[Any]:
    """(number, carrier, learned_at) of the rows learned at or after ``since`` (indexed on learned_at)."""
    return tx.all("SELECT number, carrier, learned_at FROM ported_numbers WHERE learned_at >= ?", (since,))


def latest(tx: Tx, limit: int) -> list[Any]:
    """The ``limit`` most recently learned (number, carrier, learned_at), newest first (staff listing)."""
    return tx.all("SELECT number, carrier, learned_at FROM ported_numbers ORDER BY learned_at DESC LIMIT ?", (limit,))
