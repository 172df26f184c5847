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


# -- the periodic probe of every channel (FlashProbe) ---------------------------------------------------


def last_round_start(tx: Tx) -> int | None:
    r = tx.one("SELECT MAX(started_at) FROM flash_probe_rounds")
    return None if r is None or r[0] is None else int(r[0])


def insert_round(tx: Tx, round_id: int, at: int) -> None:
    tx.execute("INSERT INTO flash_probe_rounds (id, started_at) VALUES (?, ?)", (round_id, at))


def set_round_test(tx: Tx, round_id: int, test_id: int | None, detail: str, settled_at: int | None) -> None:
    tx.execute(
        "UPDATE flash_probe_rounds SET test_id = ?, detail = ?, settled_at = ? WHERE id = ?",
        (test_id, detail[:200], settled_at, round_id),
    )


def open_rounds(tx: Tx) -> list[tuple[int, int | None, int]]:
    """(round id, test id, started_at) of every round not settled yet, oldest first."""
    rows = tx.all("SELECT id, test_id, started_at FROM flash_probe_rounds WHERE settled_at IS NULL ORDER BY id")
    return [(int(a), None if b is None else int(b), int(c)) for a, b, c in rows]


def settle_round(tx: Tx, round_id: int, at: int) -> bool:
    """Marks the round settled; False when another process settled it first."""
    n = tx.execute("UPDATE flash_probe_rounds SET settled_at = ? WHERE id = ? AND settled_at IS NULL", (at, round_id))
    return int(n.rowcount) == 1


def insert_probes(tx: Tx, rows: Sequence[tuple[Any, ...]]) -> None:
    """(round_id, channel, outcome, seeds, delivered, refused, no_receipt, latency_ms, code, probed_at) each."""
    tx.executemany(
        "INSERT INTO flash_probes (round_id, channel, outcome, seeds, delivered, refused, no_receipt, latency_ms,"
        " code, probed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def probe_channels(tx: Tx) -> list[Any]:
    """(channel, outcome, failures, latency_ms, code, round_id, probed_at, last_delivered_at), by channel."""
    return tx.all(
        "SELECT channel, outcome, failures, latency_ms, code, round_id, probed_at, last_delivered_at"
        " FROM flash_probe_channels ORDER BY channel"
    )


def put_probe_channel(
    tx: Tx, channel: str, outcome: str, failures: int, latency_ms: int | None, code: str, round_id: int, at: int,
    last_delivered_at: int | None,
) -> None:  # fmt: skip
    tx.execute(
        "INSERT INTO flash_probe_channels (channel, outcome, failures, latency_ms, code, round_id, probed_at,"
        " last_delivered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (channel) DO UPDATE SET"
        " outcome = excluded.outcome, failures = excluded.failures, latency_ms = excluded.latency_ms,"
        " code = excluded.code, round_id = excluded.round_id, probed_at = excluded.probed_at,"
        " last_delivered_at = excluded.last_delivered_at",
        (channel, outcome, failures, latency_ms, code, round_id, at, last_delivered_at),
    )


def drop_probe_channels(tx: Tx, keep: Sequence[str]) -> int:
    """Forgets the channels not probed in the latest round (disabled or removed since)."""
    rows = [str(r[0]) for r in tx.all("SELECT channel FROM flash_probe_channels")]
    gone = [(c,) for c in rows if c not in set(keep)]
    if gone:
        tx.executemany("DELETE FROM flash_probe_channels WHERE channel = ?", gone)
    return len(gone)


def probe_history(tx: Tx, channel: str | None, since: int, limit: int) -> list[Any]:
    """(round_id, channel, outcome, seeds, delivered, refused, no_receipt, latency_ms, code, probed_at), newest
    first."""
    cols = "round_id, channel, outcome, seeds, delivered, refused, no_receipt, latency_ms, code, probed_at"
    if channel:
        return tx.all(
            f"SELECT {cols} FROM flash_probes WHERE channel = ? AND probed_at >= ?"
            " ORDER BY probed_at DESC, channel LIMIT ?",
            (channel, since, limit),
        )
    return tx.all(
        f"SELECT {cols} FROM flash_probes WHERE probed_at >= ? ORDER BY probed_at DESC, channel LIMIT ?",
        (since, limit),
    )


def probe_summary(tx: Tx, since: int) -> list[Any]:
    """(channel, rounds, delivered rounds, average latency of delivered rounds) since ``since``."""
    return tx.all(
        "SELECT channel, COUNT(*), SUM(CASE WHEN outcome = 'delivered' THEN 1 ELSE 0 END),"
        " AVG(CASE WHEN outcome = 'delivered' THEN latency_ms END) FROM flash_probes WHERE probed_at >= ?"
        " GROUP BY channel ORDER BY channel",
        (since,),
    )
