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

Periodic probe of every channel (``FlashProbe``, run by ``FlashProbeRole`` in the worker roles):
- Every ``QIXIN_FLASH_PROBE_INTERVAL`` seconds (default 1,800; 0: off) one round: a flash test of the
  fixed probe text (``QIXIN_FLASH_PROBE_CONTENT`` / ``_SIGNATURE``, type notification) over every eligible
  channel, exactly as above, with ``QIXIN_FLASH_PROBE_TIMEOUT`` seconds for the receipts. The first round
  comes one interval after the last round recorded (a restart does not probe at once); a round is claimed
  in the database first, so two processes running the role do not both probe within one interval.
- Billing: the probes are ordinary messages of the platform's own probe account
  (``QIXIN_FLASH_PROBE_ACCOUNT``; 0: the account named ``PROBE_ACCOUNT_NAME``, created on first use with
  the probe signature approved, price 0 and balance 0, 24-hour sending and frequency limits sized for
  probes). They are on its ledger at its price like any message; staff may give it a price (and a balance)
  to account for what the probes cost; customers are never charged.
- A round is settled when its report is done (every seed delivered, refused, or out of time): per channel
  ``delivered`` (every seed delivered; latency = the slowest seed), ``refused`` (a seed refused: by the
  channel, the carrier or the platform — the code says which) or ``no_receipt``; written to
  ``flash_probes`` (history) and ``flash_probe_channels`` (the latest per channel, with the count of
  rounds in a row not delivered). Channels no longer probed (disabled, removed) are forgotten there.
- The alert kind ``flash_probe`` (services/alerts.py) fires for a channel whose probes failed
  ``threshold`` rounds in a row (default 2) and resolves when its probe is delivered again.
- Staff read the latest per channel, the delivery rate of the rounds in a window and the history
  (``GET /admin/flash-probes``, the console's channel page).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

import orjson

from qixin.domain.numbers import mask, normalize_cn_mobile, prefix_table
from qixin.errors import QxError
from qixin.ids import ids
from qixin.services.accept import TYPES, AcceptService
from qixin.services.accounts import ApiKey, Directory, create_account
from qixin.services.actor import Actor, UseCase, audit
from qixin.services.channels import list_channels
from qixin.services.compliance.store import update_policy, validate_policy_changes
from qixin.services.queries import parse_id
from qixin.store import console as console_store
from qixin.store import flashtests as store
from qixin.store.db import Database, Tx, now_ms
from qixin.tasks import cancel

log = logging.getLogger("qixin.flashtests")

DEFAULT_SEEDS: dict[str, tuple[str, ...]] = {
    "cmcc": ("13800138000",),
    "cucc": ("18612345678",),
    "ctcc": ("18912345678",),
    "cbn": ("19212345678",),
}
REFUSED = frozenset({"undelivered", "failed", "rejected", "cancelled"})
PROBE_ACCOUNT_NAME = "企信通道巡检"
# Per seed number, the probe account sends one message per channel carrying its carrier per round: more
# than 48 rounds a day over a few channels, so its limits are sized for that (the customer defaults are
# 40/day whoever sends, 50/day per template).
PROBE_LIMITS = {"any_sender": "120/hour;2000/day", "template": "120/hour;2000/day"}


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


def _channel_result(c: dict[str, Any]) -> dict[str, Any]:
    """A channel's outcome in a settled probe round, from its flash-test report."""
    carriers = c["carriers"]
    delivered = sum(x["delivered"] for x in carriers)
    refused = sum(x["refused"] for x in carriers)
    no_receipt = sum(x["no_receipt"] + x["pending"] for x in carriers)
    seeds = delivered + refused + no_receipt
    lat = [x["latency_ms"] for x in carriers if x["latency_ms"] is not None]
    code = next((s["code"] for x in carriers for s in x["seeds"] if s["outcome"] != "delivered" and s["code"]), "")
    outcome = "delivered" if seeds and delivered == seeds else "refused" if refused else "no_receipt"
    return {"channel": c["channel"], "outcome": outcome, "seeds": seeds, "delivered": delivered,
            "refused": refused, "no_receipt": no_receipt, "latency_ms": max(lat) if lat else None,
            "code": str(code)[:64]}  # fmt: skip


def _latest_dict(r: Any) -> dict[str, Any]:
    return {"channel": str(r[0]), "outcome": str(r[1]), "failures": int(r[2]),
            "latency_ms": None if r[3] is None else int(r[3]), "code": str(r[4]), "round_id": str(r[5]),
            "probed_at": int(r[6]), "last_delivered_at": None if r[7] is None else int(r[7])}  # fmt: skip


def _history_dict(r: Any) -> dict[str, Any]:
    return {"round_id": str(r[0]), "channel": str(r[1]), "outcome": str(r[2]), "seeds": int(r[3]),
            "delivered": int(r[4]), "refused": int(r[5]), "no_receipt": int(r[6]),
            "latency_ms": None if r[7] is None else int(r[7]), "code": str(r[8]), "probed_at": int(r[9])}  # fmt: skip


class FlashProbe:
    """The periodic 闪测 of every channel with a fixed probe text (see the module rules)."""

    ACTOR = Actor.system("flash-probe")

    def __init__(
        self, db: Database, tests: FlashTests, interval: float = 1800.0, timeout: int = 300,
        content: str = "企信通道巡检短信，无需回复。", signature: str = "企信", account_id: int = 0,
        poll: float = 0.5,
    ) -> None:  # fmt: skip
        self.db = db
        self.tests = tests
        self.interval = interval
        self.timeout = max(5, timeout)  # FlashTests' own lower bound
        self.content = content
        self.signature = signature
        self.account_id = account_id
        self.poll = poll
        self.stats = {"rounds": 0, "settled": 0, "failed_channels": 0}
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def account(self) -> int:
        """The account the probes are sent from (created on first use when not configured)."""
        if self.account_id:
            return self.account_id
        async with self._lock:
            found = await self.db.read(lambda tx: console_store.account_id_by_name(tx, PROBE_ACCOUNT_NAME))
            if found is None:

                def job(tx: Tx) -> int:
                    again = console_store.account_id_by_name(tx, PROBE_ACCOUNT_NAME)
                    if again is not None:
                        return again
                    out = create_account(tx, PROBE_ACCOUNT_NAME, self.signature, 0, 0, box=self.tests.directory.box)
                    update_policy(tx, out["account_id"],
                                  validate_policy_changes({"permit_24h": True, "limits": PROBE_LIMITS}))  # fmt: skip
                    audit(tx, self.ACTOR, "account.create", f"account:{out['account_id']}",
                          {"name": PROBE_ACCOUNT_NAME, "purpose": "periodic flash-test probes"})  # fmt: skip
                    return int(out["account_id"])

                found = await self.db.write(job)
            self.account_id = found
            return found

    async def start_round(self, now: int | None = None, force: bool = True) -> dict[str, Any] | None:
        """Claims and sends one round; None when another process started one within the interval
        (``force=False``). Answers the round id, its flash test id (None: nothing sent) and why not."""
        at = now_ms() if now is None else now
        round_id = ids.one()
        gap = int(self.interval * 1000 * 0.9)

        def claim(tx: Tx) -> bool:
            last = store.last_round_start(tx)
            if not force and last is not None and at - last < gap:
                return False
            store.insert_round(tx, round_id, at)
            return True

        if not await self.db.write(claim):
            return None
        self.stats["rounds"] += 1
        test_id: int | None = None
        detail = ""
        try:
            acct = await self.account()
            out = await self.tests.create(self.ACTOR, self.content, self.signature, "notification", self.timeout,
                                          account_id=acct)  # fmt: skip
            test_id = int(out["id"])
        except QxError as e:
            detail = f"{e.code}: {e.message}"
            log.warning("flash probe round %s sent nothing: %s", round_id, detail)
        settled = None if test_id is not None else now_ms()
        await self.db.write(lambda tx: store.set_round_test(tx, round_id, test_id, detail, settled))
        return {"round_id": str(round_id), "test_id": None if test_id is None else str(test_id), "detail": detail}

    async def settle(self) -> dict[str, list[dict[str, Any]]]:
        """Settles every open round whose report is done; answers their results per round id."""
        out: dict[str, list[dict[str, Any]]] = {}
        for round_id, test_id, started_at in await self.db.read(store.open_rounds):
            if test_id is None:  # interrupted between the claim and the send
                if now_ms() - started_at > (self.timeout + 60) * 1000:
                    await self.db.write(functools.partial(store.set_round_test, round_id=round_id, test_id=None,
                                                          detail="interrupted", settled_at=now_ms()))  # fmt: skip
                continue
            report = await self.tests.get(self.ACTOR, str(test_id))
            if report["status"] != "done":
                continue
            results = [_channel_result(c) for c in report["channels"]]
            at = now_ms()

            def job(tx: Tx, round_id: int = round_id, results: list[dict[str, Any]] = results, at: int = at) -> bool:
                if not store.settle_round(tx, round_id, at):
                    return False
                store.insert_probes(tx, [(round_id, r["channel"], r["outcome"], r["seeds"], r["delivered"],
                                          r["refused"], r["no_receipt"], r["latency_ms"], r["code"], at)
                                         for r in results])  # fmt: skip
                before = {str(p[0]): p for p in store.probe_channels(tx)}
                for r in results:
                    prev = before.get(r["channel"])
                    ok = r["outcome"] == "delivered"
                    failures = 0 if ok else (int(prev[2]) if prev is not None else 0) + 1
                    last_ok = at if ok else (None if prev is None or prev[7] is None else int(prev[7]))
                    store.put_probe_channel(tx, r["channel"], r["outcome"], failures, r["latency_ms"], r["code"],
                                            round_id, at, last_ok)  # fmt: skip
                store.drop_probe_channels(tx, [r["channel"] for r in results])
                return True

            if await self.db.write(job):
                self.stats["settled"] += 1
                failed = [r for r in results if r["outcome"] != "delivered"]
                self.stats["failed_channels"] += len(failed)
                for r in failed:
                    log.warning("flash probe: channel %s %s (%s)", r["channel"], r["outcome"], r["code"])
                out[str(round_id)] = results
        return out

    async def round(self, force: bool = True) -> list[dict[str, Any]] | None:
        """One round, start to settlement (bounded by the receipt timeout); its results per channel."""
        started = await self.start_round(force=force)
        if started is None or started["test_id"] is None:
            return None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout + 30
        while True:
            settled = await self.settle()
            if started["round_id"] in settled:
                return settled[started["round_id"]]
            if loop.time() > deadline:
                return None
            await asyncio.sleep(self.poll)

    async def report(
        self, actor: Actor, channel: str | None = None, hours: int = 24, limit: int = 100
    ) -> dict[str, Any]:
        """Staff: the latest probe per channel, each channel's rounds delivered over ``hours``, the history."""
        actor.require("channels")
        if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= 24 * 90:
            raise QxError("INVALID_REQUEST", "hours 必须是 1–2160 之间的整数")
        limit = max(1, min(int(limit), 1000))
        since = now_ms() - hours * 3_600_000

        def q(tx: Tx) -> tuple[list[Any], list[Any], list[Any]]:
            return store.probe_channels(tx), store.probe_summary(tx, since), store.probe_history(tx, channel, since,
                                                                                                 limit)  # fmt: skip

        latest, summary, history = await self.db.read(q)
        sums = {str(r[0]): r for r in summary}
        channels = []
        for r in latest:
            d = _latest_dict(r)
            sm = sums.get(d["channel"])
            rounds, ok = (int(sm[1]), int(sm[2] or 0)) if sm else (0, 0)
            d.update({"rounds": rounds, "delivered_rounds": ok,
                      "delivery_rate": round(ok * 100 / rounds, 1) if rounds else None,
                      "avg_latency_ms": None if not sm or sm[3] is None else round(float(sm[3]))})  # fmt: skip
            channels.append(d)
        return {
            "interval_seconds": self.interval, "timeout_seconds": self.timeout, "hours": hours,
            "channels": [c for c in channels if channel in (None, "", c["channel"])],
            "history": [_history_dict(r) for r in history],
        }  # fmt: skip

    # -- the periodic loop ---------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.interval > 0:
            self._task = asyncio.create_task(self._run(), name="flash-probe")

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        last = await self.db.read(store.last_round_start)
        wait = self.interval if last is None else max(0.0, self.interval - (now_ms() - last) / 1000)
        await asyncio.sleep(wait)
        loop = asyncio.get_running_loop()
        while True:
            t0 = loop.time()
            try:
                await self.settle()  # rounds a stopped process left open
                await self.round(force=False)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("flash probe round failed")
            await asyncio.sleep(max(0.0, self.interval - (loop.time() - t0)))
