"""Maintenance announcements and incident notices (c003 5.8): staff publish, the affected accounts are told.

Rules:
- An announcement is a maintenance window (planned) or an incident (an unplanned interruption), with a
  title, a body, ``starts_at`` and optionally ``ends_at`` (ms UTC; the API takes Unix seconds or ISO 8601,
  naive = Asia/Shanghai), addressed to every account (``accounts: "all"``) or to a list of accounts.
- Publishing writes, in the same transaction, for every affected account: the notice record
  (``GET /v1/billing/notifications``) and its email row (the account's alert address; delivered by the notice
  worker, services/notify.py), and a signed webhook event ``{"type": "announcement", …}`` to the
  account's callback URL (the webhook outbox, retried like receipts).
- An incident must be announced within 24 hours of the interruption's start: ``published_at`` is
  recorded and ``late`` says when it came more than 24 hours after ``starts_at``.
- Staff with the ``channels`` area (ops, admin) publish, edit (title, body, ends_at: no new notices)
  and withdraw (hidden from customers); every change is audited. Customers list the published ones
  that address them, never another account's.
"""

from __future__ import annotations

from typing import Any

import orjson

from qixin.domain.timeparse import parse_time
from qixin.errors import QxError
from qixin.services import notify
from qixin.services.actor import Actor, UseCase
from qixin.store import alerts as store
from qixin.store import uplink as uplink_store
from qixin.store import webhooks as outbox
from qixin.store.db import Tx, now_ms

AREA = "channels"
KINDS = {"maintenance": "维护公告", "incident": "故障通告"}
LATE_MS = 24 * 3_600_000
MAX_ACCOUNTS = 10_000


def _dict(r: Any, audience: list[int] | None = None) -> dict[str, Any]:
    kind, starts, published = str(r[1]), int(r[4]), int(r[9])
    out = {
        "id": int(r[0]), "kind": kind, "title": str(r[2]), "body": str(r[3]), "starts_at": starts,
        "ends_at": None if r[5] is None else int(r[5]), "published_at": published,
        "late": kind == "incident" and published - starts > LATE_MS,
    }  # fmt: skip
    if audience is not None:  # staff view
        out |= {"accounts": "all" if r[6] == "all" else audience, "status": str(r[7]), "created_by": str(r[8]),
                "updated_at": int(r[10])}  # fmt: skip
    return out


def _text(body: dict[str, Any], name: str, limit: int) -> str:
    v = body.get(name)
    if not isinstance(v, str) or not v.strip():
        raise QxError("INVALID_REQUEST", f"缺少 {name}")
    if len(v) > limit:
        raise QxError("INVALID_REQUEST", f"{name} 最长 {limit} 个字符")
    return v.strip()


class Announcements(UseCase):
    async def publish(self, actor: Actor, body: dict[str, Any]) -> dict[str, Any]:
        actor.require(AREA)
        kind = body.get("kind")
        if kind not in KINDS:
            raise QxError("INVALID_REQUEST", "kind 必须是 maintenance 或 incident")
        title = _text(body, "title", 200)
        text = _text(body, "body", 4000)
        starts = parse_time(body.get("starts_at"))
        if starts is None:
            raise QxError("INVALID_REQUEST", "缺少 starts_at")
        ends = parse_time(body.get("ends_at"))
        if ends is not None and ends <= starts:
            raise QxError("INVALID_REQUEST", "ends_at 必须晚于 starts_at")
        accounts = body.get("accounts", "all")
        if accounts != "all":
            if (
                not isinstance(accounts, list) or not accounts or len(accounts) > MAX_ACCOUNTS
                or not all(isinstance(a, int) and not isinstance(a, bool) for a in accounts)
            ):  # fmt: skip
                raise QxError("INVALID_REQUEST", f'accounts 为 "all" 或 1–{MAX_ACCOUNTS} 个账户 ID')
            accounts = sorted(set(accounts))
        who = actor.name or f"{actor.kind}:{actor.id}"

        def fn(tx: Tx) -> dict[str, Any]:
            if accounts == "all":
                targets = store.active_accounts(tx)
            else:
                targets = store.existing_accounts(tx, accounts)
                missing = sorted(set(accounts) - set(targets))
                if missing:
                    raise QxError("NOT_FOUND", "账户不存在：" + "、".join(str(a) for a in missing[:20]))
            now = now_ms()
            aid = store.insert_announcement(
                tx, str(kind), title, text, starts, ends, "all" if accounts == "all" else "list", who, now
            )
            if accounts != "all":
                store.insert_audience(tx, aid, targets)
            row = store.announcement(tx, aid)
            public = _dict(row)
            _tell(tx, targets, public, now)
            return _dict(row, targets if accounts != "all" else []) | {"notified_accounts": len(targets)}

        return await self.change(
            actor, "announcement.publish", lambda out: f"announcement:{out['id']}", fn,
            detail=lambda out: {k: out[k] for k in ("kind", "title", "starts_at", "ends_at", "notified_accounts")},
        )  # fmt: skip

    async def update(self, actor: Actor, announcement_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """Edit the title, body or ends_at, or withdraw (``status: withdrawn``); no new notices are sent."""
        actor.require(AREA)
        unknown = set(body) - {"title", "body", "ends_at", "status"}
        if unknown:
            raise QxError("INVALID_REQUEST", "不能修改的字段：" + "、".join(sorted(unknown)))

        def fn(tx: Tx) -> dict[str, Any]:
            row = store.announcement(tx, announcement_id)
            if row is None:
                raise QxError("NOT_FOUND")
            title = _text(body, "title", 200) if "title" in body else str(row[2])
            text = _text(body, "body", 4000) if "body" in body else str(row[3])
            ends = parse_time(body["ends_at"]) if "ends_at" in body else row[5]
            if ends is not None and ends <= int(row[4]):
                raise QxError("INVALID_REQUEST", "ends_at 必须晚于 starts_at")
            status = body.get("status", row[7])
            if status not in ("published", "withdrawn"):
                raise QxError("INVALID_REQUEST", "status 可选 published、withdrawn")
            store.update_announcement(tx, announcement_id, title, text, ends, str(status), now_ms())
            return _dict(store.announcement(tx, announcement_id), store.audience(tx, announcement_id))

        return await self.change(actor, "announcement.update", f"announcement:{announcement_id}", fn,
                                 detail=lambda _: body)  # fmt: skip

    async def withdraw(self, actor: Actor, announcement_id: int) -> dict[str, Any]:
        return await self.update(actor, announcement_id, {"status": "withdrawn"})

    async def get(self, actor: Actor, announcement_id: int) -> dict[str, Any]:
        def q(tx: Tx) -> dict[str, Any]:
            row = store.announcement(tx, announcement_id)
            if row is None:
                raise QxError("NOT_FOUND")
            audience = store.audience(tx, announcement_id)
            if actor.is_customer:
                if row[7] != "published" or (row[6] != "all" and actor.account_id not in audience):
                    raise QxError("NOT_FOUND")
                return _dict(row)
            return _dict(row, audience)

        if not actor.is_customer:
            actor.require(AREA)
        return await self.read(q)

    async def listing(
        self, actor: Actor, before_id: int | None = None, limit: int = 50, include_withdrawn: bool = False
    ) -> dict[str, Any]:
        """A customer's: the published ones addressed to its account; staff: all (withdrawn on request)."""
        limit = max(1, min(int(limit), 200))
        if actor.is_customer:
            account, withdrawn = actor.account_id, False
        else:
            actor.require(AREA)
            account, withdrawn = None, include_withdrawn

        def q(tx: Tx) -> list[dict[str, Any]]:
            rows = store.list_announcements(tx, account, withdrawn, before_id, limit)
            if actor.is_customer:
                return [_dict(r) for r in rows]
            return [_dict(r, store.audience(tx, int(r[0]))) for r in rows]

        items = await self.read(q)
        return {"announcements": items, "next_before_id": items[-1]["id"] if len(items) == limit else None}


def _tell(tx: Tx, account_ids: list[int], a: dict[str, Any], now: int) -> None:
    """The notice record + email row and the signed webhook event of every affected account."""
    label = KINDS[a["kind"]]
    subject = f"【{label}】{a['title']}"
    payload = orjson.dumps({"type": "announcement", **{k: v for k, v in a.items() if k != "late"}}).decode()
    events = []
    for account_id in account_ids:
        notify.record(tx, account_id, "announcement", subject, a["body"], ref=f"announcement:{a['id']}",
                      channels=("email",))  # fmt: skip
        key = uplink_store.callback_key(tx, account_id)
        if key is not None:
            events.append((account_id, key[0], key[1], payload, now, now))
    if events:
        outbox.insert_events(tx, events)
