"""Complaints and the evidence report (c001 (10), c004 5.8: evidence within 6 hours; we answer at once).

Rules:
- Recording a complaint blacklists the number (source ``complaint``) in the same transaction: nothing
  more is sent to it by any account. The number must be a phone number (NUMBER_INVALID otherwise).
- The evidence report lists the messages sent to the number (the one message when a message id is
  given): message id, account, signature, type, content, batch id and batch size, the audience the
  customer declared for the batch, accept / send / final times (UTC ms and Beijing time), delivery
  result with the carrier's stat and error code. JSON, or CSV with the same columns (UTF-8 with BOM so
  that spreadsheet programs show the Chinese text), every cell through ``domain.export.safe_cell``.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from qixin.domain.export import safe_row
from qixin.errors import QxError
from qixin.services.compliance.store import add_blacklist, list_number
from qixin.store import compliance as q
from qixin.store.db import Tx, now_ms

SHANGHAI = ZoneInfo("Asia/Shanghai")
MAX_MESSAGES = 1000
COLUMNS = (
    "message_id", "account_id", "account_name", "number", "signature", "type", "content", "batch_id",
    "batch_size", "audience", "created_at", "submitted_at", "done_at", "status", "carrier", "carrier_stat",
    "carrier_err", "channel",
)  # fmt: skip
COMPLAINT_KEYS = ("id", "number", "message_id", "account_id", "note", "actor", "created_at")


def complainant_number(raw: str) -> str:
    """The complained-about number in its stored form; INVALID_REQUEST when missing, NUMBER_INVALID when
    it is not a phone number (nothing that is not a number reaches the complaints or the blacklist)."""
    if not raw.strip():
        raise QxError("INVALID_REQUEST", "缺少被投诉号码")
    number = list_number(raw) if "\n" not in raw and "\r" not in raw else None
    if number is None:
        raise QxError("NUMBER_INVALID", "被投诉号码不是有效的手机号码")
    return number


def record_complaint(tx: Tx, number: str, message_id: int | None, note: str, actor: str) -> dict[str, Any]:
    """Store the complaint and blacklist the number; QxError before writing when the number is not one
    or the message is unknown."""
    number = complainant_number(number)
    if message_id is not None:
        account_id = q.message_account(tx, message_id)
        if account_id is None:
            raise QxError("NOT_FOUND", "短信不存在")
    else:
        account_id = q.last_sender_to(tx, number)
    complaint_id = q.insert_complaint(tx, number, message_id, account_id, note, actor, now_ms())
    add_blacklist(tx, [number], "complaint", f"complaint:{complaint_id}")
    return {"complaint_id": complaint_id, "number": number, "message_id": message_id, "account_id": account_id}


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(SHANGHAI).isoformat(timespec="seconds")


def evidence(tx: Tx, complaint_id: int) -> dict[str, Any]:
    c = q.complaint_row(tx, complaint_id)
    if c is None:
        raise QxError("NOT_FOUND", "投诉记录不存在")
    one = c[2] is not None  # the one message complained about, else every message to the number
    rows = q.evidence_by_message(tx, int(c[2])) if one else q.evidence_by_number(tx, c[1], MAX_MESSAGES)
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
        w.writerow(safe_row(m))  # content and audience are the customer's text
    return out.getvalue()


def list_complaints(tx: Tx, limit: int = 100) -> list[dict[str, Any]]:
    return [dict(zip(COMPLAINT_KEYS, r, strict=True)) for r in q.complaint_rows(tx, limit)]
