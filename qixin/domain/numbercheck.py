"""Number status check (空号检测): how evidence about a number becomes a class and a confidence.

Rules (pure; the caller gathers the evidence and passes the clock):

* Classes: ``real`` 实号, ``silent`` 沉默号, ``empty`` 空号 (unallocated or no longer in service),
  ``risk`` 风险号, ``unknown`` 库无 (no evidence at all). Every verdict lists its evidence as short
  codes (``plan:unallocated``, ``history:delivered:12d``, ``blacklist``, ``upstream:real`` …).
* Evidence sources, strongest first, each decides the class when it applies:

  1. The number plan. Not a mainland mobile number, or a 号段 no carrier holds in the prefix table
     (built from the phonenumbers data): ``empty``, confidence 0.99.
  2. Risk. On the platform blacklist: ``risk`` 0.95. One complaint: ``risk`` 0.80, two or more 0.90.
     Risk outranks history: a number that complains is real but must not be marketed to.
  3. The platform's own history (all receipts, every account). A receipt whose carrier code means
     empty / unallocated (the ``invalid_number`` group of ``domain/delivery``) that is newer than the
     last delivery: ``empty``, 0.90 (0.95 with two or more such receipts). Else a delivery within
     ``fresh_days`` (30): ``real`` 0.95; within ``silent_days`` (90): ``real`` 0.85; older: ``silent``
     0.70. No delivery ever, but at least ``unreachable_min`` (3) receipts meaning switched off /
     suspended (停机, the ``unreachable`` group): ``silent`` 0.60.
  4. An upstream provider's answer, when the platform's own evidence is not conclusive (``needs_upstream``:
     nothing decided, or only a verdict weaker than ``upstream_below``, 0.80). An upstream answer that
     agrees with the own verdict raises the confidence to the larger of the two plus 0.05 (at most
     0.99); one that disagrees replaces a weaker own verdict (the upstream asks the carrier today).
  5. Nothing: ``unknown`` (库无), confidence 0.

* Billing outcome (``billing_key``): ``no_record`` for ``unknown``; ``timeout`` / ``error`` when the
  upstream was asked and timed out / failed (its circuit open included), whatever the own evidence
  said; else the class. ``services/billing.numcheck_fee`` charges every key but those three.
* Carrier and province: the prefix table's, unless the number is known to be ported (携号转网,
  learned from receipts): then the carrier it moved to and ``ported`` true.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "CLASSES",
    "CLASS_NAMES",
    "PACKAGES",
    "History",
    "OwnVerdicts",
    "Rules",
    "Upstream",
    "Verdict",
    "billing_key",
    "decide",
    "needs_upstream",
    "own_verdict",
]

CLASSES = ("real", "silent", "empty", "risk", "unknown")
CLASS_NAMES = {"real": "实号", "silent": "沉默号", "empty": "空号", "risk": "风险号", "unknown": "库无"}
# the four result packages a customer downloads (库无 has none)
PACKAGES = {"real": "实号包", "silent": "沉默号包", "empty": "空号包", "risk": "风险包"}

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Rules:
    fresh_days: int = 30
    silent_days: int = 90
    unreachable_min: int = 3
    upstream_below: float = 0.80


@dataclass(slots=True)
class History:
    """What the platform's own receipts say about one number."""

    last_delivered_at: int | None = None
    last_empty_at: int | None = None  # newest receipt meaning empty / unallocated
    empty_receipts: int = 0
    unreachable_receipts: int = 0  # switched off / suspended receipts
    last_unreachable_at: int | None = None


@dataclass(frozen=True, slots=True)
class Upstream:
    """An upstream provider's answer for one number: ``status`` ok | timeout | error | open."""

    provider: str
    status: str
    cls: str = "unknown"
    confidence: float = 0.0
    detail: str = ""


@dataclass(slots=True)
class Verdict:
    cls: str
    confidence: float
    evidence: list[str] = field(default_factory=list)
    upstream_status: str = ""  # "" when no upstream was asked


def own_verdict(
    allocated: bool,
    valid: bool,
    blacklisted: bool,
    complaints: int,
    history: History | None,
    now_ms: int,
    rules: Rules = Rules(),
) -> Verdict:
    """The verdict of the platform's own evidence (rules 1-3, else unknown)."""
    if not valid:
        return Verdict("empty", 0.99, ["plan:invalid"])
    if not allocated:
        return Verdict("empty", 0.99, ["plan:unallocated"])
    evidence = ["plan:allocated"]
    if blacklisted or complaints:
        if blacklisted:
            evidence.append("blacklist")
        if complaints:
            evidence.append(f"complaints:{complaints}")
        conf = 0.95 if blacklisted else (0.90 if complaints >= 2 else 0.80)
        return Verdict("risk", conf, evidence)
    h = history
    if h is not None:
        delivered = h.last_delivered_at
        if h.last_empty_at is not None and (delivered is None or h.last_empty_at > delivered):
            evidence.append(f"history:empty_receipt:{h.empty_receipts}")
            if delivered is not None:
                evidence.append(f"history:delivered:{_days(now_ms, delivered)}d")
            return Verdict("empty", 0.95 if h.empty_receipts >= 2 else 0.90, evidence)
        if delivered is not None:
            days = _days(now_ms, delivered)
            evidence.append(f"history:delivered:{days}d")
            if days <= rules.fresh_days:
                return Verdict("real", 0.95, evidence)
            if days <= rules.silent_days:
                return Verdict("real", 0.85, evidence)
            return Verdict("silent", 0.70, evidence)
        if h.unreachable_receipts >= rules.unreachable_min:
            evidence.append(f"history:unreachable:{h.unreachable_receipts}")
            return Verdict("silent", 0.60, evidence)
        if h.unreachable_receipts:
            evidence.append(f"history:unreachable:{h.unreachable_receipts}")
    return Verdict("unknown", 0.0, evidence)


class OwnVerdicts:
    """``own_verdict`` of many valid numbers at one clock: the verdict depends only on the plan, the risk
    evidence and, of the history, the days since the last delivery, whether an empty receipt is newer,
    and the receipt counts, so each distinct combination is computed once and its verdict shared (a
    100,000-number batch has a few hundred). Shared verdicts must not be mutated (``decide`` copies)."""

    __slots__ = ("_memo", "now_ms", "rules")

    def __init__(self, now_ms: int, rules: Rules = Rules()) -> None:
        self.now_ms = now_ms
        self.rules = rules
        self._memo: dict[tuple[object, ...], Verdict] = {}

    def of(self, allocated: bool, blacklisted: bool, complaints: int, history: History | None) -> Verdict:
        if history is None:
            key: tuple[object, ...] = (allocated, blacklisted, complaints)
        else:
            delivered, empty_at = history.last_delivered_at, history.last_empty_at
            key = (
                allocated, blacklisted, complaints,
                None if delivered is None else _days(self.now_ms, delivered),
                empty_at is not None and (delivered is None or empty_at > delivered),
                history.empty_receipts, history.unreachable_receipts,
            )  # fmt: skip
        v = self._memo.get(key)
        if v is None:
            v = self._memo[key] = own_verdict(
                allocated, True, blacklisted, complaints, history, self.now_ms, self.rules
            )
        return v


def needs_upstream(own: Verdict, rules: Rules = Rules()) -> bool:
    """Whether an upstream provider should be asked: the plan did not rule the number out and the own
    evidence is inconclusive (unknown, or weaker than ``upstream_below``)."""
    if own.evidence and own.evidence[0].startswith("plan:") and own.evidence[0] != "plan:allocated":
        return False
    return own.cls == "unknown" or own.confidence < rules.upstream_below


def decide(own: Verdict, upstream: Upstream | None) -> Verdict:
    """Combine the own verdict with an upstream answer (rule 4)."""
    if upstream is None:
        return own
    evidence = list(own.evidence)
    if upstream.status != "ok":
        evidence.append(f"upstream:{upstream.status}")
        return Verdict(own.cls, own.confidence, evidence, upstream.status)
    evidence.append(f"upstream:{upstream.cls}")
    if upstream.cls == "unknown":
        return Verdict(own.cls, own.confidence, evidence, "ok")
    if own.cls == upstream.cls:
        conf = min(0.99, round(max(own.confidence, upstream.confidence) + 0.05, 2))
        return Verdict(own.cls, conf, evidence, "ok")
    if own.cls == "unknown" or upstream.confidence >= own.confidence or own.confidence < 0.80:
        return Verdict(upstream.cls, upstream.confidence, evidence, "ok")
    return Verdict(own.cls, own.confidence, evidence, "ok")


def billing_key(v: Verdict) -> str:
    """The outcome billing reads: no_record | timeout | error | the class."""
    if v.upstream_status == "timeout":
        return "timeout"
    if v.upstream_status in ("error", "open"):
        return "error"
    if v.cls == "unknown":
        return "no_record"
    return v.cls


def _days(now_ms: int, at: int) -> int:
    return max(0, (now_ms - at) // DAY_MS)
