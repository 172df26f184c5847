"""Compliance queries: every SQL statement of the compliance services and routes, and nothing else.

Rules:
- Each function takes a ``Tx`` and plain values and returns rows, plain values or small dataclasses;
  no business rule lives here (validation, freezing thresholds, who may act: services/compliance).
- ``?`` placeholders only; the same text runs on SQLite and PostgreSQL (``Tx`` rewrites them).
- Batch lookups are ONE query whatever the batch size: the numbers travel as one JSON array parameter
  (SQLite ``json_each``) or one array (PostgreSQL ``= ANY``), never a query per number.
- Inserts into the lists ignore rows already present and answer how many were new.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from qixin.store.db import Tx

# --- accounts ---------------------------------------------------------------------------------------


def account_exists(tx: Tx, account_id: int) -> bool:
    return tx.one("SELECT 1 FROM accounts WHERE id = ?", (account_id,)) is not None


def account_status(tx: Tx, account_id: int) -> str | None:
    row = tx.one("SELECT status FROM accounts WHERE id = ?", (account_id,))
    return None if row is None else str(row[0])


def set_account_status(tx: Tx, account_id: int, status: str) -> None:
    tx.execute("UPDATE accounts SET status = ? WHERE id = ?", (status, account_id))


def freeze_if_active(tx: Tx, account_id: int) -> bool:
    """Freeze an active account; False when it was not active (already frozen, closed, missing)."""
    tx.execute("UPDATE accounts SET status = 'frozen' WHERE id = ? AND status = 'active'", (account_id,))
    return tx.rowcount > 0


def freeze_packages(tx: Tx, account_id: int, at: int) -> int:
    """The account's active packages become ``frozen`` (not usable, not swept for expiry); the time is
    kept in ``package_freezes`` so that thawing can give the frozen time back."""
    tx.execute(
        "INSERT INTO package_freezes (package_id, account_id, frozen_at)"
        " SELECT id, account_id, ? FROM packages WHERE account_id = ? AND status = 'active'",
        (at, account_id),
    )
    tx.execute("UPDATE packages SET status = 'frozen' WHERE account_id = ? AND status = 'active'", (account_id,))
    return tx.rowcount


def thaw_packages(tx: Tx, account_id: int, at: int) -> int:
    """Frozen packages active again; a ``term`` package's expiry moves on by the time it was frozen (a
    ``year`` package keeps its 31 December)."""
    rows = tx.all("SELECT package_id, frozen_at FROM package_freezes WHERE account_id = ?", (account_id,))
    tx.executemany(
        "UPDATE packages SET status = 'active',"
        " expires_at = CASE WHEN kind = 'term' THEN expires_at + ? ELSE expires_at END"
        " WHERE id = ? AND status = 'frozen'",
        [(max(0, at - int(frozen_at)), int(pid)) for pid, frozen_at in rows],
    )
    tx.execute("DELETE FROM package_freezes WHERE account_id = ?", (account_id,))
    return len(rows)


# --- policies ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyRow:
    """One ``account_policies`` row as stored (lists comma-separated, limits as JSON text)."""

    permit_24h: bool
    international: bool
    link_policy: str
    allowed_domains: str
    limits: str
    optout_words: str
    max_number_run: int | None
    verification_window: bool
    promo_as: str = "marketing"


_POLICY_COLUMNS = (
    "permit_24h", "international", "link_policy", "allowed_domains", "limits", "optout_words", "max_number_run",
    "verification_window", "promo_as",
)  # fmt: skip


def policy_row(tx: Tx, account_id: int) -> PolicyRow | None:
    r = tx.one(f"SELECT {', '.join(_POLICY_COLUMNS)} FROM account_policies WHERE account_id = ?", (account_id,))
    if r is None:
        return None
    return PolicyRow(
        bool(r[0]), bool(r[1]), str(r[2]), r[3] or "", r[4] or "{}", r[5] or "",
        None if r[6] is None else int(r[6]), bool(r[7]), str(r[8] or "marketing"),
    )  # fmt: skip


def save_policy(tx: Tx, account_id: int, row: PolicyRow, updated_at: int) -> None:
    """Write the account's policy row (update, or insert when the account has none yet)."""
    values = (
        row.permit_24h, row.international, row.link_policy, row.allowed_domains, row.limits, row.optout_words,
        row.max_number_run, row.verification_window, row.promo_as, updated_at, account_id,
    )  # fmt: skip
    sets = ", ".join(f"{c} = ?" for c in (*_POLICY_COLUMNS, "updated_at"))
    tx.execute(f"UPDATE account_policies SET {sets} WHERE account_id = ?", values)
    if tx.rowcount == 0:
        columns = (*_POLICY_COLUMNS, "updated_at", "account_id")
        tx.execute(
            f"INSERT INTO account_policies ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", values
        )


# --- blacklist and opt-outs ---------------------------------------------------------------------------


def _in_numbers(tx: Tx, column: str, numbers: Sequence[str]) -> tuple[str, tuple[Any, ...]]:
    """A ``column IN (...)`` condition for a whole batch, with ONE parameter."""
    if tx.is_pg:
        return f"{column} = ANY(?)", (list(numbers),)
    return f"{column} IN (SELECT value FROM json_each(?))", (orjson.dumps(list(numbers)).decode(),)


def blocked_numbers(
    tx: Tx, account_id: int, signature: str, numbers: Sequence[str], with_optouts: bool
) -> tuple[set[str], set[str]]:
    """(blacklisted, opted out for the signature or all signatures) members of ``numbers``: one query."""
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


def _insert_ignore(tx: Tx, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> int:
    if not rows:
        return 0
    marks = ", ".join("?" * len(columns))
    verb = "INSERT" if tx.is_pg else "INSERT OR IGNORE"
    tail = " ON CONFLICT DO NOTHING" if tx.is_pg else ""
    tx.executemany(f"{verb} INTO {table} ({', '.join(columns)}) VALUES ({marks}){tail}", rows)
    return max(tx.rowcount, 0)  # executemany sums the rows changed, on both drivers


def last_signature_to(tx: Tx, account_id: int, number: str, since: int) -> str | None:
    """The signature of the newest final message the account sent to ``number`` since ``since`` (ms), or
    None (reads the partial index ix_messages_number_done: its condition is repeated here)."""
    r = tx.one(
        "SELECT b.signature FROM messages m JOIN batches b ON b.id = m.batch_id"
        " WHERE m.number = ? AND m.done_at IS NOT NULL AND m.status IN ('delivered', 'undelivered', 'expired')"
        " AND m.account_id = ?"
        " AND m.created_at >= ? ORDER BY m.created_at DESC LIMIT 1",
        (number, account_id, since),
    )
    return None if r is None else str(r[0])


def insert_optouts(tx: Tx, account_id: int, numbers: Sequence[str], signature: str, source: str, at: int) -> int:
    rows = [(account_id, n, signature, source, at) for n in numbers]
    return _insert_ignore(tx, "optouts", ("account_id", "number", "signature", "source", "created_at"), rows)


def delete_optouts(tx: Tx, account_id: int, numbers: Sequence[str]) -> int:
    if not numbers:
        return 0
    tx.executemany("DELETE FROM optouts WHERE account_id = ? AND number = ?", [(account_id, n) for n in numbers])
    return max(tx.rowcount, 0)


def optouts_of(tx: Tx, account_id: int) -> list[Any]:
    """(number, signature, source, created_at) rows, oldest first."""
    return tx.all(
        "SELECT number, signature, source, created_at FROM optouts WHERE account_id = ? ORDER BY created_at, number",
        (account_id,),
    )


def insert_blacklist(tx: Tx, numbers: Sequence[str], source: str, reason: str, at: int) -> int:
    rows = [(n, reason, source, at) for n in numbers]
    return _insert_ignore(tx, "blacklist", ("number", "reason", "source", "created_at"), rows)


def delete_blacklist(tx: Tx, numbers: Sequence[str]) -> int:
    if not numbers:
        return 0
    tx.executemany("DELETE FROM blacklist WHERE number = ?", [(n,) for n in numbers])
    return max(tx.rowcount, 0)


def blacklist_rows(tx: Tx) -> list[Any]:
    """(number, reason, source, created_at) rows, oldest first."""
    return tx.all("SELECT number, reason, source, created_at FROM blacklist ORDER BY created_at, number")


# --- violations ---------------------------------------------------------------------------------------


def insert_violations(tx: Tx, account_id: int, items: Sequence[tuple[str, str]], content: str, at: int) -> None:
    """One row per (code, detail as JSON text)."""
    tx.executemany(
        "INSERT INTO violations (account_id, code, detail, content, created_at) VALUES (?, ?, ?, ?, ?)",
        [(account_id, code, detail, content, at) for code, detail in items],
    )


def count_violations(tx: Tx, account_id: int, since: int, codes: Sequence[str]) -> int:
    """Violations of ``codes`` the account has had after ``since`` (ms UTC)."""
    if not codes:
        return 0
    row = tx.one(
        f"SELECT COUNT(*) FROM violations WHERE account_id = ? AND created_at > ? AND code IN ({tx.in_list(codes)})",
        (account_id, since, *codes),
    )
    return int(row[0])


def violation_rows(tx: Tx, account_id: int | None, limit: int) -> list[Any]:
    """(id, account_id, code, detail JSON, content, created_at), newest first."""
    sql = "SELECT id, account_id, code, detail, content, created_at FROM violations"
    params: tuple[Any, ...] = ()
    if account_id is not None:
        sql += " WHERE account_id = ?"
        params = (account_id,)
    return tx.all(sql + " ORDER BY id DESC LIMIT ?", (*params, limit))


# --- the versioned lexicon ------------------------------------------------------------------------------


def lexicon_version(tx: Tx) -> int:
    return int(tx.one("SELECT COALESCE(MAX(version), 0) FROM lexicon_versions")[0])


def lexicon_entries(tx: Tx, version: int) -> list[Any]:
    """(kind, word, category) of the entries live in ``version``, in insertion order."""
    return tx.all(
        "SELECT kind, word, category FROM lexicon_entries"
        " WHERE added_in <= ? AND (removed_in IS NULL OR removed_in > ?) ORDER BY id",
        (version, version),
    )


def insert_lexicon_entries(tx: Tx, rows: Sequence[tuple[str, str, str, int]]) -> None:
    """(kind, word, category, added_in) rows."""
    tx.executemany("INSERT INTO lexicon_entries (kind, word, category, added_in) VALUES (?, ?, ?, ?)", rows)


def retire_lexicon_entry(tx: Tx, kind: str, word: str, version: int) -> int:
    """Mark the live entry ``word`` of ``kind`` removed in ``version``; how many rows it touched."""
    tx.execute(
        "UPDATE lexicon_entries SET removed_in = ? WHERE kind = ? AND word = ? AND removed_in IS NULL",
        (version, kind, word),
    )
    return max(tx.rowcount, 0)


def insert_lexicon_version(
    tx: Tx, version: int, actor: str, note: str, added: int, removed: int, at: int, if_absent: bool = False
) -> bool:  # fmt: skip
    """Insert a version row; True when written. ``if_absent``: nothing if it exists (processes seeding at
    the same moment: PostgreSQL waits for the other's commit, then does nothing)."""
    cur = tx.execute(
        "INSERT INTO lexicon_versions (version, actor, note, added, removed, created_at) VALUES (?, ?, ?, ?, ?, ?)"
        + (" ON CONFLICT (version) DO NOTHING" if if_absent else ""),
        (version, actor, note, added, removed, at),
    )
    return bool(cur.rowcount and cur.rowcount > 0)


def lexicon_version_rows(tx: Tx, limit: int) -> list[Any]:
    """(version, actor, note, added, removed, created_at), newest first."""
    return tx.all(
        "SELECT version, actor, note, added, removed, created_at FROM lexicon_versions ORDER BY version DESC LIMIT ?",
        (limit,),
    )


# --- batches, messages and complaints --------------------------------------------------------------------


def insert_batch_audience(tx: Tx, batch_id: int, account_id: int, audience: str, at: int) -> None:
    tx.execute(
        "INSERT INTO batch_audience (batch_id, account_id, audience, created_at) VALUES (?, ?, ?, ?)",
        (batch_id, account_id, audience, at),
    )


def message_account(tx: Tx, message_id: int) -> int | None:
    """The account that sent message ``message_id`` (None: no such message)."""
    row = tx.one("SELECT account_id FROM messages WHERE id = ?", (message_id,))
    return None if row is None else int(row[0])


def last_sender_to(tx: Tx, number: str) -> int | None:
    """The account of the newest message to ``number``, if any."""
    row = tx.one("SELECT account_id FROM messages WHERE number = ? ORDER BY created_at DESC LIMIT 1", (number,))
    return None if row is None else int(row[0])


def insert_complaint(
    tx: Tx, number: str, message_id: int | None, account_id: int | None, note: str, actor: str, at: int
) -> int:
    row = tx.one(
        "INSERT INTO complaints (number, message_id, account_id, note, actor, created_at) VALUES (?, ?, ?, ?, ?, ?)"
        " RETURNING id",
        (number, message_id, account_id, note, actor, at),
    )
    return int(row[0])


_COMPLAINT = "SELECT id, number, message_id, account_id, note, actor, created_at FROM complaints"


def complaint_row(tx: Tx, complaint_id: int) -> Any:
    """(id, number, message_id, account_id, note, actor, created_at) or None."""
    return tx.one(_COMPLAINT + " WHERE id = ?", (complaint_id,))


def complaint_rows(tx: Tx, limit: int) -> list[Any]:
    """Rows as :func:`complaint_row`, newest first."""
    return tx.all(_COMPLAINT + " ORDER BY id DESC LIMIT ?", (limit,))


_EVIDENCE = (
    "SELECT m.id, m.account_id, a.name, m.number, b.signature, m.type, COALESCE(m.content, b.content),"
    " m.batch_id, b.total, au.audience, m.created_at, m.submitted_at, m.done_at, m.status, m.carrier,"
    " m.carrier_stat, m.carrier_err, m.channel"
    " FROM messages m JOIN batches b ON b.id = m.batch_id LEFT JOIN accounts a ON a.id = m.account_id"
    " LEFT JOIN batch_audience au ON au.batch_id = m.batch_id"
)


def evidence_by_message(tx: Tx, message_id: int) -> list[Any]:
    """The evidence columns (services/compliance/evidence.COLUMNS order) of one message."""
    return tx.all(_EVIDENCE + " WHERE m.id = ?", (message_id,))


def evidence_by_number(tx: Tx, number: str, limit: int) -> list[Any]:
    """The evidence columns of the newest ``limit`` messages to ``number``."""
    return tx.all(_EVIDENCE + " WHERE m.number = ? ORDER BY m.created_at DESC LIMIT ?", (number, limit))


# --- signatures and qualification documents ----------------------------------------------------------------


def signature_of_account(tx: Tx, signature_id: int, account_id: int) -> bool:
    row = tx.one("SELECT 1 FROM signatures WHERE id = ? AND account_id = ?", (signature_id, account_id))
    return row is not None


def signature_row(tx: Tx, signature_id: int) -> Any:
    """(id, account_id, name, status, reason) or None."""
    return tx.one("SELECT id, account_id, name, status, reason FROM signatures WHERE id = ?", (signature_id,))


def suspend_signature(tx: Tx, signature_id: int, reason: str) -> bool:
    """Suspend the signature; False when there is no such signature."""
    tx.execute("UPDATE signatures SET status = 'suspended', reason = ? WHERE id = ?", (reason, signature_id))
    return tx.rowcount > 0


def insert_signature_info(tx: Tx, signature_id: int, account_id: int, purpose: str, at: int) -> None:
    tx.execute(
        "INSERT INTO signature_info (signature_id, account_id, purpose, updated_at) VALUES (?, ?, ?, ?)",
        (signature_id, account_id, purpose, at),
    )


def signature_purpose(tx: Tx, signature_id: int) -> str | None:
    row = tx.one("SELECT purpose FROM signature_info WHERE signature_id = ?", (signature_id,))
    return None if row is None else str(row[0])


def insert_document(
    tx: Tx, account_id: int, signature_id: int, filename: str, content_type: str, size: int, sha256: str,
    path: str, at: int,
) -> int:  # fmt: skip
    row = tx.one(
        "INSERT INTO qualification_documents (account_id, signature_id, filename, content_type, size, sha256, path,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (account_id, signature_id, filename, content_type, size, sha256, path, at),
    )
    return int(row[0])


def documents_of_signature(tx: Tx, signature_id: int) -> list[Any]:
    """(id, filename, content_type, size, sha256, created_at) rows, in upload order."""
    return tx.all(
        "SELECT id, filename, content_type, size, sha256, created_at FROM qualification_documents"
        " WHERE signature_id = ? ORDER BY id",
        (signature_id,),
    )


def document_row(tx: Tx, document_id: int) -> Any:
    """(id, filename, content_type, path) or None."""
    return tx.one("SELECT id, filename, content_type, path FROM qualification_documents WHERE id = ?", (document_id,))
