"""Accounts, API keys, signatures and templates: the use cases, and the directory cache the API reads.

Rules:
- An account is created with a top-up (a ledger entry, never a bare balance), one approved signature
  and one API key, in one transaction.
- A signature name follows the signature-name rule and a template the review rules
  (domain/compliance/templates.py) whoever applies — HTTP API, CLI, console: the rule runs here, in the
  use case, never in an entry point. Staff review (approve / reject with a reason).
- An API key's secret is shown once, at creation or rotation; a disabled key stops authenticating.
- The directory cache holds what every request needs (key → account, approved signatures, approved
  templates) for a few seconds; balances are never cached. Every change here invalidates it.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from qixin.domain.compliance import ContentChecker, review_template, validate_signature_name
from qixin.domain.compliance.templates import Violation
from qixin.domain.money import li_to_yuan
from qixin.domain.secretbox import SecretBox
from qixin.errors import QxError
from qixin.services import billing
from qixin.services.actor import Actor, UseCase
from qixin.services.cache import TtlCache
from qixin.services.channels import extension_of
from qixin.store import accounts as store
from qixin.store import webhooks as outbox
from qixin.store.db import Database, Tx, now_ms

T = TypeVar("T")
log = logging.getLogger("qixin.accounts")

MESSAGE_TYPES = ("verification", "notification", "marketing")


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: int
    account_id: int
    app_key: str
    app_secret: str
    callback_url: str | None
    ip_allowlist: tuple[str, ...]
    account_status: str
    price_li: int
    allow_free_text: bool

    def actor(self, ip: str | None = None) -> Actor:
        return Actor.customer(self.account_id, self.app_key, ip)


@dataclass(frozen=True, slots=True)
class Template:
    id: int
    account_id: int
    name: str
    category: str
    content: str
    variables: dict[str, Any]
    status: str


# -- transaction steps (used by the use cases below and by tests that build fixtures) -----------------


def create_account(
    tx: Tx,
    name: str,
    signature: str,
    balance_li: int,
    price_li: int,
    callback_url: str | None = None,
    allow_free_text: bool = True,
    box: SecretBox | None = None,
) -> dict[str, Any]:
    """Account, approved signature, opening top-up and an API key (sealed with ``box`` when given)."""
    if not name.strip():
        raise QxError("INVALID_REQUEST", "账户名称不能为空")
    if price_li < 0:
        raise QxError("INVALID_REQUEST", "单价不能为负")
    if signature:
        _check_signature_name(signature)
    account_id = store.insert_account(tx, name, price_li, allow_free_text)
    if balance_li:
        billing.topup(tx, account_id, balance_li, ref=f"init-{account_id}", note="开户充值", operator=True)
    if signature:
        store.insert_signature(tx, account_id, signature, "approved")
    app_key, secret = issue_key(tx, account_id, callback_url, box)
    extension_of(tx, account_id)
    return {"account_id": account_id, "app_key": app_key, "app_secret": secret}


def issue_key(
    tx: Tx, account_id: int, callback_url: str | None = None, box: SecretBox | None = None
) -> tuple[str, str]:
    """A new key pair; the secret is stored sealed with ``box`` (returned in clear, to be shown once)."""
    app_key = "qx" + secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    store.insert_key(tx, account_id, app_key, box.seal(secret) if box else secret, callback_url)
    return app_key, secret


def add_signature(tx: Tx, account_id: int, name: str, status: str = "pending") -> int:
    _check_signature_name(name)
    if not store.account_exists(tx, account_id):
        raise QxError("NOT_FOUND", "账户不存在")
    if store.signature_exists(tx, account_id, name):
        raise QxError("CONFLICT", f"签名 {name} 已提交过")
    return store.insert_signature(tx, account_id, name, status)


def add_template(
    tx: Tx,
    account_id: int,
    name: str,
    category: str,
    content: str,
    variables: dict[str, Any],
    status: str = "pending",
) -> int:
    if category not in MESSAGE_TYPES:
        raise QxError("TYPE_INVALID")
    if not store.account_exists(tx, account_id):
        raise QxError("NOT_FOUND", "账户不存在")
    return store.insert_template(tx, account_id, name, category, content, orjson.dumps(variables).decode(), status)


def review(tx: Tx, table: str, item_id: int, approve: bool, reason: str | None = None) -> None:
    if not approve and not (reason or "").strip():
        raise QxError("INVALID_REQUEST", "驳回须填写原因")
    if not store.set_review(tx, table, item_id, "approved" if approve else "rejected", reason):
        raise QxError("NOT_FOUND")


def _violations_error(code: str, problems: list[Violation]) -> QxError:
    return QxError(
        code,
        problems[0].message_zh,
        violations=[{"code": v.code, "message": v.message_zh, **v.detail} for v in problems],
    )


def _check_signature_name(name: str) -> None:
    """SIGNATURE_NAME_INVALID (every problem listed) unless ``name`` follows the signature-name rule."""
    problems = validate_signature_name(name)
    if problems:
        raise _violations_error("SIGNATURE_NAME_INVALID", problems)


def check_template(checker: ContentChecker | None, category: str, content: str, variables: dict[str, Any]) -> None:
    """TEMPLATE_REVIEW_FAILED (every problem listed) when the review rules already refuse the template."""
    if not isinstance(variables, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in variables.items()
    ):
        raise QxError("INVALID_REQUEST", "variables 应为 {变量名: 类型} 对象，类型如 code、text:20")
    if category not in MESSAGE_TYPES:
        raise QxError("TYPE_INVALID")
    problems = review_template(category, content, variables, checker=checker)
    if problems:
        raise _violations_error("TEMPLATE_REVIEW_FAILED", problems)


def _key_dict(r: Any) -> dict[str, Any]:
    return {
        "app_key": r[0], "callback_url": r[1],
        "ip_allowlist": [x for x in (r[2] or "").split(",") if x], "status": r[3], "created_at": r[4],
    }  # fmt: skip


def _signature_dict(r: Any) -> dict[str, Any]:
    return dict(zip(("id", "account_id", "name", "status", "reason", "created_at"), r, strict=True))


def template_dict(r: Any) -> dict[str, Any]:
    keys = ("id", "account_id", "name", "category", "content", "variables", "status", "reason", "created_at")
    out = dict(zip(keys, r, strict=True))
    out["id"] = str(out["id"])
    out["variables"] = orjson.loads(out["variables"] or "{}")
    return out


# -- the directory cache --------------------------------------------------------------------------------


class Directory:
    """Read-mostly lookups with a short TTL, shared by all requests of one process."""

    def __init__(self, db: Database, ttl: float = 3.0, box: SecretBox | None = None) -> None:
        self.db = db
        self._cache = TtlCache(ttl)
        self.box = box  # opens the sealed app secrets

    @property
    def ttl(self) -> float:
        return self._cache.ttl

    def invalidate(self) -> None:
        self._cache.clear()

    async def _cached(self, key: tuple[Any, ...], query: Callable[[Tx], T]) -> T:
        return await self._cache.get_or_load(key, lambda: self.db.read(query))

    async def key(self, app_key: str) -> ApiKey | None:
        def q(tx: Tx) -> ApiKey | None:
            r = store.key_row(tx, app_key)
            if r is None:
                return None
            ips = tuple(x.strip() for x in (r[5] or "").split(",") if x.strip())
            try:
                secret = self.box.open(r[3]) if self.box else r[3]
            except Exception:  # sealed with another key: refuse the key, loudly, never with a stack trace
                log.error("app secret of %s cannot be opened: QIXIN_SECRET_KEY differs from the key that sealed it",
                          app_key)  # fmt: skip
                return None
            return ApiKey(int(r[0]), int(r[1]), r[2], secret, r[4], ips, r[6], int(r[7]), bool(r[8]))

        return await self._cached(("key", app_key), q)

    async def approved_signatures(self, account_id: int) -> frozenset[str]:
        return await self._cached(("signatures", account_id), lambda tx: store.approved_signature_names(tx, account_id))

    async def template(self, account_id: int, template_id: int) -> Template | None:
        def q(tx: Tx) -> Template | None:
            r = store.template_row(tx, template_id, account_id)
            if r is None:
                return None
            return Template(int(r[0]), int(r[1]), r[2], r[3], r[4], orjson.loads(r[5] or "{}"), r[6])

        return await self._cached(("template", account_id, template_id), q)


# -- the use cases ----------------------------------------------------------------------------------------


class Accounts(UseCase):
    """Creating accounts and managing their API keys."""

    def __init__(
        self,
        db: Database,
        directory: Directory,
        on_policy: Callable[[Tx, int, dict[str, Any]], Any] | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(db, on_change or directory.invalidate)
        self.directory = directory
        self.box = directory.box
        self._on_policy = on_policy  # compliance: write account policy changes (e.g. the 24-hour permit)

    async def create(
        self,
        actor: Actor,
        name: str,
        signature: str,
        balance_li: int,
        price_li: int,
        callback_url: str | None = None,
        allow_free_text: bool = True,
        permit_24h: bool = False,
    ) -> dict[str, Any]:
        """Account + approved signature + opening top-up + one API key (its secret shown once)."""
        actor.require("accounts.write")

        def job(tx: Tx) -> dict[str, Any]:
            out = create_account(tx, name, signature, balance_li, price_li, callback_url, allow_free_text, self.box)
            if permit_24h and self._on_policy is not None:
                self._on_policy(tx, out["account_id"], {"permit_24h": True})
            return out

        return await self.change(
            actor, "account.create", lambda out: f"account:{out['account_id']}", job,
            detail=lambda out: {"name": name, "signature": signature, "balance_li": balance_li, "price_li": price_li,
                                "app_key": out["app_key"], "permit_24h": permit_24h},
        )  # fmt: skip

    async def get(self, actor: Actor, account_id: int | None = None) -> dict[str, Any]:
        account_id = actor.account_for(account_id)
        r = await self.read(lambda tx: store.account_row(tx, account_id))
        if r is None:
            raise QxError("NOT_FOUND", "账户不存在")
        return {
            "account_id": r[0], "name": r[1], "status": r[2], "balance_li": r[3],
            "balance": li_to_yuan(int(r[3])), "price_li": r[4],
        }  # fmt: skip

    async def listing(self, actor: Actor) -> list[dict[str, Any]]:
        actor.require("accounts.read")
        rows = await self.read(store.list_accounts)
        keys = ("account_id", "name", "status", "balance_li", "price_li", "created_at")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    # -- keys ---------------------------------------------------------------------------------------
    def _own_key(self, tx: Tx, actor: Actor, app_key: str) -> int:
        account_id = store.key_account(tx, app_key)
        if account_id is None or (actor.is_customer and account_id != actor.account_id):
            raise QxError("APPKEY_INVALID")
        return account_id

    async def keys(self, actor: Actor, account_id: int | None = None) -> list[dict[str, Any]]:
        account_id = actor.account_for(account_id)
        return [_key_dict(r) for r in await self.read(lambda tx: store.list_keys(tx, account_id))]

    async def send_test_event(self, actor: Actor, app_key: str) -> dict[str, Any]:
        """Queue a ``{"type": "test"}`` event for the key's callback URL (the 推送测试 button): the webhook
        worker delivers it like a receipt — signed with the key, retried with backoff — so the customer
        checks their endpoint and signature verification end to end. A console user needs ``console.keys``."""
        if actor.is_customer and actor.role is not None:
            actor.require("console.keys")
        elif not actor.is_customer:
            actor.require("accounts.write")

        def job(tx: Tx) -> dict[str, Any]:
            row = store.key_callback(tx, app_key)
            if row is None or (actor.is_customer and row[1] != actor.account_id):
                raise QxError("APPKEY_INVALID")
            key_id, account_id, url, status = row
            if status != "active":
                raise QxError("APPKEY_INVALID", "密钥已停用")
            if not url:
                raise QxError("INVALID_REQUEST", "请先设置回调地址")
            now = now_ms()
            event = {"type": "test", "app_key": app_key, "message": "这是一条来自企信的推送测试事件", "sent_at": now}
            outbox.insert_events(tx, [(account_id, key_id, url, orjson.dumps(event).decode(), now, now)])
            return {"app_key": app_key, "callback_url": url, "sent_at": now}

        return await self.change(actor, "key.test_event", f"key:{app_key}", job)

    async def set_callback(self, actor: Actor, app_key: str, url: str | None) -> dict[str, Any]:
        if url and not url.startswith(("http://", "https://")):
            raise QxError("INVALID_REQUEST", "推送地址须以 http:// 或 https:// 开头")
        if not actor.is_customer:
            actor.require("accounts.write")

        def job(tx: Tx) -> dict[str, Any]:
            self._own_key(tx, actor, app_key)
            store.update_key(tx, app_key, "callback_url", url or None)
            return {"app_key": app_key, "callback_url": url or None}

        return await self.change(actor, "key.callback", f"key:{app_key}", job)

    async def set_ip_allowlist(self, actor: Actor, app_key: str, ips: list[str]) -> dict[str, Any]:
        import ipaddress

        for entry in ips:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError as e:
                raise QxError("INVALID_REQUEST", f"不是合法的 IP 或网段：{entry}") from e
        if not actor.is_customer:
            actor.require("accounts.write")

        def job(tx: Tx) -> dict[str, Any]:
            self._own_key(tx, actor, app_key)
            store.update_key(tx, app_key, "ip_allowlist", ",".join(ips) or None)
            return {"app_key": app_key, "ip_allowlist": ips}

        return await self.change(actor, "key.allow_ip", f"key:{app_key}", job)

    async def create_key(self, actor: Actor, account_id: int | None = None) -> dict[str, Any]:
        """A further API key for the account (its secret shown once)."""
        account_id = actor.account_for(account_id, "accounts.write")

        def job(tx: Tx) -> dict[str, Any]:
            if not store.account_exists(tx, account_id):
                raise QxError("NOT_FOUND", "账户不存在")
            app_key, secret = issue_key(tx, account_id, box=self.box)
            return {"account_id": account_id, "app_key": app_key, "app_secret": secret}

        return await self.change(actor, "key.create", lambda out: f"key:{out['app_key']}", job)

    async def rotate_key(self, actor: Actor, app_key: str) -> dict[str, Any]:
        """A new secret for the key (shown once); the old one stops working at once."""
        if not actor.is_customer:
            actor.require("accounts.write")

        def job(tx: Tx) -> dict[str, Any]:
            self._own_key(tx, actor, app_key)
            secret = secrets.token_urlsafe(32)
            store.update_key(tx, app_key, "app_secret", self.box.seal(secret) if self.box else secret)
            return {"app_key": app_key, "app_secret": secret}

        return await self.change(actor, "key.rotate", f"key:{app_key}", job)

    async def set_key_status(self, actor: Actor, app_key: str, enabled: bool) -> dict[str, Any]:
        """Disable (or re-enable) a key: a disabled key no longer authenticates."""
        if not actor.is_customer:
            actor.require("accounts.write")

        def job(tx: Tx) -> dict[str, Any]:
            self._own_key(tx, actor, app_key)
            store.update_key(tx, app_key, "status", "active" if enabled else "disabled")
            return {"app_key": app_key, "status": "active" if enabled else "disabled"}

        return await self.change(actor, "key.enable" if enabled else "key.disable", f"key:{app_key}", job)


class _Reviewed(UseCase):
    """What signatures and templates share: staff review (approve / reject with a reason) and listings
    (a customer sees its own; staff, with the review area, any account's)."""

    table = ""  # "signatures" | "templates"

    def _rows(self, tx: Tx, account_id: int | None, status: str | None) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def review(self, actor: Actor, item_id: int, approve: bool, reason: str | None = None) -> dict[str, Any]:
        actor.require("review")
        t = self.table
        action = f"{t}.approve" if approve else f"{t}.reject"
        await self.change(actor, action, f"{t}:{item_id}", lambda tx: review(tx, t, item_id, approve, reason))
        return {"id": item_id, "status": "approved" if approve else "rejected"} | (
            {} if approve else {"reason": reason}
        )

    async def listing(
        self, actor: Actor, account_id: int | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        if actor.is_customer:
            account_id = actor.account_id
        else:
            actor.require("review")
        return await self.read(lambda tx: self._rows(tx, account_id, status))

    def _owned_status(self, tx: Tx, actor: Actor, item_id: int) -> str:
        """The item's review status; NOT_FOUND unless it is the customer's own (staff: any account)."""
        status = store.reviewed_status(tx, self.table, item_id, actor.account_id if actor.is_customer else None)
        if status is None:
            raise QxError("NOT_FOUND")
        return status

    async def withdraw(self, actor: Actor, item_id: int) -> dict[str, Any]:
        """Delete a signature or template (any status): it can no longer be used to send. Messages sent
        with it keep their text; a signature's documents are kept as evidence."""
        if not actor.is_customer:
            actor.require("accounts.write")
        t = self.table

        def job(tx: Tx) -> dict[str, Any]:
            self._owned_status(tx, actor, item_id)
            store.delete_reviewed(tx, t, item_id)
            return {"id": item_id, "deleted": True}

        return await self.change(actor, f"{t}.delete", f"{t}:{item_id}", job)

    async def _resubmit(self, actor: Actor, item_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        """A rejected application amended and back to review (``pending``); anything else: CONFLICT."""
        if not actor.is_customer:
            actor.require("accounts.write")
        t = self.table

        def job(tx: Tx) -> dict[str, Any]:
            if self._owned_status(tx, actor, item_id) != "rejected":
                raise QxError("CONFLICT", "只有审核未通过的申请可以修改")
            store.resubmit(tx, t, item_id, changes | {"reason": None})
            return {"id": item_id, "status": "pending"}

        return await self.change(actor, f"{t}.modify", f"{t}:{item_id}", job)


class Signatures(_Reviewed):
    """Signature applications (customer or staff for a customer) and their review (staff)."""

    table = "signatures"

    def __init__(self, db: Database, directory: Directory, on_apply: Callable[[Tx, int, int, str], None]) -> None:
        super().__init__(db, directory.invalidate)
        self._on_apply = on_apply  # compliance: record the application's purpose (documents)

    async def apply(self, actor: Actor, name: str, purpose: str = "", account_id: int | None = None) -> dict[str, Any]:
        account_id = actor.account_for(account_id, "accounts.write")
        if not isinstance(name, str):
            raise QxError("INVALID_REQUEST", "字段 name 类型错误，应为 str")
        _check_signature_name(name)

        def job(tx: Tx) -> dict[str, Any]:
            sid = add_signature(tx, account_id, name)
            self._on_apply(tx, account_id, sid, purpose)
            return {"id": sid, "account_id": account_id, "name": name, "status": "pending"}

        return await self.change(actor, "signature.apply", lambda out: f"signature:{out['id']}", job)

    def _rows(self, tx: Tx, account_id: int | None, status: str | None) -> list[dict[str, Any]]:
        return [_signature_dict(r) for r in store.list_signatures(tx, account_id, status)]

    async def modify(self, actor: Actor, signature_id: int) -> dict[str, Any]:
        """Resubmit a rejected signature for review (its name and purpose stay; documents may be added
        through the documents route before)."""
        return await self._resubmit(actor, signature_id, {})


class Templates(_Reviewed):
    """Template applications and their review; the review rules run on every application."""

    table = "templates"

    def __init__(self, db: Database, directory: Directory, checker: Callable[[], ContentChecker | None]) -> None:
        super().__init__(db, directory.invalidate)
        self._checker = checker  # the current lexicon's content checker (compliance)

    async def apply(
        self,
        actor: Actor,
        name: str,
        category: str,
        content: str,
        variables: dict[str, Any] | None = None,
        account_id: int | None = None,
    ) -> dict[str, Any]:
        account_id = actor.account_for(account_id, "accounts.write")
        variables = {} if variables is None else variables
        if not name.strip():
            raise QxError("INVALID_REQUEST", "模板名称不能为空")
        check_template(self._checker(), category, content, variables)

        def job(tx: Tx) -> dict[str, Any]:
            tid = add_template(tx, account_id, name, category, content, variables)
            return {"id": str(tid), "account_id": account_id, "name": name, "status": "pending"}

        return await self.change(actor, "template.apply", lambda out: f"template:{out['id']}", job)

    async def get(self, actor: Actor, template_id: int) -> dict[str, Any]:
        account_id = actor.account_id if actor.is_customer else None
        if not actor.is_customer:
            actor.require("review")
        r = await self.read(lambda tx: store.template_row(tx, template_id, account_id))
        if r is None:
            raise QxError("NOT_FOUND", "模板不存在")
        out = template_dict(r)
        if actor.is_customer:
            out.pop("account_id")
        return out

    def _rows(self, tx: Tx, account_id: int | None, status: str | None) -> list[dict[str, Any]]:
        return [template_dict(r) for r in store.list_templates(tx, account_id, status)]

    async def modify(
        self, actor: Actor, template_id: int, name: str, category: str, content: str, variables: dict[str, Any]
    ) -> dict[str, Any]:
        """Amend a rejected template and resubmit it: the review rules run again, as on application."""
        if not name.strip():
            raise QxError("INVALID_REQUEST", "模板名称不能为空")
        check_template(self._checker(), category, content, variables)
        changes = {
            "name": name,
            "category": category,
            "content": content,
            "variables": orjson.dumps(variables).decode(),
        }
        out = await self._resubmit(actor, template_id, changes)
        return {"id": str(out["id"]), "status": out["status"]}
