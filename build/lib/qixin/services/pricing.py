"""Price plans: prices per account × product × carrier × message type, each from an effective time.

Rules:
- A plan row says: from ``effective_at`` on, one unit of ``product`` (an SMS billed part, a number-check
  query) costs ``price_li`` for this account, for ``carrier`` ('' = any) and ``msg_type`` ('' = any).
- The price of a unit at time T: for each (carrier, type) key the plan with the latest
  ``effective_at <= T``; then the most specific key wins: carrier+type, carrier, type, any. Without a
  plan, the account's base price (``accounts.price_li``) applies.
- A price change is announced when it is made (notification record + email to the billing address),
  before it takes effect; ``min_notice`` lets an operator require a notice period.
- The accept path never waits for the database to price a batch: ``PlanPricer`` keeps each account's
  plans for a few seconds (``refresh`` before ``unit_price``) and picks by the current time, so a plan
  takes effect at its exact time even when it was loaded earlier.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qixin.domain.numbers import CARRIERS
from qixin.errors import QxError
from qixin.services import notify
from qixin.services.accounts import ApiKey
from qixin.services.billing import li_to_yuan, local
from qixin.store.db import Database, Tx, now_ms

PRODUCTS = {"sms": "短信（每计费条）", "numcheck": "号码检测（每次）"}
MSG_TYPES = ("verification", "notification", "marketing")


@dataclass(frozen=True, slots=True)
class Plan:
    id: int
    product: str
    carrier: str
    msg_type: str
    price_li: int
    effective_at: int


def select_price(plans: Sequence[Plan], product: str, carrier: str, msg_type: str, at: int, base: int) -> int:
    best: Plan | None = None
    best_rank = (-1, -1)
    for p in plans:
        if p.product != product or p.effective_at > at:
            continue
        if p.carrier not in ("", carrier) or p.msg_type not in ("", msg_type):
            continue
        rank = ((p.carrier != "") * 2 + (p.msg_type != ""), p.effective_at)
        if rank > best_rank:
            best, best_rank = p, rank
    return best.price_li if best is not None else base


def load_plans(tx: Tx, account_id: int) -> list[Plan]:
    rows = tx.all(
        "SELECT id, product, carrier, msg_type, price_li, effective_at FROM price_plans WHERE account_id = ?"
        " ORDER BY effective_at, id",
        (account_id,),
    )
    return [Plan(int(r[0]), r[1], r[2], r[3], int(r[4]), int(r[5])) for r in rows]


class PlanPricer:
    """The accept Pricer backed by price plans, cached per account for ``ttl`` seconds."""

    def __init__(self, db: Database, ttl: float = 3.0) -> None:
        self.db = db
        self.ttl = ttl
        self._plans: dict[int, tuple[float, list[Plan]]] = {}

    def invalidate(self, account_id: int | None = None) -> None:
        if account_id is None:
            self._plans.clear()
        else:
            self._plans.pop(account_id, None)

    async def refresh(self, key: ApiKey) -> None:
        hit = self._plans.get(key.account_id)
        if hit is None or hit[0] <= time.monotonic():
            plans = await self.db.read(lambda tx: load_plans(tx, key.account_id))
            self._plans[key.account_id] = (time.monotonic() + self.ttl, plans)

    def plans(self, account_id: int) -> list[Plan]:
        hit = self._plans.get(account_id)
        if hit is None:  # not refreshed (a direct caller): read now
            plans = self.db.read_sync(lambda tx: load_plans(tx, account_id))
            self._plans[account_id] = (time.monotonic() + self.ttl, plans)
            return plans
        return hit[1]

    def unit_price(self, key: ApiKey, carrier: str, msg_type: str) -> int:
        return select_price(self.plans(key.account_id), "sms", carrier, msg_type, now_ms(), key.price_li)

    def price(self, key: ApiKey, product: str, carrier: str = "", msg_type: str = "") -> int:
        """Unit price of any product now; PRICE_NOT_SET for a product other than SMS without a plan."""
        li = select_price(
            self.plans(key.account_id), product, carrier, msg_type, now_ms(), _base(product, key.price_li)
        )
        if li < 0:
            raise QxError("PRICE_NOT_SET", product=product)
        return li


def _base(product: str, account_price_li: int) -> int:
    """The account's own price is the SMS base; other products have none (-1) until a plan sets one."""
    return account_price_li if product == "sms" else -1


def price_at(tx: Tx, account_id: int, product: str, carrier: str, msg_type: str, at: int) -> int:
    """The unit price at ``at`` (-1: not set for a product other than SMS)."""
    base = tx.one("SELECT price_li FROM accounts WHERE id = ?", (account_id,))
    if base is None:
        raise QxError("NOT_FOUND", "账户不存在")
    return select_price(load_plans(tx, account_id), product, carrier, msg_type, at, _base(product, int(base[0])))


def _when(ms: int) -> str:
    return local(ms).strftime("%Y-%m-%d %H:%M")


def create_plan(
    tx: Tx,
    account_id: int,
    product: str,
    price_li: int,
    *,
    carrier: str = "",
    msg_type: str = "",
    effective_at: int | None = None,
    note: str | None = None,
    created_by: str = "",
    min_notice_ms: int = 0,
) -> dict[str, Any]:
    """Add a price plan and announce it to the customer (notification record + email)."""
    now = now_ms()
    at = effective_at if effective_at is not None else now
    if product not in PRODUCTS:
        raise QxError("INVALID_REQUEST", "产品必须是 sms 或 numcheck")
    if carrier and carrier not in CARRIERS:
        raise QxError("INVALID_REQUEST", f"运营商必须是 {', '.join(CARRIERS)} 之一或留空")
    if msg_type and msg_type not in MSG_TYPES:
        raise QxError("TYPE_INVALID")
    if price_li < 0:
        raise QxError("INVALID_REQUEST", "单价不能为负")
    if at < now - 60_000:
        raise QxError("INVALID_REQUEST", "生效时间不能早于现在（价格不追溯）")
    if min_notice_ms and at - now < min_notice_ms:
        raise QxError("PRICE_NOTICE_TOO_SHORT", f"调价须至少提前 {min_notice_ms // 86_400_000} 天通知客户")
    old = price_at(tx, account_id, product, carrier, msg_type, at)
    row = tx.one(
        "INSERT INTO price_plans (account_id, product, carrier, msg_type, price_li, effective_at, note, created_by,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (account_id, product, carrier, msg_type, price_li, at, note, created_by, now),
    )
    pid = int(row[0])
    scope = " ".join(x for x in (CARRIERS.get(carrier, ""), msg_type) if x) or "全部"
    notify.record(
        tx, account_id, "price_change",
        f"价格调整通知：{PRODUCTS[product]} {li_to_yuan(price_li)} 元，{_when(at)} 起生效",
        f"尊敬的客户：自 {_when(at)}（北京时间）起，您的账户 {account_id} 的{PRODUCTS[product]}价格（范围：{scope}）"
        f"由 {li_to_yuan(old) + ' 元' if old >= 0 else '未定价'}调整为 {li_to_yuan(price_li)} 元。"
        + (f"说明：{note}" if note else ""),
        ref=f"plan:{pid}",
    )  # fmt: skip
    return plan_dict((pid, account_id, product, carrier, msg_type, price_li, at, note, created_by, now)) | {
        "previous_price_li": old
    }


PLAN_COLUMNS = "id, account_id, product, carrier, msg_type, price_li, effective_at, note, created_by, created_at"


def plan_dict(r: Sequence[Any]) -> dict[str, Any]:
    out = dict(zip([c.strip() for c in PLAN_COLUMNS.split(",")], r, strict=True))
    out["price"] = li_to_yuan(int(out["price_li"]))
    return out


def list_plans(tx: Tx, account_id: int) -> list[dict[str, Any]]:
    rows = tx.all(
        f"SELECT {PLAN_COLUMNS} FROM price_plans WHERE account_id = ? ORDER BY effective_at, id", (account_id,)
    )
    return [plan_dict(r) for r in rows]


def current_prices(tx: Tx, account_id: int, at: int | None = None) -> dict[str, Any]:
    """The customer's view: today's price per product, carrier and type, and the announced changes."""
    at = at if at is not None else now_ms()
    base = tx.one("SELECT price_li FROM accounts WHERE id = ?", (account_id,))
    if base is None:
        raise QxError("NOT_FOUND")
    plans = load_plans(tx, account_id)
    table = []
    for product in PRODUCTS:
        for carrier in ("cmcc", "cucc", "ctcc", "cbn"):
            for t in MSG_TYPES if product == "sms" else ("",):
                li = select_price(plans, product, carrier, t, at, _base(product, int(base[0])))
                table.append({"product": product, "carrier": carrier, "type": t, "price_li": li if li >= 0 else None})
    upcoming = [plan_dict((p.id, account_id, p.product, p.carrier, p.msg_type, p.price_li, p.effective_at, None, "",
                           0)) for p in plans if p.effective_at > at]  # fmt: skip
    return {"prices": table, "upcoming": upcoming}
