"""Compliance rules over the stored data: policies, opt-outs, blacklist, violations and freezing, lexicon
versions, batch audience. The SQL is in ``qixin/store/compliance.py``; this module keeps the rules.

Rules:
- Functions take a ``Tx`` and are run as one write job (or a read); a function that raises ``QxError``
  does so before writing (store/db.py rule).
- Lists hold only numbers: mainland mobiles as their 11 digits, international numbers as
  ``+<digits>`` (see :func:`parse_list_numbers`, which reports every refused row with its reason).
- Every list change and every freeze writes an audit row in the same transaction (by the caller for
  staff actions, here for the system's own actions such as an automatic freeze).
- Policy: the 24-hour permit lifts the general window for verification and notification; the sending
  window never holds verification codes unless the account's ``verification_window`` is set.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from qixin.domain.compliance import CATEGORIES, LINK_POLICIES, Lexicon, LexiconEntry, default_entries
from qixin.domain.compliance.default_lexicon import DEFAULT_ALLOW
from qixin.domain.compliance.typecheck import PROMO_AS
from qixin.domain.numbers import mask, normalize_cn_mobile
from qixin.errors import QxError
from qixin.services.actor import Actor, audit
from qixin.services.compliance.intl import international_number
from qixin.store import compliance as q
from qixin.store import review as review_store
from qixin.store.db import Tx, now_ms

LIMIT_KEYS = ("verification", "any_sender", "template", "same_content")
BOOL_FIELDS = ("permit_24h", "international", "verification_window")


# --- policies ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Policy:
    """An account's compliance policy (defaults when the account has no ``account_policies`` row)."""

    account_id: int
    permit_24h: bool = False
    international: bool = False
    link_policy: str = "allowed"
    allowed_domains: tuple[str, ...] = ()
    limits: dict[str, str] = field(default_factory=dict)  # overrides, keys of LIMIT_KEYS
    optout_words: tuple[str, ...] = ()
    max_number_run: int | None = None
    verification_window: bool = False  # True: verification codes wait for the window like notifications
    promo_as: str = "marketing"  # a notification/verification reading as marketing: marketing | refuse | off

    def to_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "permit_24h": self.permit_24h,
            "international": self.international,
            "link_policy": self.link_policy,
            "allowed_domains": list(self.allowed_domains),
            "limits": dict(self.limits),
            "optout_words": list(self.optout_words),
            "max_number_run": self.max_number_run,
            "verification_window": self.verification_window,
            "promo_as": self.promo_as,
        }


def _split(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in (text or "").split(",") if x.strip())


def load_policy(tx: Tx, account_id: int) -> Policy:
    r = q.policy_row(tx, account_id)
    if r is None:
        return Policy(account_id)
    return Policy(
        account_id, r.permit_24h, r.international, r.link_policy, _split(r.allowed_domains),
        orjson.loads(r.limits or "{}"), _split(r.optout_words), r.max_number_run, r.verification_window,
        r.promo_as,
    )  # fmt: skip


def validate_policy_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """Checked, normalised policy fields from a request body (QxError INVALID_REQUEST naming the field)."""
    from limits import parse_many

    out: dict[str, Any] = {}
    for name, value in changes.items():
        if name in BOOL_FIELDS:
            if not isinstance(value, bool):
                raise QxError("INVALID_REQUEST", f"字段 {name} 应为 true 或 false")
            out[name] = value
        elif name == "link_policy":
            if value not in LINK_POLICIES:
                raise QxError("INVALID_REQUEST", f"link_policy 必须是 {', '.join(sorted(LINK_POLICIES))} 之一")
            out[name] = value
        elif name in ("allowed_domains", "optout_words"):
            if not isinstance(value, list) or not all(isinstance(x, str) and x.strip() for x in value):
                raise QxError("INVALID_REQUEST", f"字段 {name} 应为非空字符串数组")
            if any("," in x for x in value):
                raise QxError("INVALID_REQUEST", f"字段 {name} 的条目不能包含逗号")
            out[name] = [x.strip().lower() if name == "allowed_domains" else x.strip() for x in value]
        elif name == "limits":
            if not isinstance(value, dict) or not set(value) <= set(LIMIT_KEYS):
                raise QxError("INVALID_REQUEST", f"limits 的键只能是 {', '.join(LIMIT_KEYS)}")
            for k, v in value.items():
                try:
                    if not isinstance(v, str) or not parse_many(v):
                        raise ValueError(v)
                except ValueError as e:
                    raise QxError("INVALID_REQUEST", f"limits.{k} 格式错误，应如 1/minute;5/hour;10/day") from e
            out[name] = {str(k): str(v) for k, v in value.items()}
        elif name == "promo_as":
            if value not in PROMO_AS:
                raise QxError("INVALID_REQUEST", f"promo_as 必须是 {', '.join(PROMO_AS)} 之一")
            out[name] = value
        elif name == "max_number_run":
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise QxError("INVALID_REQUEST", "max_number_run 应为非负整数或 null")
            out[name] = value
        else:
            raise QxError("INVALID_REQUEST", f"未知的策略字段 {name}")
    return out


def update_policy(tx: Tx, account_id: int, changes: dict[str, Any]) -> Policy:
    """Apply validated ``changes`` (see :func:`validate_policy_changes`); creates the row when missing."""
    if not q.account_exists(tx, account_id):
        raise QxError("NOT_FOUND", "账户不存在")
    merged = load_policy(tx, account_id).to_dict() | changes
    row = q.PolicyRow(
        bool(merged["permit_24h"]), bool(merged["international"]), merged["link_policy"],
        ",".join(merged["allowed_domains"]), orjson.dumps(merged["limits"]).decode(),
        ",".join(merged["optout_words"]), merged["max_number_run"], bool(merged["verification_window"]),
        merged["promo_as"],
    )  # fmt: skip
    q.save_policy(tx, account_id, row, now_ms())
    return load_policy(tx, account_id)


# --- list numbers ----------------------------------------------------------------------------------------


def list_number(raw: str) -> str | None:
    """The stored form of a number for the lists (11 digits, or ``+<digits>`` abroad); None if not one."""
    return normalize_cn_mobile(raw) or international_number(raw)


@dataclass(frozen=True, slots=True)
class ParsedList:
    numbers: list[str]  # stored forms, unique, first-seen order
    rejected: list[dict[str, Any]]  # {"row": 1-based position, "value": masked, "reason": 中文}


def parse_list_numbers(raw: Sequence[str], first_row: int = 1) -> ParsedList:
    """Validate submitted list entries: only phone numbers are kept; every other entry is reported with
    its row (``first_row`` = the row number of ``raw[0]``) and why, so nothing invalid is ever stored."""
    numbers: dict[str, None] = {}
    rejected: list[dict[str, Any]] = []
    for i, value in enumerate(raw):
        if not value.strip():
            continue
        number = list_number(value) if "\n" not in value and "\r" not in value else None
        if number is None:
            reason = "含有换行" if ("\n" in value or "\r" in value) else "不是有效的手机号码"
            rejected.append({"row": first_row + i, "value": mask(value.strip()[:32]), "reason": reason})
        else:
            numbers.setdefault(number)
    return ParsedList(list(numbers), rejected)


# --- one-query batch lookups -------------------------------------------------------------------------


def blocked_numbers(
    tx: Tx, account_id: int, signature: str, numbers: Sequence[str], with_optouts: bool
) -> tuple[set[str], set[str]]:
    """(blacklisted, opted out) members of ``numbers``: one query for both lists."""
    return q.blocked_numbers(tx, account_id, signature, numbers, with_optouts)


# --- opt-outs and blacklist ----------------------------------------------------------------------------


def add_optouts(tx: Tx, account_id: int, numbers: Iterable[str], source: str, signature: str = "") -> int:
    """Put ``numbers`` on the account's opt-out list (for ``signature``, "" = all); returns how many were new."""
    return q.insert_optouts(tx, account_id, list(dict.fromkeys(numbers)), signature, source, now_ms())


def remove_optouts(tx: Tx, account_id: int, numbers: Iterable[str]) -> int:
    return q.delete_optouts(tx, account_id, list(dict.fromkeys(numbers)))


def list_optouts(tx: Tx, account_id: int) -> list[dict[str, Any]]:
    keys = ("number", "signature", "source", "created_at")
    return [dict(zip(keys, r, strict=True)) for r in q.optouts_of(tx, account_id)]


def add_blacklist(tx: Tx, numbers: Iterable[str], source: str, reason: str = "") -> int:
    return q.insert_blacklist(tx, list(dict.fromkeys(numbers)), source, reason, now_ms())


def remove_blacklist(tx: Tx, numbers: Iterable[str]) -> int:
    return q.delete_blacklist(tx, list(dict.fromkeys(numbers)))


def list_blacklist(tx: Tx) -> list[dict[str, Any]]:
    keys = ("number", "reason", "source", "created_at")
    return [dict(zip(keys, r, strict=True)) for r in q.blacklist_rows(tx)]


# --- violations and freezing -----------------------------------------------------------------------


def record_violations(
    tx: Tx,
    account_id: int,
    items: Sequence[tuple[str, dict[str, Any]]],
    content: str,
    *,
    freeze_after: int,
    freeze_period_ms: int,
    freeze_codes: Iterable[str],
) -> bool:
    """Store one violation row per (code, detail) with the message text; freeze the account when it has
    reached ``freeze_after`` violations of ``freeze_codes`` within the period. True if it froze now."""
    ts = now_ms()
    q.insert_violations(tx, account_id, [(code, orjson.dumps(detail).decode()) for code, detail in items], content, ts)
    codes = list(dict.fromkeys(freeze_codes))
    if freeze_after <= 0 or not codes or not any(code in codes for code, _ in items):
        return False
    count = q.count_violations(tx, account_id, ts - freeze_period_ms, codes)
    if count < freeze_after or not q.freeze_if_active(tx, account_id):
        return False
    q.freeze_packages(tx, account_id, ts)
    detail = {"reason": "auto", "violations": count, "period_s": freeze_period_ms // 1000}
    audit(tx, Actor.system("compliance"), "account.freeze", f"account:{account_id}", detail)
    return True


def set_account_status(tx: Tx, account_id: int, frozen: bool, reason: str) -> dict[str, Any]:
    previous = q.account_status(tx, account_id)
    if previous is None:
        raise QxError("NOT_FOUND", "账户不存在")
    status = "frozen" if frozen else "active"
    q.set_account_status(tx, account_id, status)
    packages = 0
    if status != previous:  # c003 8.5: the account's packages are frozen with it, and thawed with it
        packages = q.freeze_packages(tx, account_id, now_ms()) if frozen else q.thaw_packages(tx, account_id, now_ms())
    return {"account_id": account_id, "status": status, "previous": previous, "reason": reason, "packages": packages}


def list_violations(tx: Tx, account_id: int | None, limit: int = 100) -> list[dict[str, Any]]:
    keys = ("id", "account_id", "code", "detail", "content", "created_at")
    out = [dict(zip(keys, r, strict=True)) for r in q.violation_rows(tx, account_id, limit)]
    for item in out:
        item["detail"] = orjson.loads(item["detail"])
    return out


# --- the versioned lexicon -------------------------------------------------------------------------------


def lexicon_version(tx: Tx) -> int:
    return q.lexicon_version(tx)


def seed_lexicon(tx: Tx) -> int:
    """Version 1 = the shipped default lexicon, written once on a fresh database. Returns the version."""
    current = q.lexicon_version(tx)
    if current:
        return current
    rows = [("word", e.word, e.category, 1) for e in default_entries()]
    rows += [("allow", phrase, "", 1) for phrase in DEFAULT_ALLOW]
    # the version row first: processes starting together (several dispatchers) seed it once
    if q.insert_lexicon_version(tx, 1, "system", "默认词库", len(rows), 0, now_ms(), if_absent=True):
        q.insert_lexicon_entries(tx, rows)
    return 1


def load_lexicon_rows(tx: Tx, version: int | None = None) -> tuple[int, list[LexiconEntry], list[str]]:
    """(version, words, allow-listed phrases) of ``version`` (default: the newest)."""
    v = q.lexicon_version(tx) if version is None else version
    rows = q.lexicon_entries(tx, v)
    words = [LexiconEntry(r[1], r[2]) for r in rows if r[0] == "word"]
    allow = [r[1] for r in rows if r[0] == "allow"]
    return v, words, allow


@dataclass(slots=True)
class LexiconChange:
    add: list[LexiconEntry] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    allow_add: list[str] = field(default_factory=list)
    allow_remove: list[str] = field(default_factory=list)
    note: str = ""

    @classmethod
    def from_body(cls, data: dict[str, Any]) -> LexiconChange:
        def strings(name: str) -> list[str]:
            value = data.get(name) or []
            if not isinstance(value, list) or not all(isinstance(x, str) and x.strip() for x in value):
                raise QxError("LEXICON_INVALID", f"{name} 应为非空字符串数组")
            return [x.strip() for x in value]

        add_raw = data.get("add") or []
        if not isinstance(add_raw, list):
            raise QxError("LEXICON_INVALID", "add 应为 [{word, category}] 数组")
        add: list[LexiconEntry] = []
        for item in add_raw:
            if not isinstance(item, dict) or not isinstance(item.get("word"), str) or not item["word"].strip():
                raise QxError("LEXICON_INVALID", "add 的每一项须有 word 和 category")
            category = item.get("category")
            if category not in CATEGORIES:
                raise QxError("LEXICON_INVALID", f"未知类别「{category}」", word=item["word"], category=category)
            add.append(LexiconEntry(item["word"].strip(), str(category)))
        change = cls(add, strings("remove"), strings("allow_add"), strings("allow_remove"), str(data.get("note") or ""))
        if not (change.add or change.remove or change.allow_add or change.allow_remove):
            raise QxError("LEXICON_INVALID", "没有任何修改")
        return change

    def apply_to(self, words: list[LexiconEntry], allow: list[str]) -> tuple[list[LexiconEntry], list[str]]:
        removed = set(self.remove) | {e.word for e in self.add}
        new_words = [e for e in words if e.word not in removed] + list(dict.fromkeys(self.add))
        gone = set(self.allow_remove)
        new_allow = list(dict.fromkeys([a for a in allow if a not in gone] + self.allow_add))
        return new_words, new_allow


def validate_lexicon(words: list[LexiconEntry], allow: list[str], version: int) -> Lexicon:
    try:
        return Lexicon(words, allow, version=version)
    except ValueError as e:
        raise QxError("LEXICON_INVALID", f"词库无效：{e}") from e


def apply_lexicon_change(tx: Tx, change: LexiconChange, base_version: int, actor: str) -> dict[str, Any]:
    """Write ``change`` as version ``base_version + 1``. QxError CONFLICT (before writing) when another
    version was published since ``base_version`` (the caller validated the change against that one)."""
    current = q.lexicon_version(tx)
    if current != base_version:
        raise QxError("CONFLICT", f"词库已被修改为版本 {current}，请重试", version=current)
    v = current + 1
    removed = 0
    for word in dict.fromkeys([*change.remove, *(e.word for e in change.add)]):
        removed += q.retire_lexicon_entry(tx, "word", word, v)
    for phrase in dict.fromkeys(change.allow_remove + change.allow_add):
        removed += q.retire_lexicon_entry(tx, "allow", phrase, v)
    rows = [("word", e.word, e.category, v) for e in dict.fromkeys(change.add)]
    rows += [("allow", phrase, "", v) for phrase in dict.fromkeys(change.allow_add)]
    q.insert_lexicon_entries(tx, rows)
    q.insert_lexicon_version(tx, v, actor, change.note, len(rows), removed, now_ms())
    return {"version": v, "added": len(rows), "removed": removed, "note": change.note}


def list_lexicon_versions(tx: Tx, limit: int = 100) -> list[dict[str, Any]]:
    keys = ("version", "actor", "note", "added", "removed", "created_at")
    return [dict(zip(keys, r, strict=True)) for r in q.lexicon_version_rows(tx, limit)]


# --- batch audience --------------------------------------------------------------------------------------


def record_batch_note(tx: Tx, batch_id: int, account_id: int, note: dict[str, Any]) -> None:
    """What compliance keeps with an accepted batch (called by accept's transaction)."""
    audience = note.get("audience")
    if audience:
        q.insert_batch_audience(tx, batch_id, account_id, audience, now_ms())
    hold = note.get("review_hold")
    if hold:  # held by the classifier: waits for manual review (services/compliance/review.py)
        evidence = orjson.dumps(hold["evidence"]).decode()
        review_store.insert_hold(tx, (
            batch_id, account_id, hold["category"], round(hold["score"] * 1000), evidence,
            hold["model_version"], hold["send_at"], now_ms(), hold["expires_at"],
        ))  # fmt: skip
