"""SQL of per-account flow control caps (services/flow.py)."""

from __future__ import annotations

from typing import Any

from qixin.store.db import Tx, now_ms


def caps_row(tx: Tx, account_id: int) -> tuple[int, int] | None:
    """(tps, daily_cap) of the account, or None when staff never set them."""
    r = tx.one("SELECT tps, daily_cap FROM account_flow WHERE account_id = ?", (account_id,))
    return (int(r[0]), int(r[1])) if r else None


def upsert_caps(tx: Tx, account_id: int, tps: int, daily_cap: int) -> None:
    tx.execute(
        "INSERT INTO account_flow (account_id, tps, daily_cap, updated_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (account_id) DO UPDATE SET tps = excluded.tps, daily_cap = excluded.daily_cap,"
        " updated_at = excluded.updated_at",
        (account_id, tps, daily_cap, now_ms()),
    )


def list_caps(tx: Tx) -> list[Any]:
    return tx.all("SELECT account_id, tps, daily_cap, updated_at FROM account_flow ORDER BY account_id")
