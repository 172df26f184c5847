"""Interception tests (闪测): send a draft to seed numbers over each eligible channel and report, per channel
and carrier, whether the campaign would get through — before it is sent.

Rules:
- Seeds: test phones per carrier that staff keep (``flash_seeds``; ``qixin numbers seed``). Without any
  (the embedded default) the built-in simulators' numbers stand in: one per carrier (``DEFAULT_SEEDS``).
- Eligible channels: enabled, carrying the draft's type, shared or dedicated to the account. Each gets
  the seeds of the carriers it carries (every carrier with seeds when it names none), as ONE ordinary
  send through the accept use case — compliance, pricing and the ledger apply: the test is charged as
  ordinary messages to the seeds — with every message pinned to that channel (``Outgoing.pin``: that
  channel or nowhere, no failover).
- The report per channel and carrier: each seed ``delivered`` (with latency = receipt − acceptance,
  ms), ``refused`` (the channel, the carrier or compliance refused it: the code says which), or
  ``no_receipt`` when nothing final came within ``timeout_seconds`` (default 120); ``pending`` until
  then. A channel ``carries`` the draft when every seed was delivered; ``status`` is ``done`` once no
  seed is pending. Seed numbers are shown masked to customers.
- Type: ``notification`` by default. A ``marketing`` test follows the marketing sending window and its
  one-identical-text-per-number-per-day limit, so it needs a seed per carrier per channel.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson

from qixin.domain.numbers import mask, normalize_cn_mobile, prefix_table
from qixin.errors import QxError
from qixin.ids import ids
from qixin.services.accept import TYPES, AcceptService
from qixin.services.accounts import ApiKey, Directory
from qixin.services.actor import Actor, UseCase
from qixin.services.channels import list_channels
from qixin.services.queries import parse_id
from qixin.store import flashtests as store
from qixin.store.db import Database, Tx, now_ms

DEFAULT_SEEDS: dict[str, tuple[str, ...]] = {
    "cmcc": ("13800138000",),
    "cucc": ("18612345678",),
    "ctcc": ("18912345678",),
    "cbn": ("19212345678",),
}
REFUSED = frozenset({"undelivered", "failed", "rejected", "cancelled"})


class FlashTests(UseCase):
    def __init__(self, db: Database, directory: Directory, accept: AcceptService) -> None:
        super().__init__(db)
        self.directory = directory
        self.accept = accept

    # -- seeds (staff) -----------------------------------------------------------------------------------

    async def seeds(self, actor: Actor) -> list[dict[str, Any]]:
        actor.require("channels")
        rows = await self.db.read(store.seeds)
        return [{"number": n, "carrier": c} for n, c in rows]

    async def add_seed(self, actor: Actor, number: str, note: str = "") -> dict[str, Any]:
        actor.require("channels")
        n = normalize_cn_mobile(number)
        if n is None:
            raise QxError("NUMBER_INVALID")
        carrier = prefix_table().carrier_of(n)

        def write(tx: Tx) -> dict[str, Any]:
            store.add_seed(tx, n, carrier, note, now_ms())
            return {"number": n, "carrier": carrier}

        return await self.change(actor, "flash.seed_add", f"seed:{mask(n)}", write, lambda _: {"carrier": carrier})

    async def remove_seed(self, actor: Actor, number: str) -> dict[str, Any]:
        actor.require("channels")
        n = normalize_cn_mobile(number) or number
        removed = await self.change(actor, "flash.seed_remove", f"seed:{mask(n)}", lambda tx: store.remove_seed(tx, n))
        if not removed:
            raise QxError("NOT_FOUND")
        return {"removed": removed}

    # -- tests -------------------------------------------------------------------------------------------

    async def _key(self, actor: Actor, account_id: int | None) -> ApiKey:
        acct = actor.account_for(account_id, "accounts.write")
        app_key = actor.id if actor.is_customer else await self.db.read(lambda tx: store.first_active_key(tx, acct))
        key = await self.directory.key(app_key) if app_key else None
        if key is None or key.account_id != acct:
            raise QxError("NOT_FOUND", "账户没有可用的 API 密钥")
        return key

    async def create(
        self, actor: Actor, content: Any, signature: Any, msg_type: Any = "notification", timeout_seconds: Any = 120,
        account_id: int | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Send the draft over every eligible channel to the seeds; answers the test id and what was sent."""
        key = await self._key(actor, account_id)
        if not isinstance(msg_type, str) or msg_type not in TYPES:
            raise QxError("TYPE_INVALID")
        if (
            isinstance(timeout_seconds, bool)
            or not isinstance(timeout_seconds, int)
            or not 5 <= timeout_seconds <= 86_400
        ):
            raise QxError("INVALID_REQUEST", "timeout_seconds 必须是 5–86400 之间的整数")
        channels, seed_rows = await self.db.read(lambda tx: (list_channels(tx), store.seeds(tx)))
        seeds: dict[str, list[str]] = {}
        for n, c in seed_rows:
            seeds.setdefault(c, []).append(n)
        if not seeds:
            seeds = {c: list(ns) for c, ns in DEFAULT_SEEDS.items()}
        plan: list[tuple[str, list[str]]] = []
        for ch in channels:
            if not ch.enabled or (ch.msg_types and msg_type not in ch.msg_types):
                continue
            if ch.accounts and key.account_id not in ch.accounts:
                continue
            carriers = sorted(ch.carriers) if ch.carriers else sorted(seeds)
            numbers = [n for c in carriers for n in seeds.get(c, [])]
            if numbers:
                plan.append((ch.name, numbers))
        if not plan:
            raise QxError("NO_ROUTE", "没有可用于闪测的通道或测试号码")
        test_id = ids.one()
        sent: list[tuple[int, str, int | None, str]] = []
        for channel, numbers in plan:
            body = {"to": numbers, "content": content, "signature": signature, "type": msg_type,
                    "out_id": f"flash:{test_id}"}  # fmt: skip
            try:
                out = await self.accept.accept(key, body, orjson.dumps(body), pin=channel)
            except QxError as e:
                if e.code == "NO_VALID_NUMBERS":
                    sent.append((test_id, channel, None, orjson.dumps(e.detail.get("rejected", [])).decode()))
                    continue
                if not sent:
                    raise  # the draft itself is refused (content, signature, balance …): nothing was sent
                # refused part-way (e.g. the balance ran out): the channels already sent are reported
                refused = [{"to": n, "code": e.code, "message": e.message} for n in numbers]
                sent.append((test_id, channel, None, orjson.dumps(refused).decode()))
            sent.append((test_id, channel, int(out["batch_id"]), orjson.dumps(out["rejected"]).decode()))
        now = now_ms()

        def write(tx: Tx) -> None:
            store.insert_test(tx, test_id, key.account_id, str(signature), str(content), msg_type,
                              timeout_seconds * 1000, now)  # fmt: skip
            store.insert_batches(tx, sent)

        await self.change(actor, "flash.create", f"flash:{test_id}", write,
                          lambda _: {"account_id": key.account_id, "channels": [c for c, _ in plan]})  # fmt: skip
        return {"id": str(test_id), "channels": [c for c, _ in plan], "status": "pending"}

    async def get(self, actor: Actor, test_id: str) -> dict[str, Any]:
        """The report: per channel and carrier, each seed's outcome and latency."""
        tid = parse_id(test_id)
        row = await self.db.read(lambda tx: store.test_row(tx, tid))
        if row is None or (actor.is_customer and int(row[1]) != actor.account_id):
            raise QxError("NOT_FOUND")
        if not actor.is_customer:
            actor.require("accounts.read")
        reveal = actor.may("numbers.read") and not actor.is_customer
        show = (lambda n: n) if reveal else mask
        _, account_id, signature, content, msg_type, timeout_ms, created_at = row
        batches = await self.db.read(lambda tx: store.batches(tx, tid))
        now = now_ms()
        channels: list[dict[str, Any]] = []
        pending = 0
        for channel, batch_id, rejected in batches:
            by_carrier: dict[str, list[dict[str, Any]]] = {}
            table = prefix_table()
            for r in orjson.loads(rejected):
                n = normalize_cn_mobile(r["to"]) or r["to"]
                by_carrier.setdefault(table.carrier_of(n), []).append(
                    {"number": show(n), "outcome": "refused", "code": r["code"], "latency_ms": None}
                )
            msgs = await self.db.read(functools.partial(store.batch_messages, batch_id=batch_id)) if batch_id else []
            for number, carrier, status, created, done, error_code, stat in msgs:
                latency = None
                if status == "delivered":
                    outcome, code, latency = "delivered", "", (int(done) - int(created)) if done else None
                elif status in REFUSED:
                    outcome, code = "refused", error_code or stat or status
                elif status == "expired":
                    outcome, code = "no_receipt", error_code or stat or "EXPIRED"
                elif now - int(created) > int(timeout_ms):
                    outcome, code = "no_receipt", ""
                else:
                    outcome, code = "pending", ""
                    pending += 1
                by_carrier.setdefault(carrier, []).append(
                    {"number": show(number), "outcome": outcome, "code": code, "latency_ms": latency}
                )
            carriers = []
            for carrier, seeds in sorted(by_carrier.items()):
                outcomes = {s["outcome"] for s in seeds}
                lat = [s["latency_ms"] for s in seeds if s["latency_ms"] is not None]
                carriers.append({
                    "carrier": carrier, "delivered": sum(s["outcome"] == "delivered" for s in seeds),
                    "refused": sum(s["outcome"] == "refused" for s in seeds),
                    "no_receipt": sum(s["outcome"] == "no_receipt" for s in seeds),
                    "pending": sum(s["outcome"] == "pending" for s in seeds),
                    "latency_ms": max(lat) if lat else None, "carries": outcomes == {"delivered"}, "seeds": seeds,
                })  # fmt: skip
            channels.append({
                "channel": channel, "batch_id": str(batch_id) if batch_id else None,
                "carries": bool(carriers) and all(c["carries"] for c in carriers), "carriers": carriers,
            })  # fmt: skip
        return {
            "id": str(tid), "account_id": int(account_id), "signature": signature, "content": content,
            "type": msg_type, "created_at": int(created_at), "timeout_seconds": int(timeout_ms) // 1000,
            "status": "pending" if pending else "done", "channels": channels,
            "carrying_channels": [c["channel"] for c in channels if c["carries"]],
        }  # fmt: skip
