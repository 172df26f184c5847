"""Alerts: evaluate the rules (domain/alerts.py) every few seconds, fire and resolve, notify staff.

Rules:
- Facts are read cheaply each round: the channels' health (the running channels of this process, else the
  snapshots every dispatcher writes), the latest probe of the number check's upstream provider
  (``numcheck_probes``, written by services/numbercheck_probe.py), the latest periodic 闪测 per channel
  (``flash_probe_channels``, written by services/flashtests.py ``FlashProbe``), success rates from the hourly rollups
  (``stats_hourly``; the window is rounded up to whole hours of acceptance), the oldest due queue row,
  dead webhook events, balances.
- Firing and resolving is one write job: the open alerts are read inside it, so a round never opens a
  second alert for a (rule, subject) already open.
- One evaluator: a round first takes (or renews) the lease ``alerts`` (``service_leases``, ``lease_ms``,
  at least three rounds long). Several processes may run the alerts role (``qixin run``, ``qixin
  dispatcher``): only the lease holder evaluates; another takes over once the holder's lease ran out
  (it stopped or died). Works the same on SQLite and PostgreSQL.
- Notices: the write job that fires or resolves an alert also writes one notice row per configured target
  (``alert_notices``): email (``QIXIN_ALERT_EMAILS``), a staff webhook (``QIXIN_ALERT_WEBHOOK_URL``, JSON
  POST) and SMS through the platform's own send path (``QIXIN_ALERT_SMS_NUMBERS`` sent as the account of
  ``QIXIN_ALERT_SMS_APP_KEY``). They are delivered right after the commit and by every later round. A
  sender claims a notice before each attempt (its ``next_at`` moves forward), so one process sends it. A
  failed attempt is tried again with exponential backoff (``notice_backoff_ms`` doubling, at most
  ``notice_cap_ms``). After ``notice_max_attempts`` attempts it is ``dead``. Each notice's state (sent,
  pending with its attempts and last error, dead) is in the alert history.
- Staff (area ``channels``: ops and admin) list the history, acknowledge (audited) and change the rules
  (audited).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from qixin.domain import alerts as rules_mod
from qixin.domain.alerts import ChannelFact, Facts, Finding, FlashProbeFact, ProviderFact, Rule, State
from qixin.errors import QxError
from qixin.services import notify
from qixin.services.actor import Actor, UseCase
from qixin.store import alert_notices as notice_store
from qixin.store import alerts as store
from qixin.store import flashtests as flash_store
from qixin.store import numbercheck as numcheck_store
from qixin.store import reads
from qixin.store.db import Database, Tx, now_ms
from qixin.tasks import cancel

log = logging.getLogger("qixin.alerts")

HOUR_MS = 3_600_000
AREA = "channels"

SmsSend = Callable[[Sequence[str], str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class AlertTargets:
    """Where staff notices go (Settings.alert_*); an empty target is skipped."""

    emails: tuple[str, ...] = ()
    webhook_url: str = ""
    sms_numbers: tuple[str, ...] = ()
    timeout: float = 5.0


def _rule(r: Any) -> Rule:
    return Rule(int(r[0]), str(r[1]), str(r[2]), int(r[3]), int(r[4]), int(r[5]), int(r[6]), bool(r[7]))


def rule_dict(r: Any) -> dict[str, Any]:
    return {
        "id": int(r[0]), "kind": str(r[1]), "title": rules_mod.TITLES.get(str(r[1]), ""), "scope": str(r[2]),
        "threshold": int(r[3]), "for_seconds": int(r[4]), "window_seconds": int(r[5]),
        "min_messages": int(r[6]), "enabled": bool(r[7]), "updated_at": int(r[8]),
    }  # fmt: skip


def alert_dict(r: Any) -> dict[str, Any]:
    return {
        "id": int(r[0]), "rule_id": int(r[1]), "kind": str(r[2]), "title": rules_mod.TITLES.get(str(r[2]), ""),
        "subject": str(r[3]), "value": int(r[4]), "message": str(r[5]), "fired_at": int(r[6]),
        "resolved_at": None if r[7] is None else int(r[7]), "acknowledged_by": r[8],
        "acknowledged_at": None if r[9] is None else int(r[9]),
        "state": "open" if r[7] is None else "resolved",
    }  # fmt: skip


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise QxError("INVALID_REQUEST", f"{name} 必须是整数")
    return value


class Alerts(UseCase):
    """The alert use cases (staff) and the evaluation round (the platform)."""

    def __init__(
        self,
        db: Database,
        channel_health: Callable[[], Awaitable[list[dict[str, Any]]]],
        smtp: notify.Smtp,
        targets: AlertTargets,
        sms: SmsSend | None = None,
    ) -> None:
        super().__init__(db)
        self.channel_health = channel_health
        self.smtp = smtp
        self.targets = targets
        self.sms = sms
        self.state = State()
        self._lock = asyncio.Lock()
        self.stats = {"rounds": 0, "fired": 0, "resolved": 0, "notices": 0, "notice_failures": 0, "not_leader": 0}
        self.holder = f"alerts-{os.getpid()}-{secrets.token_hex(4)}"  # this evaluator, in the lease
        self.lease_ms = 30_000
        self.notice_backoff_ms = 5_000
        self.notice_cap_ms = 300_000
        self.notice_max_attempts = 6
        self.notice_claim_ms = 60_000  # an attempt in flight keeps its notice this long

    # -- staff use cases ----------------------------------------------------------------------------------

    async def history(
        self, actor: Actor, state: str | None = None, kind: str | None = None, before_id: int | None = None,
        limit: int = 50,
    ) -> dict[str, Any]:  # fmt: skip
        actor.require(AREA)
        if state not in (None, "", "open", "resolved", "unacknowledged"):
            raise QxError("INVALID_REQUEST", "state 可选 open、resolved、unacknowledged")
        limit = max(1, min(int(limit), 200))
        rows = await self.read(lambda tx: store.list_alerts(tx, state or None, kind or None, before_id, limit))
        items = [alert_dict(r) for r in rows]
        notices = await self.read(lambda tx: notice_store.of_alerts(tx, [a["id"] for a in items]))
        by_alert: dict[int, list[dict[str, Any]]] = {}
        for n in notices:
            by_alert.setdefault(int(n[1]), []).append({
                "event": str(n[2]), "target": str(n[3]), "status": str(n[5]), "attempts": int(n[6]),
                "next_at": int(n[7]) if n[5] == "pending" else None, "last_error": n[8],
                "sent_at": None if n[10] is None else int(n[10]),
            })  # fmt: skip
        for a in items:
            a["notices"] = by_alert.get(a["id"], [])
        return {"alerts": items, "next_before_id": items[-1]["id"] if len(items) == limit else None}

    async def acknowledge(self, actor: Actor, alert_id: int) -> dict[str, Any]:
        actor.require(AREA)
        who = actor.name or f"{actor.kind}:{actor.id}"

        def fn(tx: Tx) -> dict[str, Any]:
            if store.alert(tx, alert_id) is None:
                raise QxError("NOT_FOUND")
            if not store.acknowledge(tx, alert_id, who, now_ms()):
                raise QxError("CONFLICT", "该告警已被确认")
            return alert_dict(store.alert(tx, alert_id))

        return await self.change(actor, "alert.ack", f"alert:{alert_id}", fn)

    async def rules(self, actor: Actor) -> list[dict[str, Any]]:
        actor.require(AREA)
        return [rule_dict(r) for r in await self.read(store.rules)]

    async def set_rule(self, actor: Actor, rule_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        """Change a rule's threshold, for_seconds, window_seconds, min_messages or enabled."""
        actor.require(AREA)
        unknown = set(changes) - {"threshold", "for_seconds", "window_seconds", "min_messages", "enabled"}
        if unknown:
            raise QxError("INVALID_REQUEST", "不能修改的字段：" + "、".join(sorted(unknown)))

        def fn(tx: Tx) -> dict[str, Any]:
            row = store.rule(tx, rule_id)
            if row is None:
                raise QxError("NOT_FOUND")
            cur = rule_dict(row)
            new = {**cur, **changes}
            for k in ("threshold", "for_seconds", "window_seconds", "min_messages"):
                new[k] = _int(new[k], k)
            if not isinstance(new["enabled"], bool):
                raise QxError("INVALID_REQUEST", "enabled 必须是 true 或 false")
            err = rules_mod.check_rule(
                new["kind"], new["scope"], new["threshold"], new["for_seconds"], new["window_seconds"],
                new["min_messages"],
            )  # fmt: skip
            if err:
                raise QxError("INVALID_REQUEST", err)
            store.update_rule(
                tx, rule_id, new["threshold"], new["for_seconds"], new["window_seconds"], new["min_messages"],
                new["enabled"], now_ms(),
            )  # fmt: skip
            return rule_dict(store.rule(tx, rule_id))

        return await self.change(actor, "alert_rule.update", f"alert_rule:{rule_id}", fn)

    # -- evaluation ------------------------------------------------------------------------------------------

    async def facts(self, rules: Sequence[Rule], now: int) -> Facts:
        channels: dict[str, ChannelFact] = {}
        for h in await self.channel_health():
            if h.get("enabled", True) is False:
                continue
            name = str(h.get("name", ""))
            channels[name] = ChannelFact(bool(h.get("up")), int(h.get("submitted", 0) or 0),
                                         int(h.get("receipts", 0) or 0))  # fmt: skip

        providers: dict[str, ProviderFact] = {}
        flash: dict[str, FlashProbeFact] = {}

        def q(tx: Tx) -> tuple[dict[int, dict[str, tuple[int, int]]], float, dict[int, dict[str, int]], dict[str, int]]:
            rates: dict[int, dict[str, tuple[int, int]]] = {}
            dead: dict[int, dict[str, int]] = {}
            balances: dict[str, int] = {}
            lag = 0.0
            for r in rules:
                if not r.enabled:
                    continue
                if r.kind == "success_rate":
                    since_hour = (now - r.window_seconds * 1000) // HOUR_MS * HOUR_MS
                    column = "channel" if r.scope == "channel" else "account_id"
                    acc: dict[str, list[int]] = {}
                    for value, status, n in store.rates(tx, column, since_hour):
                        if column == "channel" and not value:
                            continue  # failed before any channel was chosen
                        subject = f"{r.scope}:{value}"
                        a = acc.setdefault(subject, [0, 0])
                        a[1] += int(n or 0)
                        if status == "delivered":
                            a[0] += int(n or 0)
                    rates[r.id] = {k: (v[0], v[1]) for k, v in acc.items()}
                elif r.kind == "queue_lag":
                    lag = reads.queue_snapshot(tx, now)[2] / 1000
                elif r.kind == "webhook_dead_letters":
                    rows = store.dead_letters(tx, now - r.window_seconds * 1000)
                    dead[r.id] = {f"account:{a}": int(n) for a, n in rows}
                elif r.kind == "balance_low":
                    balances.update({f"account:{a}": int(b) for a, b in store.low_balances(tx, r.threshold)})
                elif r.kind == "numcheck_provider":
                    for name, status, latency, detail, failures, _ in numcheck_store.probes(tx):
                        providers[str(name)] = ProviderFact(str(status), int(latency), int(failures), str(detail))
                elif r.kind == "flash_probe":
                    for p in flash_store.probe_channels(tx):
                        flash[str(p[0])] = FlashProbeFact(str(p[1]), int(p[2]), str(p[4]))
            return rates, lag, dead, balances

        rates, lag, dead, balances = await self.read(q)
        return Facts(now, channels, rates, lag, dead, balances, providers, flash)

    async def evaluate_once(self, now: int | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """One round: take the lease (else nothing: another process evaluates), read the facts, fire and
        resolve (with their notices, one transaction); deliver the notices due. Returns (fired, resolved)."""
        async with self._lock:
            real = now_ms()
            if not await self.db.write(
                lambda tx: notice_store.take_lease(tx, "alerts", self.holder, real, real + self.lease_ms)
            ):
                self.stats["not_leader"] += 1
                return [], []
            t = real if now is None else now
            rules = [_rule(r) for r in await self.read(store.rules)]
            firing = rules_mod.evaluate(rules, await self.facts(rules, t), self.state)
            targets = self._targets()

            def job(tx: Tx) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
                open_ = {(int(r[1]), str(r[3])): r for r in store.open_alerts(tx)}
                fire, resolve = rules_mod.diff(open_, firing)
                fired = [self._fire(tx, f, t) for f in fire]
                resolved = []
                for r in resolve:
                    if store.resolve(tx, int(r[0]), t):
                        resolved.append(alert_dict(store.alert(tx, int(r[0]))))
                for event, alerts in (("fired", fired), ("resolved", resolved)):
                    for a in alerts:
                        notice_store.insert_notices(tx, a["id"], event, targets, orjson.dumps(a).decode(), real)
                return fired, resolved

            fired, resolved = await self.db.write(job)
            self.stats["rounds"] += 1
            self.stats["fired"] += len(fired)
            self.stats["resolved"] += len(resolved)
        for a in fired:
            log.warning("alert fired: %s %s %s", a["kind"], a["subject"], a["message"])
        for a in resolved:
            log.info("alert resolved: %s %s", a["kind"], a["subject"])
        await self.deliver_due()
        return fired, resolved

    @staticmethod
    def _fire(tx: Tx, f: Finding, now: int) -> dict[str, Any]:
        alert_id = store.insert_alert(tx, f.rule_id, f.kind, f.subject, f.value, f.message, now)
        return alert_dict(store.alert(tx, alert_id))

    # -- notices ---------------------------------------------------------------------------------------------

    def _targets(self) -> list[str]:
        out = [f"email:{to}" for to in self.targets.emails]
        if self.targets.webhook_url:
            out.append("webhook")
        if self.sms is not None and self.targets.sms_numbers:
            out.append("sms")
        return out

    async def _send(self, target: str, event: str, a: dict[str, Any]) -> None:
        head = "告警" if event == "fired" else "恢复"
        if target.startswith("email:"):
            subject = f"【qixin {head}】{a['title']} {a['subject']}"
            body = f"{a['message']}\n告警编号：{a['id']}\n类型：{a['kind']}\n对象：{a['subject']}"
            await notify.send_email(self.smtp, target[len("email:") :], subject, body)
        elif target == "webhook":
            if not self.targets.webhook_url:
                raise RuntimeError("no staff webhook configured")
            await self._post({"type": f"alert.{event}", "alert": a})
        elif target == "sms":
            if self.sms is None or not self.targets.sms_numbers:
                raise RuntimeError("no on-call SMS configured")
            await self.sms(self.targets.sms_numbers, f"{head}：{a['title']} {a['subject']}，{a['message']}"[:300])
        else:
            raise RuntimeError(f"unknown target {target}")

    def _retry_at(self, attempts: int, now: int) -> int | None:
        """When to try a notice again after its ``attempts``-th failed attempt (None: give up)."""
        if attempts >= self.notice_max_attempts:
            return None
        return now + min(self.notice_backoff_ms * 2 ** (attempts - 1), self.notice_cap_ms)

    async def deliver_due(self) -> int:
        """Send every due notice once (claimed first: one sender per notice); the notices sent."""
        done = 0
        for row in await self.read(lambda tx: notice_store.due(tx, now_ms())):
            nid, event, target, payload, attempts = int(row[0]), str(row[2]), str(row[3]), str(row[4]), int(row[6])
            now = now_ms()
            if not await self.db.write(
                lambda tx, i=nid, n=now: notice_store.claim(tx, i, n, n + self.notice_claim_ms)  # type: ignore[misc]
            ):
                continue  # another process took it
            a = orjson.loads(payload)
            try:
                await self._send(target, event, a)
            except Exception as e:
                self.stats["notice_failures"] += 1
                retry = self._retry_at(attempts + 1, now_ms())
                err = f"{type(e).__name__}: {e}"
                log.warning("alert %s notice to %s failed (attempt %d%s): %s", a["id"], target, attempts + 1,
                            "" if retry else ", given up", err)  # fmt: skip
                await self.db.write(lambda tx, i=nid, m=err, r=retry: notice_store.failed(tx, i, m, r))  # type: ignore[misc]
                continue
            await self.db.write(lambda tx, i=nid: notice_store.sent(tx, i, now_ms()))  # type: ignore[misc]
            self.stats["notices"] += 1
            done += 1
        return done

    async def _post(self, payload: dict[str, Any]) -> None:
        async with httpx.AsyncClient(timeout=self.targets.timeout) as http:
            resp = await http.post(self.targets.webhook_url, json=payload)
            if resp.status_code >= 300:
                raise RuntimeError(f"HTTP {resp.status_code}")


class AlertWorker:
    """Runs ``Alerts.evaluate_once`` every ``interval`` seconds (0: never)."""

    def __init__(self, alerts: Alerts, interval: float) -> None:
        self.alerts = alerts
        self.interval = interval
        if interval > 0:  # the evaluator's lease outlives a few rounds, so it stays with one process
            alerts.lease_ms = max(alerts.lease_ms, int(3 * interval * 1000))
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.interval > 0:
            self._task = asyncio.create_task(self._run(), name="alerts")

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.alerts.evaluate_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("alert evaluation failed")
            await asyncio.sleep(self.interval)
