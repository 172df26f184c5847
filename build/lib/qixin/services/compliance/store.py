"""Compliance data in the database: policies, opt-outs, blacklist, violations, freezing, lexicon versions.

Rules:
- Functions take a ``Tx`` and are run as one write job (or a read); a function that raises ``QxError``
  does so before writing (store/db.py rule).
- Batch lookups are ONE query whatever the batch size: the numbers travel as one JSON array parameter
  (SQLite ``json_each``) or one array (PostgreSQL ``= ANY``), never a query per number.
- Every list change and every freeze writes an audit row in the same transaction (by the caller for
  staff actions, here for the system's own actions such as an automatic freeze).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from qixin.domain.compliance import CATEGORIES, LINK_POLICIES, Lexicon, LexiconEntry, default_entries
from qixin.domain.compliance.default_lexicon import DEFAULT_ALLOW
from qixin.errors import QxError
from qixin.services.staff import audit
from qixin.store.db import Tx, now_ms

LIMIT_KEYS = ("verification", "any_sender", "template", "same_content")


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
        }


def _split(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in (text or "").split(",") if x.strip())


def load_policy(tx: Tx, account_id: int) -> Policy:
    r = tx.one(
        "SELECT permit_24h, international, link_policy, allowed_domains, limits, optout_words, max_number_run"
        " FROM account_policies WHERE account_id = ?",
        (account_id,),
    )
    if r is None:
        return Policy(account_id)
    return Policy(
        account_id, bool(r[0]), bool(r[1]), r[2], _split(r[3]), orjson.loads(r[4] or "{}"), _split(r[5]),
        None if r[6] is None else int(r[6]),
    )  # fmt: skip


def validate_policy_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """Checked, normalised policy fields from a request body (QxError INVALID_REQUEST naming the field)."""
    from limits import parse_many

    out: dict[str, Any] = {}
    for name, value in changes.items():
        if name in ("permit_24h", "international"):
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
        elif name == "max_number_run":
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise QxError("INVALID_REQUEST", "max_number_run 应为非负整数或 null")
            out[name] = value
        else:
            raise QxError("INVALID_REQUEST", f"未知的策略字段 {name}")
    return out


def update_policy(tx: Tx, account_id: int, changes: dict[str, Any]) -> Policy:
    """Apply validated ``changes`` (see :func:`validate_policy_changes`); creates the row when missing."""
    if tx.one("SELECT 1 FROM accounts WHERE id = ?", (account_id,)) is None:
        raise QxError("NOT_FOUND", "账户不存在")
    current = load_policy(tx, account_id)
    merged = current.to_dict() | changes
    row = (
        bool(merged["permit_24h"]), bool(merged["international"]), merged["link_policy"],
        ",".join(merged["allowed_domains"]), orjson.dumps(merged["limits"]).decode(),
        ",".join(merged["optout_words"]), merged["max_number_run"], now_ms(), account_id,
    )  # fmt: skip
    tx.execute(
        "UPDATE account_policies SET permit_24h = ?, international = ?, link_policy = ?, allowed_domains = ?,"
        " limits = ?, optout_words = ?, max_number_run = ?, updated_at = ? WHERE account_id = ?",
        row,
    )
    if tx.rowcount == 0:
        tx.execute(
            "INSERT INTO account_policies (permit_24h, international, link_policy, allowed_domains, limits,"
            " optout_words, max_number_run, updated_at, account_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )
    return load_policy(tx, account_id)


# --- one-query batch lookups -------------------------------------------------------------------------


def _in_numbers(tx: Tx, column: str, numbers: Sequence[str]) -> tuple[str, tuple[Any, ...]]:
    """A ``column IN (...)`` condition for a whole batch, with ONE parameter."""
    if tx.is_pg:
        return f"{column} = ANY(?)", (list(numbers),)
    return f"{column} IN (SELECT value FROM json_each(?))", (orjson.dumps(list(numbers)).decode(),)


def blocked_numbers(
    tx: Tx, account_id: int, signature: str, numbers: Sequence[str], with_optouts: bool
) -> tuple[set[str], set[str]]:
    """(blacklisted, opted out) members of ``numbers``: one query for both lists."""
    if not numbers:
        return set(), set()
    cond_b, params_b = _in_numbers(tx, "number", numbers)
    sql = f"SELECT 'b', number FROM blacklist WHERE {cond_b}"
    params: tuple[Any, ...] = params_b
    if with_optouts:
        cond_o, params_o = _in_numbers(tx, "number", numbers)
        sql += f" UNION ALL SELECT 'o', number FROM optouts WHERE account_id = ? AND signature IN ('', ?) AND {cond_o}"
        params += (account_id, signature, *params_o)
    black: set[str] = set()
    out: set[str] = set()
    for kind, number in tx.all(sql, params):
        (black if kind == "b" else out).add(number)
    return black, out


# --- opt-outs and blacklist ----------------------------------------------------------------------------


def _insert_ignore(tx: Tx, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> int:
    if not rows:
        return 0
    marks = ", ".join("?" * len(columns))
    verb = "INSERT" if tx.is_pg else "INSERT OR IGNORE"
    tail = " ON CONFLICT DO NOTHING" if tx.is_pg else ""
    tx.executemany(f"{verb} INTO {table} ({', '.join(columns)}) VALUES ({marks}){tail}", rows)
    return max(tx.rowcount, 0)  # executemany sums the rows changed, on both drivers


def add_optouts(tx: Tx, account_id: int, numbers: Iterable[str], source: str, signature: str = "") -> int:
    """Put ``numbers`` on the account's opt-out list (for ``signature``, "" = all); returns how many were new."""
    ts = now_ms()
    rows = [(account_id, n, signature, source, ts) for n in dict.fromkeys(numbers)]
    return _insert_ignore(tx, "optouts", ("account_id", "number", "signature", "source", "created_at"), rows)


def remove_optouts(tx: Tx, account_id: int, numbers: Iterable[str]) -> int:
    rows = [(account_id, n) for n in dict.fromkeys(numbers)]
    if not rows:
        return 0
    tx.executemany("DELETE FROM optouts WHERE account_id = ? AND number = ?", rows)
    return max(tx.rowcount, 0)


def list_optouts(tx: Tx, account_id: int) -> list[dict[str, Any]]:
    rows = tx.all(
        "SELECT number, signature, source, created_at FROM optouts WHERE account_id = ? ORDER BY created_at, number",
        (account_id,),
    )
    return [dict(zip(("number", "signature", "source", "created_at"), r, strict=True)) for r in rows]


def add_blacklist(tx: Tx, numbers: Iterable[str], source: str, reason: str = "") -> int:
    ts = now_ms()
    rows = [(n, reason, source, ts) for n in dict.fromkeys(numbers)]
    return _insert_ignore(tx, "blacklist", ("number", "reason", "source", "created_at"), rows)


def remove_blacklist(tx: Tx, numbers: Iterable[str]) -> int:
    rows = [(n,) for n in dict.fromkeys(numbers)]
    if not rows:
        return 0
    tx.executemany("DELETE FROM blacklist WHERE number = ?", rows)
    return max(tx.rowcount, 0)


def list_blacklist(tx: Tx) -> list[dict[str, Any]]:
    rows = tx.all("SELECT number, reason, source, created_at FROM blacklist ORDER BY created_at, number")
    return [dict(zip(("number", "reason", "source", "created_at"), r, strict=True)) for r in rows]


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
    tx.executemany(
        "INSERT INTO violations (account_id, code, detail, content, created_at) VALUES (?, ?, ?, ?, ?)",
        [(account_id, code, orjson.dumps(detail).decode(), content, ts) for code, detail in items],
    )
    codes = list(dict.fromkeys(freeze_codes))
    if freeze_after <= 0 or not codes or not any(code in codes for code, _ in items):
        return False
    count = tx.one(
        f"SELECT COUNT(*) FROM violations WHERE account_id = ? AND created_at > ? AND code IN ({tx.in_list(codes)})",
        (account_id, ts - freeze_period_ms, *codes),
    )[0]
    if int(count) < freeze_after:
        return False
    tx.execute("UPDATE accounts SET status = 'frozen' WHERE id = ? AND status = 'active'", (account_id,))
    if tx.rowcount <= 0:
        return False
    audit(
        tx, "system", "compliance", "account.freeze", f"account:{account_id}",
        {"reason": "auto", "violations": int(count), "period_s": freeze_period_ms // 1000},
    )  # fmt: skip
    return True


def set_account_status(tx: Tx, account_id: int, frozen: bool, reason: str) -> dict[str, Any]:
    row = tx.one("SELECT status FROM accounts WHERE id = ?", (account_id,))
    if row is None:
        raise QxError("NOT_FOUND", "账户不存在")
    status = "frozen" if frozen else "active"
    tx.execute("UPDATE accounts SET status = ? WHERE id = ?", (status, account_id))
    return {"account_id": account_id, "status": status, "previous": row[0], "reason": reason}


def list_violations(tx: Tx, account_id: int | None, limit: int = 100) -> list[dict[str, Any]]:
    sql = "SELECT id, account_id, code, detail, content, created_at FROM violations"
    params: tuple[Any, ...] = ()
    if account_id is not None:
        sql += " WHERE account_id = ?"
        params = (account_id,)
    rows = tx.all(sql + " ORDER BY id DESC LIMIT ?", (*params, limit))
    keys = ("id", "account_id", "code", "detail", "content", "created_at")
    out = [dict(zip(keys, r, strict=True)) for r in rows]
    for item in out:
        item["detail"] = orjson.loads(item["detail"])
    return out


# --- the versioned lexicon -------------------------------------------------------------------------------


def lexicon_version(tx: Tx) -> int:
    return int(tx.one("SELECT COALESCE(MAX(version), 0) FROM lexicon_versions")[0])


def seed_lexicon(tx: Tx) -> int:
    """Version 1 = the shipped default lexicon, written once on a fresh database. Returns the version."""
    current = lexicon_version(tx)
    if current:
        return current
    entries = default_entries()
    rows: list[tuple[Any, ...]] = [("word", e.word, e.category, 1) for e in entries]
    rows += [("allow", phrase, "", 1) for phrase in DEFAULT_ALLOW]
    tx.executemany("INSERT INTO lexicon_entries (kind, word, category, added_in) VALUES (?, ?, ?, ?)", rows)
    tx.execute(
        "INSERT INTO lexicon_versions (version, actor, note, added, removed, created_at) VALUES (1, ?, ?, ?, 0, ?)",
        ("system", "默认词库", len(rows), now_ms()),
    )
    return 1


def load_lexicon_rows(tx: Tx, version: int | None = None) -> tuple[int, list[LexiconEntry], list[str]]:
    """(version, words, allow-listed phrases) of ``version`` (default: the newest)."""
    v = lexicon_version(tx) if version is None else version
    rows = tx.all(
        "SELECT kind, word, category FROM lexicon_entries"
        " WHERE added_in <= ? AND (removed_in IS NULL OR removed_in > ?) ORDER BY id",
        (v, v),
    )
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
    current = lexicon_version(tx)
    if current != base_version:
        raise QxError("CONFLICT", f"词库已被修改为版本 {current}，请重试", version=current)
    v = current + 1
    removed = 0
    for word in dict.fromkeys([*change.remove, *(e.word for e in change.add)]):
        tx.execute(
            "UPDATE lexicon_entries SET removed_in = ? WHERE kind = 'word' AND word = ? AND removed_in IS NULL",
            (v, word),
        )
        removed += max(tx.rowcount, 0)
    for phrase in dict.fromkeys(change.allow_remove + change.allow_add):
        tx.execute(
            "UPDATE lexicon_entries SET removed_in = ? WHERE kind = 'allow' AND word = ? AND removed_in IS NULL",
            (v, phrase),
        )
        removed += max(tx.rowcount, 0)
    rows: list[tuple[Any, ...]] = [("word", e.word, e.category, v) for e in dict.fromkeys(change.add)]
    rows += [("allow", phrase, "", v) for phrase in dict.fromkeys(change.allow_add)]
    tx.executemany("INSERT INTO lexicon_entries (kind, word, category, added_in) VALUES (?, ?, ?, ?)", rows)
    tx.execute(
        "INSERT INTO lexicon_versions (version, actor, note, added, removed, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (v, actor, change.note, len(rows), removed, now_ms()),
    )
    return {"version": v, "added": len(rows), "removed": removed, "note": change.note}


def list_lexicon_versions(tx: Tx, limit: int = 100) -> list[dict[str, Any]]:
    rows = tx.all(
        "SELECT version, actor, note, added, removed, created_at FROM lexicon_versions ORDER BY version DESC LIMIT ?",
        (limit,),
    )
    return [dict(zip(("version", "actor", "note", "added", "removed", "created_at"), r, strict=True)) for r in rows]


# --- batch audience --------------------------------------------------------------------------------------


def record_batch_note(tx: Tx, batch_id: int, account_id: int, note: dict[str, Any]) -> None:
    """What compliance keeps with an accepted batch (called by accept's transaction)."""
    audience = note.get("audience")
    if audience:
        tx.execute(
            "INSERT INTO batch_audience (batch_id, account_id, audience, created_at) VALUES (?, ?, ?, ?)",
            (batch_id, account_id, audience, now_ms()),
        )
