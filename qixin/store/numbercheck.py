"""SQL of the number status check (services/numbercheck.py): the evidence, the checks and their results.

Evidence is read with ONE query per source per chunk of numbers (``CHUNK`` numbers as one parameter:
``= ANY(?)`` on PostgreSQL, ``json_each(?)`` on SQLite), never one query per number. The history
query uses ``ix_messages_number`` (migration 0014_numbers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from qixin.store.db import Tx

CHUNK = 5_000
RECEIPT_STATUSES = ("delivered", "undelivered", "expired")
RESULT_KEYS = ("number", "class", "carrier", "province", "ported", "confidence", "evidence", "billed")


def _in(tx: Tx, column: str, numbers: Sequence[str]) -> tuple[str, tuple[Any, ...]]:
    if tx.is_pg:
        return f"{column} = ANY(?)", (list(numbers),)
    return f"{column} IN (SELECT value FROM json_each(?))", (orjson.dumps(list(numbers)).decode(),)


def channel_protocols(tx: Tx) -> dict[str, str]:
    return {str(n): str(p) for n, p in tx.all("SELECT name, protocol FROM channels")}


def history(tx: Tx, numbers: Sequence[str]) -> list[Any]:
    """(number, status, channel, stat, err, error_code, count, latest time) of the final receipts of
    ``numbers``, grouped (every account: the platform's own evidence)."""
    out: list[Any] = []
    marks = ", ".join("?" * len(RECEIPT_STATUSES))
    for part in _chunks(numbers):
        cond, params = _in(tx, "number", part)
        out += tx.all(
            "SELECT number, status, channel, carrier_stat, carrier_err, error_code, COUNT(*),"
            " MAX(COALESCE(done_at, submitted_at, created_at)) FROM messages"
            f" WHERE {cond} AND status IN ({marks})"
            " GROUP BY number, status, channel, carrier_stat, carrier_err, error_code",
            (*params, *RECEIPT_STATUSES),
        )
    return out


def blacklisted(tx: Tx, numbers: Sequence[str]) -> set[str]:
    out: set[str] = set()
    for part in _chunks(numbers):
        cond, params = _in(tx, "number", part)
        out.update(str(r[0]) for r in tx.all(f"SELECT number FROM blacklist WHERE {cond}", params))
    return out


def complaint_counts(tx: Tx, numbers: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in _chunks(numbers):
        cond, params = _in(tx, "number", part)
        for n, c in tx.all(f"SELECT number, COUNT(*) FROM complaints WHERE {cond} GROUP BY number", params):
            out[str(n)] = int(c)
    return out


def ported(tx: Tx, numbers: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in _chunks(numbers):
        cond, params = _in(tx, "number", part)
        for n, c in tx.all(f"SELECT number, carrier FROM ported_numbers WHERE {cond}", params):
            out[str(n)] = str(c)
    return out


def _chunks(numbers: Sequence[str]) -> list[Sequence[str]]:
    return [numbers[i : i + CHUNK] for i in range(0, len(numbers), CHUNK)]


# -- checks and results --------------------------------------------------------------------------------


def insert_check(
    tx: Tx, check_id: int, account_id: int, actor: str, total: int, charged: int, fee_li: int, unit_li: int,
    counts: dict[str, int], at: int,
) -> None:  # fmt: skip
    tx.execute(
        "INSERT INTO number_checks (id, account_id, actor, total, charged, fee_li, unit_li, counts, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (check_id, account_id, actor, total, charged, fee_li, unit_li, orjson.dumps(counts).decode(), at),
    )


def insert_results(tx: Tx, check_id: int, rows: Sequence[tuple[Any, ...]]) -> None:
    """rows: (seq, number, class, carrier, province, ported, confidence‰, evidence text, billed)."""
    tx.bulk_insert(
        "number_check_results",
        ("check_id", "seq", "number", "class", "carrier", "province", "ported", "confidence_pm", "evidence", "billed"),
        [(check_id, *r) for r in rows],
    )


def check_row(tx: Tx, check_id: int) -> Any:
    """(id, account_id, actor, total, charged, fee_li, unit_li, counts, created_at) or None."""
    return tx.one(
        "SELECT id, account_id, actor, total, charged, fee_li, unit_li, counts, created_at FROM number_checks"
        " WHERE id = ?",
        (check_id,),
    )


def results(tx: Tx, check_id: int, cls: str | None = None, after_seq: int = -1, limit: int = 10_000) -> list[Any]:
    """(seq, number, class, carrier, province, ported, confidence‰, evidence, billed) in order."""
    sql = (
        "SELECT seq, number, class, carrier, province, ported, confidence_pm, evidence, billed"
        " FROM number_check_results WHERE check_id = ? AND seq > ?"
    )
    params: tuple[Any, ...] = (check_id, after_seq)
    if cls is not None:
        sql += " AND class = ?"
        params += (cls,)
    return tx.all(sql + " ORDER BY seq LIMIT ?", (*params, limit))
