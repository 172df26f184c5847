"""Manual review of content (人工审核, issue 15): the batches the classifier holds, decided once per batch.

Rules:
- A held batch is accepted like any other — numbers screened, the charge TAKEN (money in 厘 or
  package parts) in the accept transaction — but its queue rows are due "never" (``HELD_DUE``) and a
  ``review_holds`` row waits for staff. So the ledger is exact at every moment: nothing is reserved
  outside it, and a rejection or an expiry gives back exactly what was charged, per message, once
  (``billing.refund_messages``, through ``receipts.record_failures``).
- Approve: the queue rows become due (at the batch's deferred time when it had one) and the dispatcher
  sends them. Reject: each message fails with ``REVIEW_REJECTED`` and is refunded, and the customer
  gets a ``review`` webhook event with the reason (plus the usual receipt events). A hold not decided
  within ``review_hold_ttl`` expires the same way with ``REVIEW_EXPIRED``.
- A decision is taken once: the pending → decided update is conditional, so a second decision, or a
  decision racing the expiry, answers REVIEW_DECIDED and changes nothing.
- Staff decisions feed the corpus: the batch's text with label ``legit`` (approved) or the held (or
  staff-given) category (rejected) goes to ``classifier_decisions``, which ``qixin classifier retrain``
  trains on with the shipped corpus. Expiries are no decision and feed nothing.
- Staff area ``review`` (reviewer, admin); every decision audited in its transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson

from qixin.domain.compliance.classifier import CLASSIFIER_LABELS, LEGIT, LabelledText, TrainParams, load_corpus, retrain
from qixin.domain.compliance.lexicon import category_label
from qixin.errors import QxError
from qixin.services.actor import Actor, UseCase, audit
from qixin.services.compliance.service import ComplianceService
from qixin.services.receipts import Failed, record_failures
from qixin.store import compliance as compliance_store
from qixin.store import review as q
from qixin.store import webhooks as outbox
from qixin.store.db import Database, Tx, now_ms
from qixin.tasks import cancel

log = logging.getLogger(__name__)

AREA = "review"
STATUSES = ("pending", "approved", "rejected", "expired")
MAX_REASON = 200


def hold_dict(r: Any) -> dict[str, Any]:
    (batch_id, account_id, status, category, score, evidence, version, send_at, created, expires, decided_at,
     decided_by, reason, content, mtype, signature, accepted, fee) = r  # fmt: skip
    return {
        "batch_id": str(batch_id), "account_id": int(account_id), "status": status, "category": category,
        "category_label": category_label(category), "score": int(score) / 1000, "evidence": orjson.loads(evidence),
        "model_version": version, "send_at": send_at, "created_at": int(created), "expires_at": int(expires),
        "decided_at": decided_at, "decided_by": decided_by, "reason": reason, "content": content, "type": mtype,
        "signature": signature, "messages": int(accepted), "fee_li": int(fee),
    }  # fmt: skip


def _event(tx: Tx, batch_id: int, account_id: int, payload: dict[str, Any], now: int) -> None:
    target = q.batch_callback(tx, batch_id)
    if target is not None:
        body = orjson.dumps({"type": "review", "batch_id": str(batch_id), **payload}).decode()
        outbox.insert_events(tx, [(account_id, target[0], target[1], body, now, now)])


def _fail_batch(tx: Tx, batch_id: int, code: str, detail: str, now: int) -> int:
    ids = q.held_messages(tx, batch_id)
    record_failures(tx, [Failed(i, code, detail, now) for i in ids])
    return len(ids)


class ReviewQueue(UseCase):
    """The review queue's use cases (admin API, CLI) and its expiry sweep."""

    def __init__(
        self,
        db: Database,
        service: ComplianceService,
        on_release: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(db)
        self.service = service
        self.on_release = on_release  # wakes this process's dispatcher after an approval
        self._task: asyncio.Task[None] | None = None
        self.stats = {"approved": 0, "rejected": 0, "expired": 0}

    # -- reads ----------------------------------------------------------------------------------------
    async def list(self, actor: Actor, status: str | None, account_id: int | None, limit: int) -> list[dict[str, Any]]:
        actor.require(AREA)
        if status is not None and status not in STATUSES:
            raise QxError("INVALID_REQUEST", f"status 必须是 {', '.join(STATUSES)} 之一")
        limit = max(1, min(limit, 500))
        rows = await self.db.read(lambda tx: q.list_holds(tx, status, account_id, limit))
        return [hold_dict(r) for r in rows]

    async def get(self, actor: Actor, batch_id: int) -> dict[str, Any]:
        actor.require(AREA)
        r = await self.db.read(lambda tx: q.hold(tx, batch_id))
        if r is None:
            raise QxError("NOT_FOUND", "待审核批次不存在")
        return hold_dict(r)

    # -- decisions -------------------------------------------------------------------------------------
    async def approve(self, actor: Actor, batch_id: int, note: str = "") -> dict[str, Any]:
        actor.require(AREA)
        by = actor.name or actor.kind

        def job(tx: Tx) -> dict[str, Any]:
            r = _pending(tx, batch_id)
            if compliance_store.account_status(tx, int(r[1])) != "active":
                raise QxError("ACCOUNT_FROZEN", "账户已冻结：此批次只能驳回或等待过期退款")
            now = now_ms()
            if not q.decide(tx, batch_id, "approved", now, by, note or None):
                raise QxError("REVIEW_DECIDED")
            ids = q.held_messages(tx, batch_id)
            due = max(now, int(r[7])) if r[7] is not None else now
            q.release_messages(tx, batch_id, ids, due)
            q.insert_decision(tx, batch_id, str(r[13]), LEGIT, by, now)
            _event(tx, batch_id, int(r[1]), {"decision": "approved", "messages": len(ids)}, now)
            audit(tx, actor, "review.approve", f"batch:{batch_id}", {"messages": len(ids), "note": note})
            return {"batch_id": str(batch_id), "status": "approved", "messages": len(ids), "send_at": due}

        out = await self.db.write(job)
        self.stats["approved"] += 1
        if self.on_release is not None:
            self.on_release()
        return out

    async def reject(self, actor: Actor, batch_id: int, reason: str, category: str | None = None) -> dict[str, Any]:
        actor.require(AREA)
        reason = reason.strip()
        if not reason or len(reason) > MAX_REASON:
            raise QxError("INVALID_REQUEST", f"请填写驳回原因（1–{MAX_REASON} 个字符）")
        if category is not None and category not in CLASSIFIER_LABELS:
            raise QxError("INVALID_REQUEST", "category 不是分类器的违规类别")
        by = actor.name or actor.kind

        def job(tx: Tx) -> dict[str, Any]:
            r = _pending(tx, batch_id)
            now = now_ms()
            if not q.decide(tx, batch_id, "rejected", now, by, reason):
                raise QxError("REVIEW_DECIDED")
            label = category or str(r[3])
            n = _fail_batch(tx, batch_id, "REVIEW_REJECTED", "review", now)
            q.insert_decision(tx, batch_id, str(r[13]), label, by, now)
            _event(tx, batch_id, int(r[1]), {"decision": "rejected", "reason": reason, "category": label,
                                             "category_label": category_label(label), "messages": n}, now)  # fmt: skip
            audit(tx, actor, "review.reject", f"batch:{batch_id}", {"messages": n, "reason": reason, "category": label})
            return {"batch_id": str(batch_id), "status": "rejected", "messages": n, "refunded": n, "reason": reason}

        out = await self.db.write(job)
        self.stats["rejected"] += 1
        return out

    async def expire_due(self, now: int | None = None, limit: int = 100) -> int:
        """Expire (refund, tell the customer) every pending hold whose time limit has passed."""
        at = now_ms() if now is None else now
        due = await self.db.read(lambda tx: q.expired(tx, at, limit))
        done = 0
        for batch_id in due:

            def job(tx: Tx, batch_id: int = batch_id) -> bool:
                r = q.hold(tx, batch_id)
                if r is None or not q.decide(tx, batch_id, "expired", at, "system", "审核超时"):
                    return False
                n = _fail_batch(tx, batch_id, "REVIEW_EXPIRED", "review timeout", at)
                payload = {"decision": "expired", "reason": "人工审核超时，已退款", "messages": n}
                _event(tx, batch_id, int(r[1]), payload, at)
                audit(tx, Actor.system(), "review.expire", f"batch:{batch_id}", {"messages": n})
                return True

            if await self.db.write(job):
                done += 1
        self.stats["expired"] += done
        return done

    # -- the corpus: retrain from it plus staff decisions -------------------------------------------------
    async def retrain(self, actor: Actor, params: TrainParams | None = None) -> dict[str, Any]:
        """Train a new model from the shipped corpus plus every staff decision and put it in force (every
        process loads it within a few seconds). Same data and parameters → same version: nothing new."""
        actor.require(AREA)
        rows = await self.db.read(q.decisions)
        decisions = [LabelledText(text, label) for text, label in rows]
        before = self.service.classifier.version
        model = await asyncio.to_thread(lambda: retrain(load_corpus(), decisions, params))
        by = actor.name or actor.kind

        def job(tx: Tx) -> bool:
            if q.model_exists(tx, model.version):
                return False
            q.insert_model(tx, model.version, model.dumps(), len(decisions), by, now_ms())
            audit(tx, actor, "classifier.retrain", f"classifier:{model.version}", {"decisions": len(decisions)})
            return True

        created = await self.db.write(job)
        await self.service.classifier.refresh()
        return {"previous_version": before, "version": model.version, "decisions": len(decisions), "new": created}

    # -- the expiry sweep ------------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="review-expiry")

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.expire_due()
            except Exception:
                log.exception("review expiry sweep failed")
            await asyncio.sleep(self.service.cfg.review_expire_interval)


def _pending(tx: Tx, batch_id: int) -> Any:
    r = q.hold(tx, batch_id)
    if r is None:
        raise QxError("NOT_FOUND", "待审核批次不存在")
    if r[2] != "pending":
        raise QxError("REVIEW_DECIDED")
    return r
