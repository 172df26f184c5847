"""SQL of receipts: the submitted parts they match (``submits``) and the parked ones (``receipt_inbox``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qixin.store.db import Tx, chunks


def submits_matching(tx: Tx, channel: str, carrier_ids: Sequence[str]) -> list[Any]:
    """(carrier_msg_id, message_id, stat) of the parts submitted on ``channel`` under these carrier ids."""
    out: list[Any] = []
    for chunk in chunks(list(carrier_ids)):
        out += tx.all(
            "SELECT carrier_msg_id, message_id, stat FROM submits"
            f" WHERE channel = ? AND carrier_msg_id IN ({tx.in_list(chunk)})",
            (channel, *chunk),
        )
    return out


def set_part_stats(tx: Tx, rows: Sequence[tuple[str, str, str]]) -> None:
    """(stat, channel, carrier_msg_id) each."""
    tx.executemany("UPDATE submits SET stat = ? WHERE channel = ? AND carrier_msg_id = ?", rows)


def park(tx: Tx, rows: Sequence[tuple[str, str, str, str, int]]) -> None:
    """(channel, carrier_msg_id, stat, err, received_at) each, into receipt_inbox."""
    tx.executemany(
        "INSERT INTO receipt_inbox (channel, carrier_msg_id, stat, err, received_at) VALUES (?, ?, ?, ?, ?)", rows
    )


def parked(tx: Tx, limit: int) -> list[Any]:
    """The oldest parked receipts: (id, channel, carrier_msg_id, stat, err, received_at)."""
    return tx.all(
        "SELECT id, channel, carrier_msg_id, stat, err, received_at FROM receipt_inbox ORDER BY id LIMIT ?", (limit,)
    )


def unpark(tx: Tx, ids: Sequence[int]) -> None:
    tx.executemany("DELETE FROM receipt_inbox WHERE id = ?", [(i,) for i in ids])
