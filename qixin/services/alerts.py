"""Alerts: evaluate the rules (domain/alerts.py) every few seconds, fire and resolve, notify staff.

Rules:
- Facts are read cheaply each round: the channels' health (the running channels of this process, else the
  snapshots every dispatcher writes), the latest probe of the number check's upstream provider
  (``numcheck_probes``, written by services/numbercheck_probe.py), the latest periodic 闪测 per channel
  (``flash_probe_channels``, written by services/flashtests.py ``FlashProbe``), success rates from the hourly rollups
  (``stats_hourly``; the window is rounded up to whole hours of acceptance), the oldest due queue row,
  dead webhook events, balances.
- Firing and resolving is one write job: the open alerts are read inside it, so a round never opens a
  second alert for a (rule, subject) already open. Run the evaluator in one process (``AlertsRole`` is in
  ``qixin run`` and ``qixin dispatcher``; set ``QIXIN_ALERTS_INTERVAL=0`` on the others).
- Notices go out after the commit, to every configured target: email (``QIXIN_ALERT_EMAILS``), a staff
  webhook (``QIXIN_ALERT_WEBHOOK_URL``, JSON POST) and SMS through the platform's own send path
  (``QIXIN_ALERT_SMS_NUMBERS`` sent as the account of ``QIXIN_ALERT_SMS_APP_KEY``). A failed notice is
  logged and counted (``stats``), not retried: the alert itself stays in the history either way.
- Staff (area ``channels``: ops and admin) list the history, acknowledge (audited) and change the rules
  (audited).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from qixin.domain import alerts as rules_mod
from qixin.domain.alerts import ChannelFact, Facts, Finding, FlashProbeFact, ProviderFact, Rule, State
from qixin.errors import QxError
from qixin.services import notify
from qixin.services.actor import Actor, UseCase
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
        self.stats = {"rounds": 0, "fired": 0, "resolved": 0, "notices": 0, "notice_failures": 0}

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
        """One round: read the facts, fire and resolve; notify. Returns (fired, resolved) alerts."""
        async with self._lock:
            t = now_ms() if now is None else now
            rules = [_rule(r) for r in await self.read(store.rules)]
            firing = rules_mod.evaluate(rules, await self.facts(rules, t), self.state)

            def job(tx: Tx) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
                open_ = {(int(r[1]), str(r[3])): r for r in store.open_alerts(tx)}
                fire, resolve = rules_mod.diff(open_, firing)
                fired = [self._fire(tx, f, t) for f in fire]
                resolved = []
                for r in resolve:
                    if store.resolve(tx, int(r[0]), t):
                        resolved.append(alert_dict(store.alert(tx, int(r[0]))))
                return fired, resolved

            fired, resolved = await self.db.write(job)
            self.stats["rounds"] += 1
            self.stats["fired"] += len(fired)
            self.stats["resolved"] += len(resolved)
        for a in fired:
            log.warning("alert fired: %s %s %s", a["kind"], a["subject"], a["message"])
            await self.notify("fired", a)
        for a in resolved:
            log.info("alert resolved: %s %s", a["kind"], a["subject"])
            await self.notify("resolved", a)
        return fired, resolved

    @staticmethod
    def _fire(tx: Tx, f: Finding, now: int) -> dict[str, Any]:
        alert_id = store.insert_alert(tx, f.rule_id, f.kind, f.subject, f.value, f.message, now)
        return alert_dict(store.alert(tx, alert_id))

    # -- notices ---------------------------------------------------------------------------------------------

    async def notify(self, event: str, a: dict[str, Any]) -> None:
        """Tell staff about a fired or resolved alert on every configured target (failures are logged)."""
        head = "告警" if event == "fired" else "恢复"
        subject = f"【qixin {head}】{a['title']} {a['subject']}"
        body = f"{a['message']}\n告警编号：{a['id']}\n类型：{a['kind']}\n对象：{a['subject']}"
        sends: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        for to in self.targets.emails:
            sends.append((f"email {to}", lambda to=to: notify.send_email(self.smtp, to, subject, body)))  # type: ignore[misc]
        if self.targets.webhook_url:
            sends.append(("webhook", lambda: self._post({"type": f"alert.{event}", "alert": a})))
        if self.sms is not None and self.targets.sms_numbers:
            sms = self.sms
            text = f"{head}：{a['title']} {a['subject']}，{a['message']}"[:300]
            sends.append(("sms", lambda: sms(self.targets.sms_numbers, text)))
        for what, send in sends:
            try:
                await send()
                self.stats["notices"] += 1
            except Exception as e:
                self.stats["notice_failures"] += 1
                log.warning("alert %s notice by %s failed: %s", a["id"], what, e)

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
