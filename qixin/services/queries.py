"""Read models for the customer API. Every query is scoped by account (invariant I4)."""

from __future__ import annotations

from typing import Any

import orjson

from qixin.errors import QxError
from qixin.services.billing import li_to_yuan
from qixin.store.db import Tx


def _id(value: str) -> int:
    try:
        out = int(value)
    except (TypeError, ValueError) as e:
        raise QxError("NOT_FOUND") from e
    if not 0 < out < 2**63:
        raise QxError("NOT_FOUND")
    return out


def message(tx: Tx, account_id: int, message_id: str) -> dict[str, Any]:
    r = tx.one(
        "SELECT m.id, m.batch_id, m.number, m.carrier, m.province, m.type, m.parts, m.fee_li, m.status, m.out_id,"
        " m.channel, m.carrier_stat, m.carrier_err, m.error_code, m.refunded, m.created_at, m.send_at,"
        " m.submitted_at, m.done_at, COALESCE(m.content, b.content)"
        " FROM messages m JOIN batches b ON b.id = m.batch_id WHERE m.id = ? AND m.account_id = ?",
        (_id(message_id), account_id),
    )
    if r is None:
        raise QxError("NOT_FOUND", "短信不存在")
    keys = ("id", "batch_id", "to", "carrier", "province", "type", "parts", "fee_li", "status", "out_id",
            "channel", "carrier_stat", "carrier_err", "error_code", "refunded", "created_at", "send_at",
            "submitted_at", "done_at", "content")  # fmt: skip
    out = dict(zip(keys, r, strict=True))
    out["id"], out["batch_id"], out["refunded"] = str(out["id"]), str(out["batch_id"]), bool(out["refunded"])
    return out


def batch(tx: Tx, account_id: int, batch_id: str) -> dict[str, Any]:
    bid = _id(batch_id)
    r = tx.one(
        "SELECT id, type, signature, total, accepted, rejected, fee_li, out_id, created_at, send_at"
        " FROM batches WHERE id = ? AND account_id = ?",
        (bid, account_id),
    )
    if r is None:
        raise QxError("NOT_FOUND", "批次不存在")
    counts = {
        str(s): int(n)
        for s, n in tx.all("SELECT status, COUNT(*) FROM messages WHERE batch_id = ? GROUP BY status", (bid,))
    }
    return {
        "id": str(r[0]),
        "type": r[1],
        "signature": r[2],
        "total": r[3],
        "accepted": r[4],
        "rejected": r[5],
        "fee_li": r[6],
        "out_id": r[7],
        "created_at": r[8],
        "send_at": r[9],
        "status_counts": counts,
    }


def account(tx: Tx, account_id: int) -> dict[str, Any]:
    r = tx.one("SELECT id, name, status, balance_li, price_li FROM accounts WHERE id = ?", (account_id,))
    if r is None:
        raise QxError("NOT_FOUND")
    return {
        "account_id": r[0],
        "name": r[1],
        "status": r[2],
        "balance_li": r[3],
        "balance": li_to_yuan(int(r[3])),
        "price_li": r[4],
    }


def template(tx: Tx, account_id: int, template_id: int) -> dict[str, Any]:
    r = tx.one(
        "SELECT id, name, category, content, variables, status, reason, created_at FROM templates"
        " WHERE id = ? AND account_id = ?",
        (template_id, account_id),
    )
    if r is None:
        raise QxError("NOT_FOUND", "模板不存在")

    keys = ("id", "name", "category", "content", "variables", "status", "reason", "created_at")
    out = dict(zip(keys, r, strict=True))
    out["id"] = str(out["id"])
    out["variables"] = orjson.loads(out["variables"] or "{}")
    return out
