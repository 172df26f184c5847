"""The staff side of compliance as use cases: policies, freezing, the blacklist, opt-outs imported by
staff, the lexicon, complaints, suspending a signature, and the reads behind them.

Each method checks the actor's area first (``domain/roles.py``: accounts.write for policies and
freezing, compliance for lists, lexicon and complaints, review for signatures), writes its change and
the audit row in one transaction (``UseCase.change``) and then invalidates the compliance caches. The
HTTP routes (api/compliance.py), the CLI and the console call these and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from qixin.services.actor import Actor, UseCase
from qixin.services.compliance import documents, usecases
from qixin.services.compliance.service import ComplianceService
from qixin.services.compliance.store import LexiconChange, ParsedList
from qixin.store.db import Database


class ComplianceDesk(UseCase):
    def __init__(self, db: Database, service: ComplianceService, on_change: Callable[[], None] | None = None) -> None:
        super().__init__(db, on_change)
        self.service = service

    async def _change(self, actor: Actor, area: str, action: str, target: str, fn: Callable[[Any], Any]) -> Any:
        actor.require(area)
        out = await self.change(actor, action, target, fn)
        self.service.invalidate()
        return out

    # -- policies and freezing (accounts.write) ------------------------------------------------------
    async def policy(self, actor: Actor, account_id: int) -> dict[str, Any]:
        actor.require("compliance")
        return await usecases.policy(self.db, account_id)

    async def set_policy(self, actor: Actor, account_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        actor.require("accounts.write")
        valid = usecases.store.validate_policy_changes(changes)
        return await self._change(actor, "accounts.write", "account.policy", f"account:{account_id}",
                                  lambda tx: usecases.store.update_policy(tx, account_id, valid).to_dict())  # fmt: skip

    async def set_frozen(self, actor: Actor, account_id: int, frozen: bool, reason: str) -> dict[str, Any]:
        action = "account.freeze" if frozen else "account.unfreeze"
        target = f"account:{account_id}"
        status = usecases.store.set_account_status
        return await self._change(actor, "accounts.write", action, target,
                                  lambda tx: status(tx, account_id, frozen, reason))  # fmt: skip

    # -- lists (compliance) ------------------------------------------------------------------------------
    async def violations(self, actor: Actor, account_id: int | None, limit: int) -> list[dict[str, Any]]:
        actor.require("compliance")
        return await usecases.violations(self.db, account_id, limit)

    async def blacklist(self, actor: Actor) -> list[dict[str, Any]]:
        actor.require("compliance")
        return await usecases.blacklist(self.db)

    async def import_blacklist(self, actor: Actor, parsed: ParsedList, reason: str) -> dict[str, Any]:
        return await self._change(actor, "compliance", "blacklist.import", "blacklist",
                                  lambda tx: usecases.import_blacklist(tx, parsed, reason))  # fmt: skip

    async def remove_blacklist(self, actor: Actor, parsed: ParsedList) -> dict[str, Any]:
        return await self._change(actor, "compliance", "blacklist.remove", "blacklist",
                                  lambda tx: usecases.remove_blacklist(tx, parsed))  # fmt: skip

    async def optouts(self, actor: Actor, account_id: int) -> list[dict[str, Any]]:
        actor.require("compliance")
        return await usecases.optouts(self.db, account_id)

    async def import_optouts(self, actor: Actor, account_id: int, parsed: ParsedList, signature: str) -> dict[str, Any]:
        return await self._change(actor, "compliance", "optouts.import", f"account:{account_id}",
                                  lambda tx: usecases.import_optouts(tx, account_id, parsed, signature))  # fmt: skip

    # -- lexicon (compliance) -----------------------------------------------------------------------------
    async def lexicon(self, actor: Actor, category: str | None) -> tuple[int, list[dict[str, str]], list[str]]:
        actor.require("compliance")
        return await usecases.lexicon(self.db, category)

    async def lexicon_versions(self, actor: Actor) -> list[dict[str, Any]]:
        actor.require("compliance")
        return await usecases.lexicon_versions(self.db)

    async def change_lexicon(self, actor: Actor, body: dict[str, Any]) -> dict[str, Any]:
        actor.require("compliance")
        change, base = await usecases.prepare_lexicon_change(self.db, body)
        by = actor.name or actor.kind
        out: dict[str, Any] = await self._change(actor, "compliance", "lexicon.change", "lexicon",
                                                 lambda tx: _apply_lexicon(tx, change, base, by))  # fmt: skip
        await self.service.reload_lexicon()
        return out

    # -- complaints (compliance) ----------------------------------------------------------------------------
    async def record_complaint(self, actor: Actor, number: str, message_id: int | None, note: str) -> dict[str, Any]:
        """Record a complaint (the number is blacklisted); the answer carries the evidence report."""
        by = actor.name or actor.kind
        out: dict[str, Any] = await self._change(
            actor, "compliance", "complaint.record", f"number:{number}",
            lambda tx: usecases.evidence.record_complaint(tx, number, message_id, note, by),
        )  # fmt: skip
        return {**out, "evidence": await usecases.evidence_report(self.db, out["complaint_id"])}

    async def complaints(self, actor: Actor) -> list[dict[str, Any]]:
        actor.require("compliance")
        return await usecases.complaints(self.db)

    async def evidence_report(self, actor: Actor, complaint_id: int) -> dict[str, Any]:
        actor.require("compliance")
        return await usecases.evidence_report(self.db, complaint_id)

    # -- signatures (review) -------------------------------------------------------------------------------
    async def suspend_signature(self, actor: Actor, signature_id: int, reason: str) -> dict[str, Any]:
        return await self._change(actor, "review", "signatures.suspend", f"signatures:{signature_id}",
                                  lambda tx: usecases.suspend_signature(tx, signature_id, reason))  # fmt: skip

    async def signature_application(self, actor: Actor, signature_id: int) -> dict[str, Any]:
        actor.require("review")
        return await usecases.signature_application(self.db, signature_id)

    async def read_document(self, actor: Actor, data_dir: Path, document_id: int) -> tuple[str, bytes, str]:
        """(filename, content, content type) of a qualification document, for a reviewer; each read is
        audited (``signature.document_read``)."""
        actor.require("review")
        meta = await self.db.read(lambda tx: documents.document(tx, document_id))
        content = documents.read_file(data_dir, meta["path"])
        await self.change(actor, "signature.document_read", f"document:{document_id}", lambda tx: None,
                          detail=lambda _: {"filename": meta["filename"]})  # fmt: skip
        return str(meta["filename"]), content, str(meta["content_type"])


def _apply_lexicon(tx: Any, change: LexiconChange, base: int, by: str) -> dict[str, Any]:
    return usecases.store.apply_lexicon_change(tx, change, base, by)
