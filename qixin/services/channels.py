"""Channels as data: carrier gateway connections that staff manage without a restart.

Rules:
- A channel row says everything a connector needs (protocol, endpoint, credentials, service code,
  protocol options, TPS cap, window, connections) and what it may carry (carriers, message types,
  dedicated accounts), with a priority (lower first) and a weight among equals.
- Every change bumps ``version``; the channel manager restarts exactly the connectors whose version
  changed and stops those disabled or deleted.
- Extension codes (扩展码): each account gets a short numeric code, unique platform-wide, appended to
  the channel's service code as the source address of its messages; an MO sent to service code +
  code belongs to that account.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from qixin.domain.numbers import mask
from qixin.errors import QxError
from qixin.services import portability
from qixin.services.actor import Actor, UseCase
from qixin.services.portability import PortedNumbers
from qixin.store import channels as store
from qixin.store import portability as ported_store
from qixin.store.db import Database, Tx, now_ms

PROTOCOLS = ("smpp", "cmpp2", "cmpp3", "sgip", "smgp")
CARRIER_CODES = ("cmcc", "cucc", "ctcc", "cbn", "intl", "unknown")
MSG_TYPES = ("verification", "notification", "marketing")
COLUMNS = store.COLUMNS
EDITABLE = (frozenset(COLUMNS) | {"window"}) - {"id", "version", "embedded", "window_size"}


# an option whose name contains one of these holds a credential (e.g. SGIP's smg_password): write-only
SECRET_OPTION_WORDS = ("password", "passwd", "pwd", "secret", "token", "credential", "auth", "key")


def is_secret_option(name: str) -> bool:
    n = name.lower()
    return any(w in n for w in SECRET_OPTION_WORDS)


def public_options(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` without the values of secret-like keys (those are listed by name in ``secret_options``)."""
    return {k: v for k, v in options.items() if not is_secret_option(k)}


def redacted(values: dict[str, Any]) -> dict[str, Any]:
    """Channel field values (a create/update request) fit for a log or the audit: no secret, no secret option."""
    out = {k: v for k, v in values.items() if k != "secret"}
    if isinstance(out.get("options"), dict):
        out["options"] = public_options(out["options"])
    return out


def _split(text: str) -> frozenset[str]:
    return frozenset(x.strip() for x in (text or "").split(",") if x.strip())


@dataclass(frozen=True, slots=True)
class Channel:
    id: int
    name: str
    protocol: str
    host: str
    port: int
    username: str
    secret: str
    service_code: str
    options: dict[str, Any]
    tps: int
    window: int
    connections: int
    carriers: frozenset[str]
    msg_types: frozenset[str]
    accounts: frozenset[int]
    priority: int
    weight: int
    enabled: bool
    embedded: bool
    version: int

    @classmethod
    def from_row(cls, r: tuple[Any, ...]) -> Channel:
        d = dict(zip(COLUMNS, r, strict=True))
        return cls(
            id=int(d["id"]), name=d["name"], protocol=d["protocol"], host=d["host"], port=int(d["port"]),
            username=d["username"], secret=d["secret"], service_code=d["service_code"] or "",
            options=orjson.loads(d["options"] or "{}"), tps=int(d["tps"]), window=int(d["window_size"]),
            connections=int(d["connections"]), carriers=_split(d["carriers"]), msg_types=_split(d["msg_types"]),
            accounts=frozenset(int(x) for x in _split(d["accounts"])), priority=int(d["priority"]),
            weight=int(d["weight"]), enabled=bool(d["enabled"]), embedded=bool(d["embedded"]),
            version=int(d["version"]),
        )  # fmt: skip

    def public(self) -> dict[str, Any]:
        """The channel as staff, exports and the audit log see it: secrets are write-only, so neither
        ``secret`` nor the value of a secret-like option (``smg_password`` …) is in it — only the names
        of the secret options that are set (``secret_options``)."""
        return {
            "id": self.id, "name": self.name, "protocol": self.protocol, "host": self.host, "port": self.port,
            "username": self.username, "service_code": self.service_code, "options": public_options(self.options),
            "secret_options": sorted(k for k in self.options if is_secret_option(k)), "tps": self.tps,
            "window": self.window, "connections": self.connections, "carriers": sorted(self.carriers),
            "msg_types": sorted(self.msg_types), "accounts": sorted(self.accounts), "priority": self.priority,
            "weight": self.weight, "enabled": self.enabled, "embedded": self.embedded, "version": self.version,
        }  # fmt: skip


def _clean(values: dict[str, Any], creating: bool) -> dict[str, Any]:
    unknown = set(values) - EDITABLE
    if unknown:
        raise QxError("INVALID_REQUEST", f"未知的通道字段：{', '.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    for k, v in values.items():
        if k in ("carriers", "msg_types", "accounts") and isinstance(v, list | tuple | set | frozenset):
            v = ",".join(str(x) for x in v)
        if k == "options":
            if not isinstance(v, dict):
                raise QxError("INVALID_REQUEST", "options 必须是对象")
            v = orjson.dumps(v).decode()
        out[k] = v
    if creating:
        for need in ("name", "protocol", "host", "port", "username", "secret"):
            if not out.get(need) and out.get(need) != 0:
                raise QxError("INVALID_REQUEST", f"缺少通道字段 {need}")
    if "protocol" in out and out["protocol"] not in PROTOCOLS:
        raise QxError("INVALID_REQUEST", f"协议必须是 {', '.join(PROTOCOLS)} 之一")
    for k in ("port", "tps", "window", "connections", "priority", "weight"):
        if k in out:
            try:
                out[k] = int(out[k])
            except (TypeError, ValueError) as e:
                raise QxError("INVALID_REQUEST", f"{k} 必须是整数") from e
    if "port" in out and not 0 < out["port"] < 65536:
        raise QxError("INVALID_REQUEST", "端口必须在 1–65535 之间")
    if "window" in out and not 1 <= out["window"] <= 4096:
        raise QxError("INVALID_REQUEST", "窗口必须在 1–4096 之间")
    if "connections" in out and not 1 <= out["connections"] <= 64:
        raise QxError("INVALID_REQUEST", "连接数必须在 1–64 之间")
    if "tps" in out and out["tps"] < 0:
        raise QxError("INVALID_REQUEST", "TPS 不能为负")
    bad = _split(out.get("carriers", "")) - set(CARRIER_CODES)
    if bad:
        raise QxError("INVALID_REQUEST", f"未知运营商：{', '.join(sorted(bad))}")
    bad = _split(out.get("msg_types", "")) - set(MSG_TYPES)
    if bad:
        raise QxError("INVALID_REQUEST", f"未知短信类型：{', '.join(sorted(bad))}")
    if "accounts" in out and not all(x.isdigit() for x in _split(out["accounts"])):
        raise QxError("INVALID_REQUEST", "accounts 必须是账户 ID 列表")
    if "enabled" in out:
        out["enabled"] = bool(out["enabled"])
    if "window" in out:  # "window" is reserved in SQL: the column is window_size
        out["window_size"] = out.pop("window")
    return out


def create_channel(tx: Tx, values: dict[str, Any], embedded: bool = False) -> Channel:
    v = _clean(values, creating=True)
    if store.name_taken(tx, v["name"]):
        raise QxError("CONFLICT", f"通道 {v['name']} 已存在")
    now = now_ms()
    v.update(embedded=embedded, created_at=now, updated_at=now)
    return get_channel(tx, store.insert(tx, v))


def update_channel(tx: Tx, channel_id: int, values: dict[str, Any]) -> Channel:
    v = _clean(values, creating=False)
    if not v:
        return get_channel(tx, channel_id)
    if not store.update(tx, channel_id, v, now_ms()):
        raise QxError("NOT_FOUND", "通道不存在")
    return get_channel(tx, channel_id)


def delete_channel(tx: Tx, channel_id: int) -> None:
    if not store.delete(tx, channel_id):
        raise QxError("NOT_FOUND", "通道不存在")


def get_channel(tx: Tx, channel_id: int) -> Channel:
    r = store.by_id(tx, channel_id)
    if r is None:
        raise QxError("NOT_FOUND", "通道不存在")
    return Channel.from_row(r)


def find_channel(tx: Tx, ref: str) -> Channel:
    """By id or by name."""
    r = store.by_name(tx, ref)
    if r is None and ref.isdigit():
        return get_channel(tx, int(ref))
    if r is None:
        raise QxError("NOT_FOUND", f"通道 {ref} 不存在")
    return Channel.from_row(r)


def list_channels(tx: Tx) -> list[Channel]:
    return [Channel.from_row(r) for r in store.all_rows(tx)]


# -- extension codes ----------------------------------------------------------------------------------


def extension_of(tx: Tx, account_id: int) -> str:
    """The account's extension code, allocated on first use (4 digits, then 5, …)."""
    existing = store.account_extension(tx, account_id)
    if existing:
        return existing
    code = f"{account_id:04d}"
    while store.extension_taken(tx, code):
        code = "9" + code  # collision with a hand-assigned code: lengthen
    store.insert_extension(tx, code, account_id, now_ms())
    return code


def account_of_destination(tx: Tx, destination: str, service_codes: list[str]) -> int | None:
    """Which account an MO sent to ``destination`` belongs to (longest service code, then the extension)."""
    for sc in sorted(service_codes, key=len, reverse=True):
        if destination.startswith(sc):
            rest = destination[len(sc) :]
            # the longest registered extension that prefixes the rest (customers may append sub-codes)
            prefixes = [rest[:n] for n in range(len(rest), 0, -1)]
            found = store.account_of_extensions(tx, prefixes)  # one query for every prefix
            return next((found[p] for p in prefixes if p in found), None)
    return None


def upsert_embedded_channel(tx: Tx, values: dict[str, Any]) -> None:
    """Create the channel row of a built-in simulator (or of the QIXIN_SMPP_* endpoint), or point the
    existing row at this run's endpoint — only if it moved: a version bump makes every running
    dispatcher reconnect. A row staff have taken over (no longer ``embedded``) is left alone."""
    try:
        current = find_channel(tx, values["name"])
    except QxError:
        try:
            create_channel(tx, values, embedded=True)
            return
        except QxError as e:  # another process created it since our look (and committed): update that row
            if e.code != "CONFLICT":
                raise
            current = find_channel(tx, values["name"])
    if not current.embedded:
        return
    keys = ("host", "port", "username", "secret", "options")
    changes = {k: values.get(k, {} if k == "options" else None) for k in keys}
    if changes != {k: getattr(current, k) for k in keys}:
        update_channel(tx, current.id, changes)


class ChannelDesk(UseCase):
    """Channels and ported numbers as staff use cases (area ``channels``: ops, admin; the CLI). Each
    change is audited in its transaction and then applied to the running channels at once (``resync``:
    the channel manager's sync, when this process runs it; other processes apply it by version)."""

    def __init__(
        self, db: Database, ported: PortedNumbers, resync: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        super().__init__(db)
        self.ported = ported
        self._resync = resync

    async def _applied(self) -> None:
        if self._resync is not None:
            await self._resync()

    async def listing(self, actor: Actor) -> list[dict[str, Any]]:
        actor.require("channels")
        return [c.public() for c in await self.read(list_channels)]

    async def create(self, actor: Actor, values: dict[str, Any]) -> dict[str, Any]:
        actor.require("channels")
        out = await self.change(actor, "channel.create", f"channel:{values.get('name')}",
                                lambda tx: create_channel(tx, values).public())  # fmt: skip
        await self._applied()
        return out

    async def update(
        self, actor: Actor, ref: str | int, values: dict[str, Any], keep_secret_options: bool = False
    ) -> dict[str, Any]:
        """``ref``: the channel's id, or (a string) its name or id. With ``keep_secret_options`` (the
        console, which never shows them), new ``options`` keep the secret options already set unless they
        name them again."""
        actor.require("channels")

        def job(tx: Tx) -> dict[str, Any]:
            channel = get_channel(tx, ref) if isinstance(ref, int) else find_channel(tx, ref)
            changes = values
            if keep_secret_options and isinstance(values.get("options"), dict):
                kept = {k: v for k, v in channel.options.items() if is_secret_option(k)}
                changes = values | {"options": kept | values["options"]}
            return update_channel(tx, channel.id, changes).public()

        out = await self.change(actor, "channel.update", f"channel:{ref}", job)
        await self._applied()
        return out

    async def delete(self, actor: Actor, channel_id: int) -> dict[str, Any]:
        actor.require("channels")
        await self.change(actor, "channel.delete", f"channel:{channel_id}", lambda tx: delete_channel(tx, channel_id))
        await self._applied()
        return {"id": channel_id, "deleted": True}

    async def ported_numbers(self, actor: Actor, limit: int = 1000) -> list[dict[str, Any]]:
        actor.require("channels")
        rows = await self.read(lambda tx: ported_store.latest(tx, max(1, min(limit, 100_000))))
        return [{"number": mask(r[0]), "carrier": r[1], "learned_at": r[2]} for r in rows]

    async def import_ported(self, actor: Actor, items: list[dict[str, str]]) -> dict[str, Any]:
        actor.require("channels")
        out = await self.change(actor, "ported.import", "ported_numbers",
                                lambda tx: {"imported": portability.import_numbers(tx, items)})  # fmt: skip
        self.ported.invalidate()
        return out
