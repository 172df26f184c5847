"""The compliance screener: every send passes here before it is priced and billed (issue 4, R3).

Order of the checks for one request (docs/compliance.md):

1. content, ONCE per request whatever the number of recipients: lexicon (normalised, allow-list),
   special characters, unsubscribe instruction for marketing, link policy, and for free-text
   verification messages a code keyword. Any violation refuses the whole request (HTTP 400, the code of
   the first violation, every violation listed) and is recorded with the text; enough of them freeze
   the account automatically;
2. the audience description (required for marketing);
3. the sending window: outside it the batch is deferred (``Screening.send_at``), never refused;
   verification codes are not held unless the account's policy sets ``verification_window``;
4. per number, each refused number reported with its code and neither sent nor billed:
   INTERNATIONAL_NOT_ALLOWED, NUMBER_RANGE_FORBIDDEN (members of a run of consecutive numbers longer
   than the limit), BLACKLISTED (everything), OPTED_OUT (marketing), RATE_LIMITED (frequency limits,
   counted only for numbers that are finally accepted).

The blacklist and opt-out list are read with ONE query per request; the lexicon is compiled once per
version and swapped in without restart (every process looks for a new version every few seconds).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from qixin.domain.compliance import (
    MARKETING,
    VERIFICATION,
    ContentChecker,
    Lexicon,
    find_number_ranges,
    next_allowed_send,
    normalize,
)
from qixin.domain.compliance.templates import CODE_KEYWORDS
from qixin.domain.compliance.typecheck import (
    has_verification_code,
    promotional_action,
    reads_as_marketing,
)
from qixin.errors import QxError
from qixin.services.compliance import store
from qixin.services.compliance.classify import ContentClassifier
from qixin.services.compliance.ratelimit import Group, RateGate, parse_limit
from qixin.services.screening import Screening, ScreenRequest
from qixin.settings import ComplianceSettings
from qixin.store.db import Database, Tx, now_ms
from qixin.store.review import HELD_DUE

log = logging.getLogger(__name__)

CONTENT_CODES = frozenset({"CONTENT_FORBIDDEN", "CONTENT_SPECIAL_CHAR", "UNSUBSCRIBE_MISSING", "LINK_FORBIDDEN"})
MAX_AUDIENCE = 500
MO_SIGNATURE_DAYS = 30  # an opt-out reply applies to the signature of the last message within this many days


class ComplianceService:
    """Implements ``screening.Screener``; also the MO listener that turns 退订 replies into opt-outs."""

    def __init__(
        self,
        db: Database,
        settings: ComplianceSettings,
        *,
        redis_url: str = "",
        on_freeze: Callable[[int], None] | None = None,
        lexicon_check_interval: float = 2.0,
    ) -> None:
        self.db = db
        self.cfg = settings
        self.gate = RateGate(redis_url, settings.limits_prefix)
        self.on_freeze = on_freeze
        self.clock: Callable[[], int] = now_ms  # ms UTC; tests move it to check windows
        self.checker = ContentChecker(Lexicon([], version=0))
        self.lexicon_check_interval = lexicon_check_interval
        self._lexicon_checked = 0.0
        self._lexicon_lock = asyncio.Lock()
        self._policies: dict[int, tuple[float, store.Policy]] = {}
        self.policy_ttl = 3.0
        self.stats = {"screened": 0, "content_refused": 0, "numbers_refused": 0, "deferred": 0, "optouts_mo": 0}
        self.classifier = ContentClassifier(db, settings.classifier_thresholds)
        self.stats |= {"classifier_refused": 0, "held": 0, "typed_as_marketing": 0}

    # -- lifecycle and caches ------------------------------------------------------------------------
    async def start(self) -> None:
        """Seed the default lexicon on a fresh database and compile the current version."""
        await self.db.write(store.seed_lexicon)
        await self.reload_lexicon()
        await self.classifier.refresh()

    async def reload_lexicon(self, version: int | None = None) -> int:
        async with self._lexicon_lock:
            v, words, allow = await self.db.read(lambda tx: store.load_lexicon_rows(tx, version))
            if v != self.checker.lexicon.version or version is not None:
                lexicon = await asyncio.to_thread(Lexicon, words, allow, v)
                self.checker = self.checker.with_lexicon(lexicon)
                log.info("lexicon version %s loaded (%s words, %s allowed)", v, len(words), len(allow))
            self._lexicon_checked = time.monotonic()
            return v

    async def _fresh_lexicon(self) -> None:
        if time.monotonic() - self._lexicon_checked < self.lexicon_check_interval:
            return
        self._lexicon_checked = time.monotonic()
        v = await self.db.read(store.lexicon_version)
        if v != self.checker.lexicon.version:
            await self.reload_lexicon()
        if self.cfg.classifier:
            await self.classifier.refresh()

    def invalidate(self, account_id: int | None = None) -> None:
        if account_id is None:
            self._policies.clear()
        else:
            self._policies.pop(account_id, None)

    async def policy(self, account_id: int) -> store.Policy:
        hit = self._policies.get(account_id)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        value = await self.db.read(lambda tx: store.load_policy(tx, account_id))
        self._policies[account_id] = (time.monotonic() + self.policy_ttl, value)
        return value

    def optout_words(self, policy: store.Policy | None) -> frozenset[str]:
        words = list(self.cfg.optout_words) + (list(policy.optout_words) if policy else [])
        return frozenset(w for w in (normalize(x) for x in words) if w)

    # -- the screener ----------------------------------------------------------------------------------
    async def screen(self, req: ScreenRequest) -> Screening:
        self.stats["screened"] += 1
        account_id = req.key.account_id
        pol = await self.policy(account_id)
        await self._fresh_lexicon()

        # 1. content, once per request
        violations = self.checker.check_content(req.content, req.msg_type, pol.link_policy, pol.allowed_domains)
        items = [(v.code, v.message_zh, v.detail) for v in violations]
        free_text = req.template_id is None
        if req.msg_type == VERIFICATION and free_text and not any(k in req.content for k in CODE_KEYWORDS):
            items.append(
                (
                    "VERIFICATION_KEYWORD_MISSING",
                    "验证码短信须包含“验证码”“校验码”“动态码”或“注册码”",
                    {"keywords": list(CODE_KEYWORDS)},
                )
            )
        if items:
            await self._refuse_content(account_id, req.content, items)
        req, review = await self._classify(req, pol)  # classifier and type check (issue 15)

        # 2. audience
        note: dict[str, Any] = {}
        audience = req.body.get("audience")
        if audience is not None and not isinstance(audience, str):
            raise QxError("INVALID_REQUEST", "audience 必须是字符串")
        audience = (audience or "").strip()
        if len(audience) > MAX_AUDIENCE:
            raise QxError("INVALID_REQUEST", f"audience 最多 {MAX_AUDIENCE} 个字符")
        if req.msg_type == MARKETING and not audience:
            raise QxError("AUDIENCE_REQUIRED")
        if audience:
            note["audience"] = audience

        # 3. sending window
        send_at = req.send_at
        if self.cfg.sending_windows:
            at = send_at if send_at is not None else self.clock()
            opening = next_allowed_send(
                datetime.fromtimestamp(at / 1000, UTC), req.msg_type, pol.permit_24h,
                verification_window=pol.verification_window,
            )  # fmt: skip
            if opening is not None:
                send_at = int(opening.timestamp() * 1000)
                note["deferred_to"] = send_at
                self.stats["deferred"] += 1

        # 4. per number
        numbers = req.numbers
        rejected: dict[str, str] = {}
        if not pol.international:
            for number, carrier in numbers:
                if carrier == "intl":
                    rejected[number] = "INTERNATIONAL_NOT_ALLOWED"
        max_run = self.cfg.max_number_run if pol.max_number_run is None else pol.max_number_run
        if max_run > 0 and len(numbers) > max_run:
            domestic = [n for n, c in numbers if c != "intl" and n not in rejected]
            ranges = find_number_ranges(domestic, max_run)
            if ranges:
                present = set(domestic)  # domestic numbers are 11 digits without a leading zero
                for first, last, _ in ranges:
                    for value in range(int(first), int(last) + 1):
                        if str(value) in present:
                            rejected[str(value)] = "NUMBER_RANGE_FORBIDDEN"
        remaining = [n for n, _ in numbers if n not in rejected]
        if remaining:
            read = self.db.read_small if len(remaining) <= 100 else self.db.read
            black, out = await read(
                lambda tx: store.blocked_numbers(tx, account_id, req.signature, remaining, req.msg_type == MARKETING)
            )
            for n in black:
                rejected[n] = "BLACKLISTED"
            for n in out:
                rejected.setdefault(n, "OPTED_OUT")
            if black or out:
                remaining = [n for n in remaining if n not in rejected]

        if review is not None:  # held for manual review: queued "never" until a decision (review.py)
            note["review_hold"] = {**review, "send_at": send_at}
            note["review"] = {k: review[k] for k in ("status", "category", "category_label", "expires_at")}
            send_at = HELD_DUE
            self.stats["held"] += 1
        screening = Screening(send_at=send_at, note=note)
        if remaining and self.cfg.rate_limits:
            groups = self._limit_groups(req, pol, remaining)
            threaded = len(remaining) > 1000 or self.gate.distributed
            if req.dry_run is not None:  # a preview: check only, against the preview's own tally
                tally = req.dry_run.counts
                if threaded:
                    limited = await asyncio.to_thread(self.gate.peek, groups, tally)
                else:
                    limited = self.gate.peek(groups, tally)
            else:
                if threaded:
                    limited, reservation = await asyncio.to_thread(self.gate.reserve, groups)
                else:
                    limited, reservation = self.gate.reserve(groups)
                if reservation.keys:

                    async def release() -> None:
                        await asyncio.to_thread(reservation.release)

                    screening.release = release
            for n in limited:
                rejected[n] = "RATE_LIMITED"
        screening.rejected = rejected
        self.stats["numbers_refused"] += len(rejected)
        return screening

    async def _classify(self, req: ScreenRequest, pol: store.Policy) -> tuple[ScreenRequest, dict[str, Any] | None]:
        """The classifier's verdict (cached per distinct content) and the type checks: raises a refusal,
        or answers the request to screen on (retyped as marketing when its text reads as marketing) and
        the hold for manual review, if any."""
        items: list[tuple[str, str, dict[str, Any]]] = []
        if req.msg_type == VERIFICATION and not has_verification_code(req.content):
            items.append(("VERIFICATION_CODE_MISSING", "验证码短信须包含 4–8 位验证码（字母或数字，至少一位数字）", {}))
        if items or not self.cfg.classifier:
            if items:
                await self._refuse_content(req.key.account_id, req.content, items)
            return req, None
        d, cues = self.classifier.classify(req.content)
        if d.outcome == "refuse":
            self.stats["classifier_refused"] += 1
            detail = {"category": d.category, "category_label": d.category_label, "score": round(d.score, 3),
                      "evidence": list(d.evidence), "model_version": d.model_version}  # fmt: skip
            message = f"内容经识别属于违规类别「{d.category_label}」（依据：{'、'.join(d.evidence)}），不允许发送"
            await self._refuse_content(req.key.account_id, req.content, [("CONTENT_CLASSIFIED", message, detail)])
        action = None
        if req.msg_type != MARKETING and pol.promo_as != "off":
            marketing = reads_as_marketing(d.promotional, self.classifier.type_check, cues)
            action = promotional_action(req.msg_type, marketing, pol.promo_as)
        if action == "refuse":
            detail = {"promotional": round(d.promotional, 3), "cues": list(cues), "model_version": d.model_version,
                      "type": req.msg_type}  # fmt: skip
            message = "内容属于营销推广，不能以通知或验证码类型发送，请使用营销类型"
            await self._refuse_content(req.key.account_id, req.content, [("CONTENT_TYPE_MISMATCH", message, detail)])
        if action == "marketing":
            self.stats["typed_as_marketing"] += 1
            req = replace(req, msg_type=MARKETING)
            found = self.checker.check_content(req.content, MARKETING, pol.link_policy, pol.allowed_domains)
            if found:
                retyped = [(v.code, v.message_zh, {**v.detail, "treated_as": MARKETING}) for v in found]
                await self._refuse_content(req.key.account_id, req.content, retyped)
        if d.outcome != "hold":
            return req, None
        return req, {
            "status": "pending", "category": d.category, "category_label": d.category_label,
            "score": d.score, "evidence": list(d.evidence), "model_version": d.model_version,
            "expires_at": now_ms() + self.cfg.review_hold_ttl * 1000,
        }  # fmt: skip

    def _limit_groups(self, req: ScreenRequest, pol: store.Policy, numbers: list[str]) -> list[Group]:
        """Every frequency limit that applies to this request (see ratelimit.py for how they count)."""
        account = str(req.key.account_id)
        limits = pol.limits
        specs: list[tuple[str, tuple[str, ...]]] = [(limits.get("any_sender", self.cfg.any_sender_limit), ("any",))]
        if req.msg_type == VERIFICATION:
            specs.append((limits.get("verification", self.cfg.verification_limit), ("vc", account, req.signature)))
        else:
            tpl = str(req.template_id) if req.template_id is not None else "free"
            specs.append((limits.get("template", self.cfg.template_limit), ("tpl", account, tpl)))
            if req.msg_type == MARKETING:
                digest = hashlib.blake2b(req.content.encode(), digest_size=8).hexdigest()
                specs.append((limits.get("same_content", self.cfg.same_content_limit), ("same", account, digest)))
        return [(item, ids, numbers) for spec, ids in specs for item in parse_limit(spec)]

    async def _refuse_content(
        self, account_id: int, content: str, items: list[tuple[str, str, dict[str, Any]]]
    ) -> None:
        self.stats["content_refused"] += 1
        cfg = self.cfg
        recorded = [(code, detail) for code, _, detail in items]
        frozen = await self.db.write(
            lambda tx: store.record_violations(
                tx, account_id, recorded, content, freeze_after=cfg.freeze_after,
                freeze_period_ms=cfg.freeze_period * 1000, freeze_codes=cfg.freeze_codes,
            )
        )  # fmt: skip
        if frozen:
            log.warning("account %s frozen automatically after repeated content violations", account_id)
            if self.on_freeze:
                self.on_freeze(account_id)
        code, message, detail = items[0]
        extra = {k: v for k, v in detail.items() if k in ("word", "category", "category_label", "character", "link",
                                                          "score", "evidence", "model_version")}  # fmt: skip
        raise QxError(
            code,
            message,
            **extra,
            violations=[{"code": c, "message": m, **d} for c, m, d in items],
            **({"account_frozen": True} if frozen else {}),
        )

    # -- uplink: opt-out by MO ---------------------------------------------------------------------------
    def is_optout(self, text: str, policy: store.Policy | None = None) -> bool:
        return normalize(text.strip()) in self.optout_words(policy)

    def on_mo(self, tx: Tx, account_id: int, source: str, text: str) -> None:
        """MO listener (runs inside the uplink's transaction): a 退订 reply opts the number out."""
        record_mo_optout(tx, self, account_id, source, text)

    def with_settings(self, **changes: Any) -> None:
        """Change settings at run time (operators via config reload; tests)."""
        self.cfg = self.cfg.model_copy(update=changes)


def record_mo_optout(tx: Tx, service: ComplianceService, account_id: int | None, source: str, text: str) -> bool:
    """Opt ``source`` out of ``account_id``'s messages when ``text`` is an opt-out word. True if it did."""
    if account_id is None:
        return False
    pol = store.load_policy(tx, account_id)
    if not service.is_optout(text, pol):
        return False
    number = source[-11:] if len(source) > 11 and source.startswith(("86", "+86", "0086")) else source
    # per signature: the reply opts out of the signature whose message the number last received from
    # the account (within MO_SIGNATURE_DAYS); with none found, of all the account's signatures
    since = now_ms() - MO_SIGNATURE_DAYS * 86_400_000
    signature = store.q.last_signature_to(tx, account_id, number, since) or ""
    store.add_optouts(tx, account_id, [number], "mo", signature)
    service.stats["optouts_mo"] += 1
    return True
