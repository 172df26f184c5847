"""Alert rules: pure evaluation of rules (data) against facts observed at one instant.

Rules:
- A rule is data (table ``alert_rules``): its kind, its scope (which subjects it watches), a threshold, how
  long the condition must hold (``for_seconds``), a window and a minimum sample. Staff change them; the
  defaults are ``DEFAULT_RULES``.
- ``evaluate(rules, facts, state)`` answers the findings that fire now, keyed by (rule id, subject), and
  the state to pass next time (when each condition was first seen, the receipt progress per channel).
  No clock, no I/O: the caller passes ``facts.now`` (ms UTC).
- Subjects are strings: ``channel:<name>``, ``account:<id>``, ``platform`` (queue lag),
  ``provider:<name>`` (the number check's upstream, from its periodic probe); ``flash_probe`` watches
  ``channel:<name>`` through the periodic 闪测 of every channel (services/flashtests.py ``FlashProbe``).
- Units are integers: percent for success rates, seconds for durations, 厘 for money.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

KINDS = (
    "channel_down", "success_rate", "queue_lag", "receipts_stopped", "webhook_dead_letters", "balance_low",
    "numcheck_provider", "flash_probe",
)  # fmt: skip
SCOPES = {
    "channel_down": ("channel",),
    "success_rate": ("channel", "account"),
    "queue_lag": ("platform",),
    "receipts_stopped": ("channel",),
    "webhook_dead_letters": ("account",),
    "balance_low": ("account",),
    "numcheck_provider": ("provider",),
    "flash_probe": ("channel",),
}

# What each kind means to the staff who read the notice (zh-CN, customer-facing text style).
TITLES = {
    "channel_down": "通道中断",
    "success_rate": "成功率过低",
    "queue_lag": "发送队列积压",
    "receipts_stopped": "通道回执停止",
    "webhook_dead_letters": "推送死信",
    "balance_low": "账户余额不足",
    "numcheck_provider": "号码检测上游异常",
    "flash_probe": "通道巡检闪测失败",
}


@dataclass(frozen=True, slots=True)
class Rule:
    id: int
    kind: str
    scope: str
    threshold: int = 0  # percent (success_rate), seconds (queue_lag), count (dead letters), 厘 (balance),
    # ms (numcheck_provider: a probe slower than this is degraded), rounds in a row (flash_probe)
    for_seconds: int = 0  # the condition must hold this long before the alert fires
    window_seconds: int = 0  # success_rate, webhook_dead_letters: the window looked at
    min_messages: int = 0  # success_rate: no alert on fewer finished messages than this
    enabled: bool = True


# (kind, scope, threshold, for_seconds, window_seconds, min_messages): the rows seeded by the migration
DEFAULT_RULES: tuple[tuple[str, str, int, int, int, int], ...] = (
    ("channel_down", "channel", 0, 60, 0, 0),
    ("success_rate", "channel", 80, 0, 3600, 100),
    ("success_rate", "account", 80, 0, 3600, 100),
    ("queue_lag", "platform", 300, 0, 0, 0),
    ("receipts_stopped", "channel", 0, 600, 0, 0),
    ("webhook_dead_letters", "account", 1, 0, 86400, 0),
    ("balance_low", "account", 10_000, 0, 0, 0),
    ("numcheck_provider", "provider", 1_000, 0, 0, 0),  # seeded by migration 0020_numbers2
    ("flash_probe", "channel", 2, 0, 0, 0),  # seeded by migration 0022_flash2
)


def check_rule(kind: str, scope: str, threshold: int, for_seconds: int, window_seconds: int, min_messages: int) -> str:
    """An error text (zh-CN) when a rule's values make no sense, else ''."""
    if kind not in KINDS:
        return "未知的告警类型：" + kind
    if scope not in SCOPES[kind]:
        return f"{kind} 的范围只能是 " + "、".join(SCOPES[kind])
    if min(threshold, for_seconds, window_seconds, min_messages) < 0:
        return "阈值、持续时间、窗口和最小样本不能为负数"
    if kind == "success_rate" and not (0 < threshold <= 100 and window_seconds > 0):
        return "成功率阈值须在 1–100（%）之间，窗口须大于 0 秒"
    if kind == "webhook_dead_letters" and not (threshold >= 1 and window_seconds > 0):
        return "死信阈值须至少为 1，窗口须大于 0 秒"
    if kind in ("queue_lag", "balance_low", "numcheck_provider") and threshold <= 0:
        return "阈值须大于 0"
    if kind == "flash_probe" and threshold < 1:
        return "巡检失败次数阈值须至少为 1"
    if kind == "receipts_stopped" and for_seconds <= 0:
        return "回执停止的持续时间须大于 0 秒"
    return ""


@dataclass(frozen=True, slots=True)
class ChannelFact:
    up: bool
    submitted: int  # parts submitted since the connector started (a counter)
    receipts: int  # receipts received since the connector started (a counter)


@dataclass(frozen=True, slots=True)
class ProviderFact:
    status: str  # the latest probe: ok, timeout, error, open (circuit open)
    latency_ms: int
    failures: int  # consecutive failed probes
    detail: str = ""


@dataclass(frozen=True, slots=True)
class FlashProbeFact:
    outcome: str  # the channel's latest periodic 闪测: delivered, refused, no_receipt
    failures: int  # rounds in a row not delivered
    code: str = ""  # the first refusal's code


@dataclass(frozen=True, slots=True)
class Facts:
    now: int  # ms UTC
    channels: Mapping[str, ChannelFact] = field(default_factory=dict)
    # (delivered, finished) per channel / per account over each success_rate rule's window, by rule id
    rates: Mapping[int, Mapping[str, tuple[int, int]]] = field(default_factory=dict)
    queue_lag_seconds: float = 0.0
    dead_letters: Mapping[int, Mapping[str, int]] = field(default_factory=dict)  # by rule id: subject -> count
    balances: Mapping[str, int] = field(default_factory=dict)  # account subject -> balance in 厘
    providers: Mapping[str, ProviderFact] = field(default_factory=dict)  # number-check upstream -> last probe
    flash_probes: Mapping[str, FlashProbeFact] = field(default_factory=dict)  # channel -> its latest 闪测 probe


@dataclass(frozen=True, slots=True)
class Finding:
    rule_id: int
    kind: str
    subject: str
    value: int  # the observed value, in the rule's unit
    message: str  # zh-CN, for staff


@dataclass
class State:
    since: dict[tuple[int, str], int] = field(default_factory=dict)  # condition first seen (ms)
    # per channel: (submitted, receipts) last seen and since when submits wait for a receipt (ms, or None)
    progress: dict[str, tuple[int, int, int | None]] = field(default_factory=dict)


def _receipt_progress(state: State, facts: Facts) -> dict[str, int | None]:
    """Per channel, since when parts were submitted with no receipt since (None: receipts are flowing)."""
    waiting: dict[str, int | None] = {}
    for name, ch in facts.channels.items():
        last = state.progress.get(name)
        if last is None or ch.submitted < last[0] or ch.receipts < last[1]:  # new or restarted counters
            since: int | None = None
        elif ch.receipts > last[1]:
            since = None
        elif ch.submitted > last[0]:
            since = last[2] if last[2] is not None else facts.now
        else:
            since = last[2]
        state.progress[name] = (ch.submitted, ch.receipts, since)
        waiting[name] = since
    for gone in set(state.progress) - set(facts.channels):
        del state.progress[gone]
    return waiting


def conditions(rule: Rule, facts: Facts, waiting: Mapping[str, int | None]) -> list[tuple[str, int, str]]:
    """(subject, observed value, message) for every subject in which ``rule``'s condition holds now."""
    out: list[tuple[str, int, str]] = []
    k = rule.kind
    if k == "channel_down":
        for name, ch in facts.channels.items():
            if not ch.up:
                out.append((f"channel:{name}", 0, f"通道 {name} 无可用连接"))
    elif k == "receipts_stopped":
        for name, since in waiting.items():
            if since is not None:
                secs = (facts.now - since) // 1000
                out.append((f"channel:{name}", secs, f"通道 {name} 已提交 {secs} 秒未收到任何回执"))
    elif k == "success_rate":
        for subject, (delivered, done) in facts.rates.get(rule.id, {}).items():
            if done <= 0 or done < rule.min_messages:
                continue
            pct = delivered * 100 // done
            if delivered * 100 < rule.threshold * done:
                out.append((subject, pct, f"{subject} 近 {rule.window_seconds} 秒成功率 {pct}%（{delivered}/{done}），"
                                          f"低于 {rule.threshold}%"))  # fmt: skip
    elif k == "queue_lag":
        lag = int(facts.queue_lag_seconds)
        if facts.queue_lag_seconds > rule.threshold:
            out.append(("platform", lag, f"最早到期的待发消息已等待 {lag} 秒，超过 {rule.threshold} 秒"))
    elif k == "webhook_dead_letters":
        for subject, n in facts.dead_letters.get(rule.id, {}).items():
            if n >= rule.threshold:
                out.append((subject, n, f"{subject} 近 {rule.window_seconds} 秒有 {n} 条推送失败放弃（死信）"))
    elif k == "balance_low":
        for subject, bal in facts.balances.items():
            if bal < rule.threshold:
                out.append((subject, bal, f"{subject} 余额 {bal} 厘，低于 {rule.threshold} 厘"))
    elif k == "numcheck_provider":
        for name, p in facts.providers.items():
            if p.status != "ok":
                out.append((f"provider:{name}", p.failures, f"号码检测上游 {name} 探测失败（{p.status}：{p.detail}），"
                                                            f"已连续 {p.failures} 次"))  # fmt: skip
            elif p.latency_ms > rule.threshold:
                out.append((f"provider:{name}", p.latency_ms, f"号码检测上游 {name} 响应变慢：探测耗时 {p.latency_ms} "
                                                               f"毫秒，超过 {rule.threshold} 毫秒"))  # fmt: skip
    elif k == "flash_probe":
        outcome_zh = {"refused": "被拒绝", "no_receipt": "超时无回执"}
        for name, fp in facts.flash_probes.items():
            if fp.outcome != "delivered" and fp.failures >= rule.threshold:
                why = outcome_zh.get(fp.outcome, fp.outcome) + (f"（{fp.code}）" if fp.code else "")
                out.append((f"channel:{name}", fp.failures,
                            f"通道 {name} 巡检闪测已连续 {fp.failures} 轮未送达：{why}"))  # fmt: skip
    return out


def evaluate(rules: Sequence[Rule], facts: Facts, state: State) -> dict[tuple[int, str], Finding]:
    """The findings firing now, keyed by (rule id, subject); ``state`` is updated in place."""
    waiting = _receipt_progress(state, facts)
    firing: dict[tuple[int, str], Finding] = {}
    seen: set[tuple[int, str]] = set()
    for rule in rules:
        if not rule.enabled:
            continue
        for subject, value, message in conditions(rule, facts, waiting):
            key = (rule.id, subject)
            seen.add(key)
            first = state.since.setdefault(key, facts.now)
            # receipts_stopped measures its own duration (for_seconds is its N)
            held = value * 1000 if rule.kind == "receipts_stopped" else facts.now - first
            if held >= rule.for_seconds * 1000:
                firing[key] = Finding(rule.id, rule.kind, subject, value, message)
    for key in set(state.since) - seen:
        del state.since[key]
    return firing


def diff(
    open_alerts: Mapping[tuple[int, str], Any], firing: Mapping[tuple[int, str], Finding]
) -> tuple[list[Finding], list[Any]]:
    """(findings to fire: not open yet, open alerts to resolve: no longer firing)."""
    fire = [f for key, f in firing.items() if key not in open_alerts]
    resolve = [a for key, a in open_alerts.items() if key not in firing]
    return fire, resolve
