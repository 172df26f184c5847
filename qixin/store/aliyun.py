"""SQL of the Aliyun-compatible API: the push format of API keys (services/aliyun.py, services/webhooks.py)."""

from __future__ import annotations

from collections.abc import Sequence

from qixin.store.db import Tx, chunks, now_ms


def key_ids(tx: Tx, app_key: str) -> tuple[int, int] | None:
    """(key id, account id) of an API key, active or not."""
    r = tx.one("SELECT id, account_id FROM api_keys WHERE app_key = ?", (app_key,))
    return (int(r[0]), int(r[1])) if r else None


def callback_format(tx: Tx, key_id: int) -> str | None:
    r = tx.one("SELECT format FROM callback_formats WHERE api_key_id = ?", (key_id,))
    return str(r[0]) if r else None


def set_callback_format(tx: Tx, key_id: int, fmt: str) -> None:
    tx.execute(
        "INSERT INTO callback_formats (api_key_id, format, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (api_key_id) DO UPDATE SET format = excluded.format, updated_at = excluded.updated_at",
        (key_id, fmt, now_ms()),
    )


def formats_of(tx: Tx, key_ids: Sequence[int]) -> dict[int, str]:
    """api key id -> its push format, for the keys that chose one."""
    out: dict[int, str] = {}
    for chunk in chunks(list(key_ids)):
        for kid, fmt in tx.all(
            f"SELECT api_key_id, format FROM callback_formats WHERE api_key_id IN ({tx.in_list(chunk)})",
            tuple(chunk),
        ):
            out[int(kid)] = str(fmt)
    return out
