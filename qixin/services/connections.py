"""Direct connections (账号直连): the logins a customer's own SMPP, CMPP, SGIP or SMGP client binds with.

Rules:
- A direct connection is data, per account: protocol (``smpp`` | ``cmpp`` | ``sgip`` | ``smgp``), login
  (SMPP system_id, CMPP SP id, SGIP Login Name, SMGP ClientID — unique per protocol), secret, allowed IP
  ranges, maximum concurrent connections, TPS cap, the service code shown as the source address (plus the
  account's extension code), the signature it uses (empty: the 【…】 in the text), the message type it
  sends and, for SGIP, ``deliver_to``: host:port of the customer's own listener, where the port connects
  back to send Report and MO (SGIP has the SMG call the SP for those).
- The secret is write-only: sealed with the platform's SecretBox (CMPP's MD5 authenticator needs the
  shared secret itself, so a one-way hash cannot do), never returned, never logged or audited.
- Staff (area ``channels``) and the CLI manage connections; every change is audited (``UseCase.change``)
  and running ports see it within the directory's TTL (``ConnectionDirectory``).
- A bound connection acts for its account through a key-like principal (``Connection.principal``):
  an ``ApiKey`` with the account's status, price and free-text right, so a message from a port is
  accepted by exactly the same use case as one from POST /v1/sms (``services/accept.py``).
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from typing import Any

from qixin.domain.secretbox import SecretBox
from qixin.errors import QxError
from qixin.services.accounts import MESSAGE_TYPES, ApiKey
from qixin.services.actor import Actor, UseCase
from qixin.services.cache import TtlCache
from qixin.services.channels import extension_of
from qixin.store import accounts as account_store
from qixin.store import channels as channel_store
from qixin.store import connections as store
from qixin.store.db import Database, Tx, now_ms

log = logging.getLogger("qixin.connections")

PROTOCOLS = ("smpp", "cmpp", "sgip", "smgp")
# SMPP system_id C-Octet String(16); CMPP Source_Addr Octet String(6); SGIP Login Name 16; SMGP ClientID 8
LOGIN_MAX = {"smpp": 15, "cmpp": 6, "sgip": 16, "smgp": 8}
SECRET_MAX = {"smpp": 8, "cmpp": 32, "sgip": 16, "smgp": 32}  # SMPP password C-Octet String(9); SGIP 16
EDITABLE = (
    "secret", "ip_allowlist", "max_connections", "tps", "daily_cap", "service_code", "signature", "msg_type", "status",
    "deliver_to",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Connection:
    id: int
    account_id: int
    protocol: str
    login: str
    secret: str  # in clear, opened from the sealed column (only the ports hold it)
    ip_allowlist: tuple[str, ...]
    max_connections: int
    tps: int
    service_code: str
    signature: str
    msg_type: str
    status: str
    extension: str
    account_status: str
    price_li: int
    allow_free_text: bool
    key_id: int
    daily_cap: int = 0  # messages per Beijing day; 0 = none
    deliver_to: str = ""  # SGIP: "host:port" of the customer's own listener, where receipts and MO go

    @property
    def principal(self) -> ApiKey:
        """The key-like identity the accept use case takes for this connection."""
        return ApiKey(
            self.key_id, self.account_id, f"{self.protocol}:{self.login}", "", None, self.ip_allowlist,
            self.account_status, self.price_li, self.allow_free_text,
        )  # fmt: skip

    def actor(self, ip: str | None = None) -> Actor:
        return Actor.customer(self.account_id, f"{self.protocol}:{self.login}", ip)

    @property
    def source_address(self) -> str:
        """Service code + the account's extension: the source address of its messages and of its MO."""
        return self.service_code + self.extension

    def ip_allowed(self, ip: str | None) -> bool:
        return ip_in(ip, self.ip_allowlist)


def ip_in(ip: str | None, allowlist: tuple[str, ...]) -> bool:
    """Whether ``ip`` is in one of the CIDRs (an empty list allows any)."""
    if not allowlist:
        return True
    if not ip:
        return False
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    for net in allowlist:
        try:
            if addr in ipaddress.ip_network(net, strict=False):
                return True
        except ValueError:
            continue
    return False


def _public(r: Any) -> dict[str, Any]:
    out = dict(zip(store.COLUMNS, r, strict=False))
    out.pop("secret", None)
    out["ip_allowlist"] = [x for x in (out["ip_allowlist"] or "").split(",") if x]
    return out


def _host_port(value: str) -> tuple[str, int] | None:
    """``host:port`` split (None when it is not one)."""
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or len(value) > 64:
        return None
    return host.strip("[]"), int(port)


def _check(values: dict[str, Any], protocol: str) -> dict[str, Any]:
    """Validated column values (the secret still in clear)."""
    out: dict[str, Any] = {}
    for k, v in values.items():
        if v is None:
            continue
        if k == "secret":
            if not isinstance(v, str) or not v or len(v) > SECRET_MAX[protocol]:
                raise QxError("INVALID_REQUEST", f"密码须为 1–{SECRET_MAX[protocol]} 个字符")
        elif k == "ip_allowlist":
            nets = [str(x).strip() for x in (v if isinstance(v, list | tuple) else str(v).split(",")) if str(x).strip()]
            for n in nets:
                try:
                    ipaddress.ip_network(n, strict=False)
                except ValueError as e:
                    raise QxError("INVALID_REQUEST", f"IP 网段格式错误：{n}") from e
            v = ",".join(nets)
        elif k in ("max_connections", "tps", "daily_cap"):
            top = 100_000_000 if k == "daily_cap" else 100_000
            if not isinstance(v, int) or isinstance(v, bool) or v < (1 if k == "max_connections" else 0) or v > top:
                raise QxError("INVALID_REQUEST", f"{k} 超出范围")
        elif k == "service_code":
            if not isinstance(v, str) or not (v == "" or (v.isdigit() and len(v) <= 21)):
                raise QxError("INVALID_REQUEST", "服务代码须为不超过 21 位的数字")
        elif k == "signature":
            if not isinstance(v, str) or len(v) > 30:
                raise QxError("INVALID_REQUEST", "签名过长")
            v = v.strip().removeprefix("【").removesuffix("】")
        elif k == "deliver_to":
            if not isinstance(v, str) or (v and not _host_port(v)):
                raise QxError("INVALID_REQUEST", "回送地址须为 主机:端口")
        elif k == "msg_type":
            if v not in MESSAGE_TYPES:
                raise QxError("TYPE_INVALID")
        elif k == "status":
            if v not in ("active", "disabled"):
                raise QxError("INVALID_REQUEST", "状态须为 active 或 disabled")
        else:
            raise QxError("INVALID_REQUEST", f"未知字段 {k}")
        out[k] = v
    return out


class Connections(UseCase):
    """Creating, listing, changing and removing direct connections."""

    def __init__(self, db: Database, box: SecretBox | None, on_change: Any = None) -> None:
        super().__init__(db, on_change)
        self.box = box

    def _seal(self, secret: str) -> str:
        return self.box.seal(secret) if self.box else secret

    async def add(
        self,
        actor: Actor,
        account_id: int,
        protocol: str,
        login: str,
        secret: str,
        *,
        ip_allowlist: list[str] | None = None,
        max_connections: int = 4,
        tps: int = 0,
        daily_cap: int = 0,
        service_code: str = "",
        signature: str = "",
        msg_type: str = "notification",
        deliver_to: str = "",
        port: int | None = None,
    ) -> dict[str, Any]:
        """A new login for ``account_id``; answers its id, login, protocol and port (never the secret)."""
        actor.require("channels")
        if protocol not in PROTOCOLS:
            raise QxError("INVALID_REQUEST", "协议须为 smpp、cmpp、sgip 或 smgp")
        if not isinstance(login, str) or not login or len(login) > LOGIN_MAX[protocol] or not login.isprintable():
            raise QxError("INVALID_REQUEST", f"登录名须为 1–{LOGIN_MAX[protocol]} 个可见字符")
        if protocol == "cmpp" and not login.isdigit():
            raise QxError("INVALID_REQUEST", "CMPP 企业代码（SP ID）须为数字")
        values = _check(
            {"secret": secret, "ip_allowlist": ip_allowlist or [], "max_connections": max_connections, "tps": tps,
             "daily_cap": daily_cap, "service_code": service_code, "signature": signature, "msg_type": msg_type,
             "deliver_to": deliver_to},
            protocol,
        )  # fmt: skip

        def job(tx: Tx) -> dict[str, Any]:
            if not account_store.account_exists(tx, account_id):
                raise QxError("NOT_FOUND", "账户不存在")
            if store.login_taken(tx, protocol, login):
                raise QxError("CONFLICT", f"{protocol} 登录名 {login} 已存在")
            extension = extension_of(tx, account_id)
            row_values = dict(values, secret=self._seal(values["secret"]), account_id=account_id, protocol=protocol,
                              login=login, status="active")  # fmt: skip
            cid = store.insert(tx, row_values, now_ms())
            return {"id": cid, "account_id": account_id, "login": login, "protocol": protocol, "port": port,
                    "extension": extension}  # fmt: skip

        return await self.change(
            actor, "connection.add", lambda out: f"connection:{out['id']}", job,
            detail=lambda out: dict(out, **{k: v for k, v in values.items() if k != "secret"}),
        )  # fmt: skip

    async def listing(self, actor: Actor, account_id: int | None = None) -> list[dict[str, Any]]:
        if actor.is_customer:
            account_id = actor.account_for(account_id)
        else:
            actor.require("accounts.read")
        return [_public(r) for r in await self.read(lambda tx: store.rows(tx, account_id))]

    async def get(self, actor: Actor, connection_id: int) -> dict[str, Any]:
        r = await self.read(lambda tx: store.row(tx, connection_id))
        if r is None or (actor.is_customer and int(r[1]) != actor.account_id):
            raise QxError("NOT_FOUND")
        if not actor.is_customer:
            actor.require("accounts.read")
        return _public(r)

    async def set(self, actor: Actor, connection_id: int, **changes: Any) -> dict[str, Any]:
        actor.require("channels")
        bad = set(changes) - set(EDITABLE)
        if bad:
            raise QxError("INVALID_REQUEST", f"不可修改的字段：{', '.join(sorted(bad))}")

        def job(tx: Tx) -> dict[str, Any]:
            r = store.row(tx, connection_id)
            if r is None:
                raise QxError("NOT_FOUND")
            values = _check(changes, r[2])
            if not values:
                raise QxError("INVALID_REQUEST", "没有要修改的字段")
            if "secret" in values:
                values["secret"] = self._seal(values["secret"])
            store.update(tx, connection_id, values, now_ms())
            return _public(store.row(tx, connection_id))

        return await self.change(
            actor, "connection.set", f"connection:{connection_id}", job,
            detail=lambda out: {"changed": sorted(k for k in changes if changes[k] is not None)},
        )  # fmt: skip

    async def remove(self, actor: Actor, connection_id: int) -> None:
        actor.require("channels")

        def job(tx: Tx) -> dict[str, Any]:
            r = store.row(tx, connection_id)
            if r is None:
                raise QxError("NOT_FOUND")
            store.delete(tx, connection_id)
            return {"login": r[3], "protocol": r[2], "account_id": r[1]}

        await self.change(actor, "connection.remove", f"connection:{connection_id}", job)


class ConnectionDirectory:
    """The ports' lookups: a login → its connection and account (short TTL, like the API's directory)."""

    def __init__(self, db: Database, box: SecretBox | None, ttl: float = 3.0) -> None:
        self.db = db
        self.box = box
        self._cache = TtlCache(ttl)

    def invalidate(self) -> None:
        self._cache.clear()

    async def find(self, protocol: str, login: str) -> Connection | None:
        def q(tx: Tx) -> Connection | None:
            r = store.login_row(tx, protocol, login)
            if r is None:
                return None
            try:
                secret = self.box.open(r[4]) if self.box else r[4]
            except Exception:
                log.error("secret of %s login %s cannot be opened: QIXIN_SECRET_KEY differs", protocol, login)
                return None
            ext = channel_store.account_extension(tx, int(r[1])) or ""
            ips = tuple(x for x in (r[5] or "").split(",") if x)
            return Connection(
                int(r[0]), int(r[1]), r[2], r[3], secret, ips, int(r[6]), int(r[7]), r[8], r[9], r[10], r[11],
                ext, r[16], int(r[17]), bool(r[18]), int(r[19]), int(r[14]), r[15] or "",
            )  # fmt: skip

        return await self._cache.get_or_load(("login", protocol, login), lambda: self.db.read(q))
