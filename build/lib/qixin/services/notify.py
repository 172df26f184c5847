"""Notices to customers: price changes, balance-low alerts, statements — recorded, then delivered.

Rules:
- A notice is first a row of ``notifications`` written in the transaction that caused it (a price plan,
  the charge that crossed the alert threshold): it cannot be lost, and the customer API lists it.
- Every notice has one ``record`` row (what the customer sees in ``GET /v1/notifications``) and one row
  per delivery channel that has a target: ``email`` (billing or alert address), ``webhook`` (the
  account's alert URL), ``sms`` (the account's contact mobile; recorded for the operator to send).
- Delivery happens later, outside the transaction (``Notifier``): email over SMTP (aiosmtplib),
  webhook as a JSON POST; a failure is retried a few times, then the row is left ``failed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import httpx

from qixin.store.db import Database, Tx, now_ms

log = logging.getLogger("qixin.notify")

MAX_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Smtp:
    """Where and how email leaves the platform (Settings.smtp_*); an empty host disables email."""

    host: str = ""
    port: int = 25
    user: str = ""
    password: str = ""
    sender: str = "billing@qixin.local"
    starttls: bool = False
    timeout: float = 10.0


def contacts(tx: Tx, account_id: int) -> dict[str, str]:
    row = tx.one(
        "SELECT billing_email, alert_email, alert_webhook, alert_mobile FROM billing_accounts WHERE account_id = ?",
        (account_id,),
    )
    if row is None:
        return {}
    billing_email, alert_email, webhook, mobile = row
    return {
        "billing_email": billing_email or alert_email or "",
        "alert_email": alert_email or billing_email or "",
        "webhook": webhook or "",
        "mobile": mobile or "",
    }


def record(
    tx: Tx,
    account_id: int,
    kind: str,
    subject: str,
    body: str,
    ref: str = "",
    channels: Sequence[str] = ("email",),
) -> int:
    """Write a notice: its ``record`` row plus one pending row per channel with a target. Returns rows written."""
    c = contacts(tx, account_id)
    targets = {
        "email": c.get("billing_email" if kind in ("price_change", "statement") else "alert_email", ""),
        "webhook": c.get("webhook", ""),
        "sms": c.get("mobile", ""),
    }
    now = now_ms()
    rows = [(account_id, kind, "record", "", subject, body, ref, "recorded", now)]
    for ch in channels:
        target = targets.get(ch, "")
        if target:
            rows.append(
                (account_id, kind, ch, target, subject, body, ref, "recorded" if ch == "sms" else "pending", now)
            )
    tx.executemany(
        "INSERT INTO notifications (account_id, kind, channel, target, subject, body, ref, status, created_at,"
        " attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
        rows,
    )
    return len(rows)


def listing(tx: Tx, account_id: int, limit: int = 50, before_id: int | None = None) -> list[dict[str, Any]]:
    sql = (
        "SELECT id, kind, subject, body, ref, created_at FROM notifications WHERE account_id = ? AND channel = 'record'"
    )
    params: tuple[Any, ...] = (account_id,)
    if before_id:
        sql += " AND id < ?"
        params += (before_id,)
    rows = tx.all(sql + " ORDER BY id DESC LIMIT ?", (*params, limit))
    keys = ("id", "kind", "subject", "body", "ref", "created_at")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def build_email(
    smtp: Smtp, to: str, subject: str, body: str, attachments: Sequence[tuple[str, bytes, str]] = ()
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = smtp.sender
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    for filename, data, mime in attachments:
        maintype, _, subtype = mime.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg


async def send_email(
    smtp: Smtp, to: str, subject: str, body: str, attachments: Sequence[tuple[str, bytes, str]] = ()
) -> None:
    """Send one email (raises on failure). ``attachments``: (filename, bytes, MIME type)."""
    import aiosmtplib

    if not smtp.host:
        raise RuntimeError("SMTP is not configured (QIXIN_SMTP_HOST)")
    await aiosmtplib.send(
        build_email(smtp, to, subject, body, attachments),
        hostname=smtp.host,
        port=smtp.port,
        username=smtp.user or None,
        password=smtp.password or None,
        start_tls=smtp.starttls,
        timeout=smtp.timeout,
    )


class Notifier:
    """Delivers pending email and webhook notices."""

    def __init__(self, db: Database, smtp: Smtp, batch: int = 50, timeout: float = 5.0) -> None:
        self.db = db
        self.smtp = smtp
        self.batch = batch
        self.timeout = timeout
        self.stats = {"sent": 0, "failed": 0}

    async def deliver_once(self) -> int:
        rows = await self.db.read(
            lambda tx: tx.all(
                "SELECT id, account_id, kind, channel, target, subject, body, attempts FROM notifications"
                " WHERE status = 'pending' AND channel IN ('email', 'webhook') ORDER BY id LIMIT ?",
                (self.batch,),
            )
        )
        if not rows:
            return 0
        results: list[tuple[int, str | None]] = []
        async with httpx.AsyncClient(timeout=self.timeout) as http:
            for nid, account_id, kind, channel, target, subject, body, _attempts in rows:
                try:
                    if channel == "email":
                        if not self.smtp.host:
                            raise RuntimeError("SMTP is not configured")
                        await send_email(self.smtp, target, subject, body)
                    else:
                        payload = {"type": kind, "account_id": account_id, "subject": subject, "body": body}
                        resp = await http.post(target, json=payload)
                        if resp.status_code >= 300:
                            raise RuntimeError(f"HTTP {resp.status_code}")
                    results.append((int(nid), None))
                except Exception as e:
                    results.append((int(nid), str(e)[:500] or type(e).__name__))

        def job(tx: Tx) -> None:
            now = now_ms()
            for nid, err in results:
                if err is None:
                    tx.execute(
                        "UPDATE notifications SET status = 'sent', sent_at = ?, attempts = attempts + 1 WHERE id = ?",
                        (now, nid),
                    )
                else:
                    tx.execute(
                        "UPDATE notifications SET attempts = attempts + 1, last_error = ?,"
                        " status = CASE WHEN attempts + 1 >= ? THEN 'failed' ELSE 'pending' END WHERE id = ?",
                        (err, MAX_ATTEMPTS, nid),
                    )

        await self.db.write(job)
        ok = sum(1 for _, e in results if e is None)
        self.stats["sent"] += ok
        self.stats["failed"] += len(results) - ok
        return len(results)


async def cancel_quietly(task: asyncio.Task[Any] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
