"""Complaints and the evidence report (c001 (10), c004 5.8: evidence within 6 hours; we answer at once).

Rules:
- Recording a complaint blacklists the number (source ``complaint``) in the same transaction: nothing
  more is sent to it by any account.
- The evidence report lists the messages sent to the number (the one message when a message id is
  given): message id, account, signature, type, content, batch id and batch size, the audience the
  customer declared for the batch, accept / send / final times (UTC ms and Beijing time), delivery
  result with the carrier's stat and error code. JSON, or CSV with the same columns (UTF-8 with BOM so
  that spreadsheet programs show the Chinese text).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from qixin.domain.numbers import normalize_cn_mobile
from qixin.errors import QxError
from qixin.services.compliance.store import add_blacklist
from qixin.store.db import Tx, now_ms

SHANGHAI = ZoneInfo("Asia/Shanghai")
MAX_MESSAGES = 1000
COLUMNS = (
    "message_id", "account_id", "account_name", "number", "signature", "type", "content", "batch_id",
    "batch_size", "audience", "created_at", "submitted_at", "done_at", "status", "carrier", "carrier_stat",
    "carrier_err", "channel",
)  # fmt: skip


def clean_number(raw: str) -> str:
    raw = raw.strip()
    return normalize_cn_mobile(raw) or raw


def record_complaint(tx: Tx, number: str, message_id: int | None, note: str, actor: str) -> dict[str, Any]:
    """Store the complaint and blacklist the number; QxError before writing when the message is unknown."""
    number = clean_number(number)
    if not number:
        raise QxError("INVALID_REQUEST", "缺少被投诉号码")
    account_id: int | None = None
    if message_id is not None:
        r = tx.one("SELECT account_id, number FROM messages WHERE id = ?", (message_id,))
        if r is None:
            raise QxError("NOT_FOUND", "短信不存在")
        account_id = int(r[0])
    else:
        r = tx.one("SELECT account_id FROM messages WHERE number = ? ORDER BY created_at DESC LIMIT 1", (number,))
        account_id = int(r[0]) if r else None
    row = tx.one(
        "INSERT INTO complaints (number, message_id, account_id, note, actor, created_at) VALUES (?, ?, ?, ?, ?, ?)"
        " RETURNING id",
        (number, message_id, account_id, note, actor, now_ms()),
    )
    add_blacklist(tx, [number], "complaint", f"complaint:{row[0]}")
    return {"complaint_id": int(row[0]), "number": number, "message_id": message_id, "account_id": account_id}


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(SHANGHAI).isoformat(timespec="seconds")


def evidence(tx: Tx, complaint_id: int) -> dict[str, Any]:
    c = tx.one(
        "SELECT id, number, message_id, account_id, note, actor, created_at FROM complaints WHERE id = ?",
        (complaint_id,),
    )
    if c is None:
        raise QxError("NOT_FOUND", "投诉记录不存在")
    sql = (
        "SELECT m.id, m.account_id, a.name, m.number, b.signature, m.type, COALESCE(m.content, b.content),"
        " m.batch_id, b.total, au.audience, m.created_at, m.submitted_at, m.done_at, m.status, m.carrier,"
        " m.carrier_stat, m.carrier_err, m.channel"
        " FROM messages m JOIN batches b ON b.id = m.batch_id LEFT JOIN accounts a ON a.id = m.account_id"
        " LEFT JOIN batch_audience au ON au.batch_id = m.batch_id"
    )
    if c[2] is not None:
        rows = tx.all(sql + " WHERE m.id = ?", (c[2],))
    else:
        rows = tx.all(sql + " WHERE m.number = ? ORDER BY m.created_at DESC LIMIT ?", (c[1], MAX_MESSAGES))
    messages = []
    for r in rows:
        item = dict(zip(COLUMNS, r, strict=True))
        item["message_id"] = str(item["message_id"])
        item["batch_id"] = str(item["batch_id"])
        for k in ("created_at", "submitted_at", "done_at"):
            item[f"{k}_local"] = _iso(item[k])
        messages.append(item)
    return {
        "complaint": {
            "id": int(c[0]), "number": c[1], "message_id": None if c[2] is None else str(c[2]),
            "account_id": c[3], "note": c[4], "recorded_by": c[5], "created_at": c[6],
            "created_at_local": _iso(c[6]), "blacklisted": True,
        },
        "generated_at": now_ms(),
        "messages": messages,
    }  # fmt: skip


def evidence_csv(report: dict[str, Any]) -> str:
    out = io.StringIO()
    out.write("\ufeff")
    columns = [*COLUMNS, "created_at_local", "submitted_at_local", "done_at_local"]
    w = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
    w.writeheader()
    for m in report["messages"]:
        w.writerow(m)
    return out.getvalue()


def list_complaints(tx: Tx, limit: int = 100) -> list[dict[str, Any]]:
    rows = tx.all(
        "SELECT id, number, message_id, account_id, note, actor, created_at FROM complaints ORDER BY id DESC LIMIT ?",
        (limit,),
    )
    keys = ("id", "number", "message_id", "account_id", "note", "actor", "created_at")
    return [dict(zip(keys, r, strict=True)) for r in rows]
