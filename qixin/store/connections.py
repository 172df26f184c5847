"""SQL of direct connections (customer SMPP / CMPP / SGIP / SMGP logins) and the ports' outbox (services/connections.py,
services/ports.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qixin.store.db import Tx

# the columns services/connections.Connection is built from, in order (the account's fields follow)
COLUMNS = (
    "id", "account_id", "protocol", "login", "secret", "ip_allowlist", "max_connections", "tps", "service_code",
    "signature", "msg_type", "status", "created_at", "updated_at", "daily_cap", "deliver_to",
)  # fmt: skip
WRITABLE = frozenset(COLUMNS) - {"id", "created_at"}
_SELECT = f"SELECT {', '.join('c.' + c for c in COLUMNS)} FROM direct_connections c"


def _columns(values: dict[str, Any]) -> list[str]:
    bad = set(values) - WRITABLE
    if bad:
        raise ValueError(f"not direct-connection columns: {sorted(bad)}")
    return list(values)


def login_taken(tx: Tx, protocol: str, login: str) -> bool:
    return tx.one("SELECT 1 FROM direct_connections WHERE protocol = ? AND login = ?", (protocol, login)) is not None


def insert(tx: Tx, values: dict[str, Any], now: int) -> int:
    cols = [*_columns(values), "created_at", "updated_at"]
    row = tx.one(
        f"INSERT INTO direct_connections ({', '.join(cols)}) VALUES ({tx.in_list(cols)}) RETURNING id",
        (*values.values(), now, now),
    )
    return int(row[0])


def update(tx: Tx, connection_id: int, values: dict[str, Any], now: int) -> bool:
    cols = _columns(values)
    sets = ", ".join(f"{c} = ?" for c in cols)
    tx.execute(
        f"UPDATE direct_connections SET {sets}, updated_at = ? WHERE id = ?", (*values.values(), now, connection_id)
    )
    return bool(tx.rowcount)


def delete(tx: Tx, connection_id: int) -> bool:
    """The login and the receipts still owed to it (no session can ever take them)."""
    tx.execute("DELETE FROM direct_connections WHERE id = ?", (connection_id,))
    gone = bool(tx.rowcount)
    tx.execute("DELETE FROM port_events WHERE connection_id = ?", (connection_id,))
    return gone


def row(tx: Tx, connection_id: int) -> Any:
    return tx.one(f"{_SELECT} WHERE c.id = ?", (connection_id,))


def rows(tx: Tx, account_id: int | None = None) -> list[Any]:
    if account_id is None:
        return tx.all(f"{_SELECT} ORDER BY c.id")
    return tx.all(f"{_SELECT} WHERE c.account_id = ? ORDER BY c.id", (account_id,))


def login_row(tx: Tx, protocol: str, login: str) -> Any:
    """The connection (COLUMNS) followed by its account's status, price_li, allow_free_text and the id of
    the account's newest active API key with a callback URL (else its newest active key, else 0)."""
    return tx.one(
        f"SELECT {', '.join('c.' + c for c in COLUMNS)}, a.status, a.price_li, a.allow_free_text,"
        " COALESCE((SELECT k.id FROM api_keys k WHERE k.account_id = a.id AND k.status = 'active'"
        "  ORDER BY (k.callback_url IS NULL), k.id DESC LIMIT 1), 0)"
        " FROM direct_connections c JOIN accounts a ON a.id = c.account_id WHERE c.protocol = ? AND c.login = ?",
        (protocol, login),
    )


def count_today(tx: Tx, connection_id: int, day: int, n: int) -> int:
    """Add ``n`` messages to the connection's count of ``day``; returns the new count."""
    row = tx.one(
        "INSERT INTO connection_daily (connection_id, day, messages) VALUES (?, ?, ?)"
        " ON CONFLICT (connection_id, day) DO UPDATE SET messages = connection_daily.messages + excluded.messages"
        " RETURNING messages",
        (connection_id, day, n),
    )
    return int(row[0])


def accounts_with_connections(tx: Tx, account_id: int) -> bool:
    return tx.one("SELECT 1 FROM direct_connections WHERE account_id = ? LIMIT 1", (account_id,)) is not None


# -- the ports' outbox (port_events) ---------------------------------------------------------------------

EVENT_COLUMNS = (
    "account_id", "connection_id", "kind", "state", "failures_only", "message_id", "customer_id", "source",
    "destination", "content", "stat", "err", "submitted_at", "done_at", "next_at",
)  # fmt: skip
_EVENT_INSERT = f"INSERT INTO port_events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"


def insert_events(tx: Tx, events: Sequence[Sequence[Any]]) -> None:
    """Rows in EVENT_COLUMNS order."""
    if events:
        tx.executemany(_EVENT_INSERT, events)


def final_waiting(tx: Tx, final: Sequence[str], limit: int) -> list[Any]:
    """Receipts waiting for a message that is now final: (event id, failures_only, status, carrier_stat,
    carrier_err, error_code, done_at)."""
    return tx.all(
        "SELECT e.id, e.failures_only, m.status, m.carrier_stat, m.carrier_err, m.error_code, m.done_at"
        " FROM port_events e JOIN messages m ON m.id = e.message_id"
        f" WHERE e.state = 'waiting' AND m.status IN ({tx.in_list(final)}) ORDER BY e.id LIMIT ?",
        (*final, limit),
    )


def set_ready(tx: Tx, rows: Sequence[tuple[str, str, int | None, int]]) -> None:
    """(stat, err, done_at, event id): the receipt is ready to deliver."""
    if rows:
        tx.executemany(
            "UPDATE port_events SET state = 'ready', stat = ?, err = ?, done_at = ? WHERE id = ? AND state = 'waiting'",
            rows,
        )


def any_waiting(tx: Tx) -> bool:
    """Whether any receipt waits for its message's final status (one probe of ix_port_events_ready)."""
    return tx.one("SELECT 1 FROM port_events WHERE state = 'waiting' LIMIT 1") is not None


def ready_for_messages(tx: Tx, rows: Sequence[tuple[str, str, int | None, int, bool]]) -> None:
    """Messages that became final: (stat, err, done_at, message id, failures-only ones too) each — their
    waiting receipts become ready, those asking for failures only as well when the last field is true (a
    failures-only receipt of a delivered message is left waiting: the pump's scan drops it)."""
    if rows:
        tx.executemany(
            "UPDATE port_events SET state = 'ready', stat = ?, err = ?, done_at = ?"
            " WHERE message_id = ? AND state = 'waiting' AND (? OR NOT failures_only)",
            rows,
        )


def claim_ready(
    tx: Tx, connection_ids: Sequence[int], account_ids: Sequence[int], now: int, lease_ms: int, limit: int
) -> list[Any]:
    """Ready receipts of these connections and MO of these accounts, not in flight, oldest first; their
    lease is taken (``next_at``). Rows: (id, account_id, connection_id, kind, customer_id, source,
    destination, content, stat, err, submitted_at, done_at)."""
    if not account_ids:
        return []
    conns = list(connection_ids) or [-1]
    rows_ = tx.all(
        "SELECT id, account_id, connection_id, kind, customer_id, source, destination, content, stat, err,"
        " submitted_at, done_at FROM port_events WHERE state = 'ready' AND next_at <= ?"
        f" AND ((kind = 'receipt' AND connection_id IN ({tx.in_list(conns)}))"
        f"  OR (kind = 'mo' AND account_id IN ({tx.in_list(account_ids)}))) ORDER BY id LIMIT ?"
        + (" FOR UPDATE SKIP LOCKED" if tx.is_pg else ""),  # another process's claim skips them
        (now, *conns, *account_ids, limit),
    )
    for i in range(0, len(rows_), 500):
        chunk = [r[0] for r in rows_[i : i + 500]]
        tx.execute(f"UPDATE port_events SET next_at = ? WHERE id IN ({tx.in_list(chunk)})", (now + lease_ms, *chunk))
    return rows_


def release(tx: Tx, event_ids: Sequence[int]) -> None:
    """Events whose delivery failed: due again at once."""
    if event_ids:
        tx.executemany("UPDATE port_events SET next_at = 0 WHERE id = ?", [(i,) for i in event_ids])


def delete_events(tx: Tx, event_ids: Sequence[int]) -> None:
    ids_ = list(event_ids)
    for i in range(0, len(ids_), 500):
        chunk = ids_[i : i + 500]
        tx.execute(f"DELETE FROM port_events WHERE id IN ({tx.in_list(chunk)})", chunk)


def pending_counts(tx: Tx, account_id: int) -> dict[str, int]:
    return {
        f"{k}_{s}": int(n)
        for k, s, n in tx.all(
            "SELECT kind, state, COUNT(*) FROM port_events WHERE account_id = ? GROUP BY kind, state", (account_id,)
        )
    }
