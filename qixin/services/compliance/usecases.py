"""The compliance use cases every entry point calls (staff /admin routes, customer /v1 routes, CLI).

Rules:
- Reads take the ``Database`` and answer plain data; writes are either a whole use case here (customer
  actions: validated, written with their audit row in ONE transaction) or a ``Tx`` function that the
  staff use cases (``desk.ComplianceDesk``) run with the staff audit row in one transaction.
- Who may act is checked before any of these runs (staff: ``Staff.require(area)``; customers: the
  signed request's key, whose account is the only one they touch).
- List imports keep only phone numbers; every refused row comes back with its row number and reason
  (``store.parse_list_numbers``). At most ``MAX_IMPORT`` entries per request.
- Every CSV export passes each cell through ``domain.export.safe_cell`` (no formula injection).
- An upload is checked for ownership of the signature before its file is written.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from qixin.domain.export import safe_row
from qixin.errors import QxError
from qixin.services.actor import Actor, audit
from qixin.services.compliance import documents, evidence, store
from qixin.store import compliance as q
from qixin.store.db import Database, Tx

MAX_IMPORT = 100_000
OPTOUT_COLUMNS = ("number", "signature", "source", "created_at")
BLACKLIST_COLUMNS = ("number", "reason", "source", "created_at")


# --- list input and CSV output ----------------------------------------------------------------------------


def list_input(numbers: Sequence[str] | None, csv_text: str | None) -> store.ParsedList:
    """``numbers`` (a JSON array) or ``csv`` text whose first column holds the numbers (a header line
    without digits is skipped), validated: rows are numbered as submitted from 1 (CSV: its records,
    the header included)."""
    if csv_text is not None:
        rows = list(csv.reader(io.StringIO(csv_text.lstrip("\ufeff"))))
        cells = [(i + 1, row[0]) for i, row in enumerate(rows) if row and row[0].strip()]
        if cells and not any(ch.isdigit() for ch in cells[0][1]):
            cells = cells[1:]  # a header line
        _check_size(len(cells))
        rejected: list[dict[str, Any]] = []
        found: dict[str, None] = {}
        for line, cell in cells:
            one = store.parse_list_numbers([cell], first_row=line)
            rejected += one.rejected
            found.update(dict.fromkeys(one.numbers))
        return store.ParsedList(list(found), rejected)
    if numbers is None:
        raise QxError("INVALID_REQUEST", "numbers 应为号码字符串数组（或用 csv 提交）")
    _check_size(len(numbers))
    return store.parse_list_numbers(list(numbers))


def _check_size(n: int) -> None:
    if n > MAX_IMPORT:
        raise QxError("TOO_MANY_NUMBERS", f"单次最多导入 {MAX_IMPORT} 个号码")


def to_csv(rows: list[dict[str, Any]], columns: Sequence[str]) -> bytes:
    """UTF-8 CSV with BOM (spreadsheet programs then show Chinese text), every cell made safe."""
    out = io.StringIO()
    out.write("\ufeff")
    w = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore", lineterminator="\r\n")
    w.writeheader()
    w.writerows(safe_row(r) for r in rows)
    return out.getvalue().encode()


def _import_answer(added: int, parsed: store.ParsedList) -> dict[str, Any]:
    return {"added": added, "submitted": len(parsed.numbers) + len(parsed.rejected), "rejected": parsed.rejected}


# --- staff: reads ------------------------------------------------------------------------------------------


async def policy(db: Database, account_id: int) -> dict[str, Any]:
    return (await db.read(lambda tx: store.load_policy(tx, account_id))).to_dict()


async def violations(db: Database, account_id: int | None, limit: int) -> list[dict[str, Any]]:
    limit = max(1, min(limit, 1000))
    return await db.read(lambda tx: store.list_violations(tx, account_id, limit))


async def blacklist(db: Database) -> list[dict[str, Any]]:
    return await db.read(store.list_blacklist)


async def optouts(db: Database, account_id: int) -> list[dict[str, Any]]:
    return await db.read(lambda tx: store.list_optouts(tx, account_id))


async def lexicon(db: Database, category: str | None) -> tuple[int, list[dict[str, str]], list[str]]:
    v, words, allow = await db.read(lambda tx: store.load_lexicon_rows(tx))
    items = [{"word": e.word, "category": e.category} for e in words if category in (None, e.category)]
    return v, items, allow


async def lexicon_versions(db: Database) -> list[dict[str, Any]]:
    return await db.read(store.list_lexicon_versions)


async def prepare_lexicon_change(db: Database, body: dict[str, Any]) -> tuple[store.LexiconChange, int]:
    """The change and the version it was checked against; LEXICON_INVALID before anything is written."""
    change = store.LexiconChange.from_body(body)
    base, words, allow = await db.read(lambda tx: store.load_lexicon_rows(tx))
    new_words, new_allow = change.apply_to(words, allow)
    store.validate_lexicon(new_words, new_allow, base + 1)
    return change, base


async def complaints(db: Database) -> list[dict[str, Any]]:
    return await db.read(evidence.list_complaints)


async def evidence_report(db: Database, complaint_id: int) -> dict[str, Any]:
    return await db.read(lambda tx: evidence.evidence(tx, complaint_id))


async def signature_application(db: Database, signature_id: int) -> dict[str, Any]:
    return await db.read(lambda tx: documents.signature_application(tx, signature_id))


async def document_file(db: Database, data_dir: Path, document_id: int) -> tuple[bytes, str]:
    """(content, content type) of a qualification document."""
    meta = await db.read(lambda tx: documents.document(tx, document_id))
    return documents.read_file(data_dir, meta["path"]), str(meta["content_type"])


# --- staff: writes (run by desk.ComplianceDesk with the audit row) -------------------------------------------


def import_blacklist(tx: Tx, parsed: store.ParsedList, reason: str) -> dict[str, Any]:
    return _import_answer(store.add_blacklist(tx, parsed.numbers, "staff", reason), parsed)


def remove_blacklist(tx: Tx, parsed: store.ParsedList) -> dict[str, Any]:
    return {"removed": store.remove_blacklist(tx, parsed.numbers), "rejected": parsed.rejected}


def import_optouts(tx: Tx, account_id: int, parsed: store.ParsedList, signature: str) -> dict[str, Any]:
    return _import_answer(store.add_optouts(tx, account_id, parsed.numbers, "staff", signature), parsed)


def suspend_signature(tx: Tx, signature_id: int, reason: str) -> dict[str, Any]:
    if not q.suspend_signature(tx, signature_id, reason):
        raise QxError("NOT_FOUND", "签名不存在")
    return {"id": signature_id, "status": "suspended", "reason": reason}


# --- customers ------------------------------------------------------------------------------------------------


# (tx, account id, numbers) -> {number: token} for the numbers the account knows only by a privacy token
TokensOf = Callable[[Tx, int, Sequence[str]], dict[str, str]]


async def own_optouts(db: Database, actor: Actor, tokens_of: TokensOf | None = None) -> list[dict[str, Any]]:
    """A customer's own opt-out list; with ``tokens_of`` (services/tokens.py), a number the account holds a
    privacy token for is listed as its token (an opt-out by a "TD" reply from a tokenised number must not
    show the customer the real number)."""
    account_id = actor.account_for(None)

    def job(tx: Tx) -> list[dict[str, Any]]:
        rows = store.list_optouts(tx, account_id)
        if tokens_of is not None and rows:
            shown = tokens_of(tx, account_id, [r["number"] for r in rows])
            for r in rows:
                r["number"] = shown.get(r["number"], r["number"])
        return rows

    return await db.read(job)


async def import_own_optouts(db: Database, actor: Actor, parsed: store.ParsedList, signature: str) -> dict[str, Any]:
    """A customer adds numbers to their own opt-out list (audited in the same transaction)."""
    account_id = actor.account_for(None)

    def job(tx: Tx) -> dict[str, Any]:
        added = store.add_optouts(tx, account_id, parsed.numbers, "import", signature)
        audit(tx, actor, "optouts.import", f"account:{account_id}", {"added": added, "rejected": len(parsed.rejected)})
        return _import_answer(added, parsed)

    return await db.write(job)


def _console_change(actor: Actor) -> None:
    """A console user changes the account's lists only with a role that sends (owner, operator)."""
    if actor.is_customer and actor.role is not None:
        actor.require("console.send")


async def add_own_optouts(db: Database, actor: Actor, parsed: store.ParsedList, signature: str) -> dict[str, Any]:
    """``import_own_optouts`` for a console user, who needs ``console.send``."""
    _console_change(actor)
    return await import_own_optouts(db, actor, parsed, signature)


async def remove_own_optouts(db: Database, actor: Actor, parsed: store.ParsedList) -> dict[str, Any]:
    """A customer takes numbers off their own opt-out list (audited in the same transaction); a console
    user needs ``console.send``."""
    _console_change(actor)
    account_id = actor.account_for(None)

    def job(tx: Tx) -> dict[str, Any]:
        removed = store.remove_optouts(tx, account_id, parsed.numbers)
        audit(tx, actor, "optouts.remove", f"account:{account_id}", {"removed": removed})
        return {"removed": removed, "rejected": parsed.rejected}

    return await db.write(job)


def decode_document(content_base64: str) -> bytes:
    try:
        return base64.b64decode(content_base64, validate=True)
    except (binascii.Error, ValueError) as e:
        raise QxError("DOCUMENT_INVALID", "content_base64 不是合法的 Base64") from e


async def upload_document(
    db: Database, data_dir: Path, actor: Actor, signature_id: int, filename: str, content_type: str, content: bytes
) -> dict[str, Any]:
    """Store a qualification document of one of the customer's signatures: NOT_FOUND (nothing written,
    no file) for a signature that is not theirs; DOCUMENT_INVALID for content that is not PDF/JPEG/PNG."""
    if actor.is_customer and actor.role is not None:  # a console user: a role that applies (owner, operator)
        actor.require("console.apply")
    account_id = actor.account_for(None)
    await db.read(lambda tx: documents.check_owner(tx, account_id, signature_id))
    stored = documents.store_file(data_dir, account_id, filename, content_type, content)

    def job(tx: Tx) -> dict[str, Any]:
        out = documents.add_document(tx, account_id, signature_id, stored)
        audit(tx, actor, "signature.document", f"signatures:{signature_id}", out)
        return out

    return await db.write(job)
