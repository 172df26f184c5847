"""Accept: validate, price, reserve the charge and persist messages and queue rows in ONE transaction.

Rules:
- Everything that can be decided without the database is decided first (numbers, signature, text,
  parts, price); the database job then only checks idempotency, charges, and writes.
- A batch is paid for whole or refused whole with INSUFFICIENT_BALANCE; invalid and duplicate numbers
  are reported per number and are neither sent nor billed.
- One content for many numbers is planned (encoding, parts) once, not per number.
- Nothing is sent before the accept transaction has committed: the dispatcher only sees queue rows
  that exist, and they are written in that transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import orjson

from qixin.domain import text as textmod
from qixin.domain.money import li_to_yuan
from qixin.domain.numbers import NumberInfo, parse_numbers, prefix_table
from qixin.domain.timeparse import parse_send_at
from qixin.errors import CATALOGUE, QxError
from qixin.ids import ids
from qixin.services import billing, stats
from qixin.services.accounts import ApiKey, Directory
from qixin.services.flow import Caps, FlowControl, Ticket
from qixin.services.metrics import Metrics
from qixin.services.portability import PortedNumbers
from qixin.services.screening import DryRun, NoScreening, Screener, ScreenRequest
from qixin.services.tokens import RecipientTokens, has_tokens
from qixin.store import sends
from qixin.store import tokens as token_store
from qixin.store.db import Batched, Database, Tx, now_ms

SHANGHAI = ZoneInfo("Asia/Shanghai")
TYPES = {"verification": 0, "notification": 1, "marketing": 2}  # value = dispatch priority
MAX_SCHEDULE_MS = 90 * 86_400_000  # send_at at most 90 days ahead


class Pricer(Protocol):
    async def refresh(self, key: ApiKey) -> None:
        """Load what ``unit_price`` needs for this key (called once per request, before pricing)."""
        ...

    def unit_price(self, key: ApiKey, carrier: str, msg_type: str) -> int:
        """Price of one billed part, in 厘."""
        ...


class Guard(Protocol):
    """A check that runs first inside the accept transaction and may refuse it (the API's request
    nonce, spent in the same commit as the messages). ``committed`` is called once that transaction has
    committed — also when the accept was refused inside it, which leaves the guard's own write."""

    def __call__(self, tx: Tx) -> None: ...

    def committed(self) -> None: ...


class FlatPricer:
    """One price per part for the account (the price on its API key's account)."""

    async def refresh(self, key: ApiKey) -> None:
        return None

    def unit_price(self, key: ApiKey, carrier: str, msg_type: str) -> int:
        return key.price_li


@dataclass(slots=True)
class Prepared:
    key: ApiKey
    batch_id: int
    type: str
    signature: str
    template_id: int | None
    content: str  # the full text, 【签名】 included
    parts: int
    rows: list[tuple[int, str, str, str, int]]  # (message id, number, carrier, province, fee_li)
    rejected: list[dict[str, str]]
    out_id: str | None
    send_at: int | None  # ms UTC, when scheduled
    idempotency_key: str | None
    request_hash: str
    note: dict[str, Any] = field(default_factory=dict)
    release: Callable[[], Awaitable[None]] | None = None
    package_parts: int = 0  # parts paid by packages (from billing.charge_batch's result)
    tokens: dict[str, str] = field(default_factory=dict)  # number -> the recipient token it was sent to
    pin: str | None = None  # every message of the batch goes to this channel only (interception tests)

    @property
    def total_fee(self) -> int:
        return sum(r[4] for r in self.rows)

    @property
    def total_parts(self) -> int:
        return self.parts * len(self.rows)


# (account id, numbers, classes) -> {number: class}: NumberChecks.skippable (services/numbercheck.py)
Skippable = Callable[[int, Sequence[str], Sequence[str]], Awaitable[dict[str, str]]]
SKIP_OPTIONS = {"skip_empty": ("empty", "NUMBER_EMPTY_SKIPPED"), "skip_silent": ("silent", "NUMBER_SILENT_SKIPPED")}


def _skip_classes(body: dict[str, Any]) -> list[str]:
    """The number-check classes a send asks to skip (``skip_empty`` / ``skip_silent``: true or false)."""
    out = []
    for option, (cls, _) in SKIP_OPTIONS.items():
        value = body.get(option, False)
        if not isinstance(value, bool):
            raise QxError("INVALID_REQUEST", f"{option} 必须是 true 或 false")
        if value:
            out.append(cls)
    return out


def _reject(number: str, code: str) -> dict[str, str]:
    return {"to": number, "code": code, "message": CATALOGUE[code][1]}


class AcceptService:
    def __init__(
        self,
        db: Database,
        directory: Directory,
        max_parts: int = 10,
        max_numbers: int = 100_000,
        screener: Screener | None = None,
        pricer: Pricer | None = None,
        on_accepted: Callable[[], None] | None = None,
        metrics: Metrics | None = None,
        flow: FlowControl | None = None,
        tokens: RecipientTokens | None = None,
        skippable: Skippable | None = None,
    ) -> None:
        self.db = db
        self.skippable = skippable  # skip_empty / skip_silent: numbers a recent number check classed so
        self.tokens = tokens  # privacy numbers: "tk_…" entries of ``to`` (services/tokens.py)
        self.directory = directory
        self.max_parts = max_parts
        self.max_numbers = max_numbers
        self.screener: Screener = screener or NoScreening()
        self.pricer: Pricer = pricer or FlatPricer()
        self._on_accepted = on_accepted  # wakes the dispatcher of this process, if it has one
        self.metrics = metrics
        self.flow = flow  # per-account TPS and daily caps (services/flow.py)
        self._table = prefix_table()
        self.ported = PortedNumbers(db)

    async def prepare(self, key: ApiKey, body: dict[str, Any], raw: bytes, dry_run: DryRun | None = None) -> Prepared:
        """Parse, screen and price one request. ``dry_run`` (a preview): screening only checks the
        frequency limits against the preview's own tally; nothing is reserved (``release`` is None)."""
        if key.account_status != "active":
            raise QxError("ACCOUNT_FROZEN")
        msg_type = body.get("type", "notification")
        if not isinstance(msg_type, str) or msg_type not in TYPES:
            raise QxError("TYPE_INVALID")
        to = body.get("to")
        if isinstance(to, str):
            to = [to]
        if not isinstance(to, list) or not to:
            raise QxError("NUMBERS_EMPTY")
        if len(to) > self.max_numbers:
            raise QxError("TOO_MANY_NUMBERS", f"单次请求最多 {self.max_numbers} 个号码")
        if not all(isinstance(n, str) for n in to):
            raise QxError("NUMBER_INVALID", "号码必须是字符串")

        signature = body.get("signature")
        if not isinstance(signature, str) or signature not in await self.directory.approved_signatures(key.account_id):
            raise QxError("SIGNATURE_NOT_APPROVED")

        template_id: int | None = None
        if body.get("template_id") is not None:
            template_id, content, tpl_type = await self._render_template(key, body)
            msg_type = tpl_type
        else:
            if not key.allow_free_text:
                raise QxError("FREE_TEXT_FORBIDDEN")
            free_text = body.get("content")
            if not isinstance(free_text, str) or not free_text.strip():
                raise QxError("CONTENT_EMPTY")
            content = free_text

        full = textmod.with_signature(content, signature)
        plan = textmod.plan_text(full)
        if plan.parts > self.max_parts:
            raise QxError("CONTENT_TOO_LONG", f"短信内容共 {plan.parts} 条，超过上限 {self.max_parts} 条")

        out_id = body.get("out_id")
        if out_id is not None and (not isinstance(out_id, str) or len(out_id) > 64):
            raise QxError("INVALID_REQUEST", "out_id 必须是不超过 64 个字符的字符串")
        idem = body.get("idempotency_key")
        if idem is not None and (not isinstance(idem, str) or not 0 < len(idem) <= 128):
            raise QxError("INVALID_REQUEST", "idempotency_key 必须是 1–128 个字符的字符串")
        now = now_ms()
        send_at = parse_send_at(body.get("send_at"), now)
        if send_at is not None and send_at > now + MAX_SCHEDULE_MS:  # charged at accept: no sends years ahead
            raise QxError("SEND_AT_TOO_FAR")

        shown: dict[str, str] = {}  # number -> token, for numbers sent to as a token
        token_rejects: list[dict[str, str]] = []
        if self.tokens is not None and has_tokens(to):
            resolved = await self.tokens.resolve(key.account_id, to)
            to, shown, token_rejects = resolved.to, resolved.tokens, resolved.rejected
        parsed = parse_numbers(to)
        intl, invalid = _international(parsed.invalid, parsed.duplicates)
        rejected = token_rejects + [_reject(n, "NUMBER_INVALID") for n in invalid]
        rejected += [_reject(n, "NUMBER_DUPLICATE") for n in parsed.duplicates]
        valid = parsed.valid
        skip = _skip_classes(body)
        if skip and self.skippable is not None and valid:  # before screening: a skipped number is not sent
            marked = await self.skippable(key.account_id, valid, skip)
            if marked:
                codes = {cls: code for cls, code in SKIP_OPTIONS.values()}
                rejected += [_reject(shown.get(n, n), codes[marked[n]]) for n in valid if n in marked]
                valid = [n for n in valid if n not in marked]
        lookup = self._table.lookup_tuple
        infos = [lookup(n) for n in valid] + [(i.number, i.carrier, i.province) for i in intl]
        await self.ported.refresh()
        moved = self.ported.map
        if moved:  # 携号转网: the carrier learned from receipts (or imported) beats the prefix
            infos = [(n, moved[n], p) if n in moved else (n, c, p) for n, c, p in infos]
        screening = await self.screener.screen(
            ScreenRequest(
                key, msg_type, full, signature, template_id, [(n, c) for n, c, _ in infos], send_at, body, dry_run
            )
        )
        if screening.rejected:
            refused = screening.rejected
            rejected += [_reject(shown.get(n, n), refused[n]) for n, _, _ in infos if n in refused]
            infos = [t for t in infos if t[0] not in refused]
        prices: dict[str, int] = {}
        await self.pricer.refresh(key)
        for carrier in {c for _, c, _ in infos}:
            prices[carrier] = self.pricer.unit_price(key, carrier, msg_type) * plan.parts
        new_ids = ids.take(len(infos) + 1)
        rows = [(mid, n, c, p, prices[c]) for mid, (n, c, p) in zip(new_ids[1:], infos, strict=True)]
        return Prepared(
            key=key,
            batch_id=new_ids[0],
            type=msg_type,
            signature=signature,
            template_id=template_id,
            content=full,
            parts=plan.parts,
            rows=rows,
            rejected=rejected,
            out_id=out_id,
            send_at=screening.send_at,
            idempotency_key=idem,
            request_hash=hashlib.sha256(raw).hexdigest(),
            note=screening.note,
            release=screening.release,
            tokens=shown,
        )

    async def _render_template(self, key: ApiKey, body: dict[str, Any]) -> tuple[int, str, str]:
        from qixin.domain.compliance.templates import TemplateError, render

        try:
            template_id = int(body["template_id"])
        except (TypeError, ValueError) as e:
            raise QxError("TEMPLATE_NOT_APPROVED") from e
        if not 0 < template_id < 2**63:
            raise QxError("TEMPLATE_NOT_APPROVED")
        tpl = await self.directory.template(key.account_id, template_id)
        if tpl is None or tpl.status != "approved":
            raise QxError("TEMPLATE_NOT_APPROVED")
        params = body.get("params") or {}
        if not isinstance(params, dict):
            raise QxError("TEMPLATE_PARAM_INVALID", "params 必须是对象")
        try:
            content = render(tpl.content, tpl.variables, {str(k): v for k, v in params.items()})
        except TemplateError as e:
            raise QxError(e.code, e.message) from e
        return template_id, content, tpl.category

    async def accept(
        self,
        key: ApiKey,
        body: dict[str, Any],
        raw: bytes,
        guard: Guard | None = None,
        extra_caps: Sequence[tuple[str, Caps]] = (),
        on_persist: Callable[[Tx, Prepared], None] | None = None,
        pin: str | None = None,
    ) -> dict[str, Any]:
        """Accept one send request (the use case behind POST /v1/sms and every other way in). ``guard``
        runs first inside the accept transaction and may refuse it (the API's request nonce).
        ``extra_caps``: flow-control scopes besides the account's (services/flow.py), e.g. a customer
        port passes ``[(f"conn:{id}", Caps(tps, daily))]`` for its direct connection.
        ``on_persist(tx, prepared)`` runs inside the accept transaction after the messages are written
        (the customer ports record the receipts they owe there), never for a replayed answer. ``pin`` (not
        reachable from a request body) sends every message over that one channel: interception tests."""
        try:
            resp = await self._accept(key, body, raw, guard, extra_caps, on_persist, pin)
        except QxError as e:
            if self.metrics is not None:
                self.metrics.refused.labels(e.code).inc()
            raise
        if self.metrics is not None and not resp.get("replayed"):
            for r in resp["rejected"]:
                self.metrics.refused.labels(r["code"]).inc()
        return resp

    async def _accept(
        self,
        key: ApiKey,
        body: dict[str, Any],
        raw: bytes,
        guard: Guard | None,
        extra_caps: Sequence[tuple[str, Caps]],
        on_persist: Callable[[Tx, Prepared], None] | None = None,
        pin: str | None = None,
    ) -> dict[str, Any]:
        idem = body.get("idempotency_key")
        if isinstance(idem, str) and idem:
            # a repeat is answered from the stored answer, whatever changed since (signature, balance, …)
            digest = hashlib.sha256(raw).hexdigest()
            replay = await self.db.read_small(lambda tx: _replay(tx, key.account_id, idem, digest))
            if replay is not None:
                if guard is not None:
                    await self.db.write(guard)  # a repeat still spends its own nonce
                    guard.committed()
                return replay
        p = await self.prepare(key, body, raw)
        p.pin = pin
        ticket: Ticket | None = None
        try:
            if not p.rows and p.idempotency_key is None:
                raise QxError("NO_VALID_NUMBERS", rejected=p.rejected)
            if self.flow is not None:  # ACCOUNT_THROTTLED / DAILY_CAP_EXCEEDED before any write
                ticket = await self.flow.reserve(key.account_id, p.total_parts, extra_caps)
            # a Batched job: concurrent sends are written together (persist_many)
            outcome = await self.db.write(Batched(persist_many, (p, guard, on_persist)))
            if isinstance(outcome, GuardRefused):
                raise outcome.error
            if guard is not None:
                guard.committed()
            if isinstance(outcome, QxError):
                raise outcome
            resp = outcome
        except BaseException:
            if p.release is not None:  # not committed: only accepted messages count toward limits
                await p.release()
            if ticket is not None:
                await ticket.release()
            raise
        if resp.get("replayed"):
            if p.release is not None:
                await p.release()
            if ticket is not None:
                await ticket.release()
        if self.metrics is not None and not resp.get("replayed"):
            self.metrics.accepted.labels(p.type).inc(len(p.rows))
        if self._on_accepted is not None:
            self._on_accepted()
        return resp


def _international(invalid: list[str], duplicates: list[str]) -> tuple[list[NumberInfo], list[str]]:
    """Split what the mainland parser refused into international numbers (carrier ``intl``, screened by
    compliance: INTERNATIONAL_NOT_ALLOWED unless the account may) and the really invalid."""
    from qixin.services.compliance.intl import international_number

    intl: dict[str, NumberInfo] = {}
    bad: list[str] = []
    for raw in invalid:
        number = international_number(raw)
        if number is None:
            bad.append(raw)
        elif number in intl:
            duplicates.append(raw)
        else:
            intl[number] = NumberInfo(number, "intl", "")
    return list(intl.values()), bad


def response_of(p: Prepared) -> dict[str, Any]:
    parts, tk = p.parts, p.tokens
    return {
        "batch_id": str(p.batch_id),
        "status": "held" if "review" in p.note else "scheduled" if p.send_at else "queued",
        "accepted_count": len(p.rows),
        "rejected_count": len(p.rejected),
        "parts": parts,
        "total_fee_li": p.total_fee,
        "total_fee": li_to_yuan(p.total_fee),
        "package_parts": p.package_parts,
        "accepted": [{"id": str(r[0]), "to": tk.get(r[1], r[1]), "parts": parts, "fee_li": r[4]} for r in p.rows],
        "rejected": p.rejected,
    } | {k: p.note[k] for k in ("deferred_to", "review") if k in p.note}  # review: held (compliance/review.py)


def _replay(tx: Tx, account_id: int, key: str, request_hash: str) -> dict[str, Any] | None:
    """The stored answer for a repeated idempotency key; IDEMPOTENCY_CONFLICT when the body differs."""
    row = sends.stored_answer(tx, account_id, key)
    if row is None:
        return None
    if row[0] != request_hash:
        raise QxError("IDEMPOTENCY_CONFLICT")
    replay: dict[str, Any] = orjson.loads(row[1])
    replay["replayed"] = True
    return replay


MERGE_MAX_ROWS = 16  # sends of at most this many messages are written together with their neighbours


@dataclass(slots=True)
class GuardRefused:
    """``persist_many``'s answer for an item whose guard refused it (the guard's error is raised to the
    caller, and the guard counts as not spent)."""

    error: QxError


PersistItem = tuple[Prepared, "Guard | None", "Callable[[Tx, Prepared], None] | None"]


def persist_many(tx: Tx, items: list[PersistItem]) -> list[dict[str, Any] | QxError | GuardRefused]:
    """The accept transaction of many concurrent sends (``Batched`` jobs of the writer's group): each send
    runs its ``guard`` first (the API's request nonce), then is persisted as ``persist`` would do it alone,
    with the same outcome per send; a refusal of persist is answered, not raised, so that the guard's
    write commits with nothing else (persist refuses before it writes; ``on_persist``, which may refuse
    after, runs under a savepoint of its own when the send has neighbours or a guard). Small plain sends
    (no idempotency key, review note, pin, tokens or ``on_persist``) are charged per account in three
    statements and written with one statement per table for all of them. A refused send has written
    nothing but its guard."""
    out: list[dict[str, Any] | QxError | GuardRefused | None] = [None] * len(items)
    plain: dict[int, list[int]] = {}  # account id -> indexes of plain sends
    for i, (p, guard, on_persist) in enumerate(items):
        if guard is not None:
            try:
                guard(tx)
            except QxError as e:
                out[i] = GuardRefused(e)
                continue
        simple = not (p.idempotency_key or p.note or p.pin or p.tokens or on_persist is not None)
        if simple and 0 < len(p.rows) <= MERGE_MAX_ROWS:
            plain.setdefault(p.key.account_id, []).append(i)
            continue
        if on_persist is None:  # persist refuses before it writes
            try:
                out[i] = persist(tx, p)
            except QxError as e:
                out[i] = e
        elif len(items) == 1 and guard is None:  # alone: a refusal after writing is the writer's to undo
            out[i] = persist(tx, p, on_persist)
        else:  # on_persist may refuse after the messages are written (a port's daily cap): undo this send only
            tx.savepoint("qx_item")
            try:
                out[i] = persist(tx, p, on_persist)
            except QxError as e:
                tx.rollback_to_savepoint("qx_item")
                out[i] = e
            else:
                tx.release_savepoint("qx_item")
    if plain:
        paid: list[int] = []
        for account_id in sorted(plain):  # accounts locked in one order by every writer (PostgreSQL)
            idxs = plain[account_id]
            charged = billing.charge_batches(tx, account_id, [_charge_request(items[i][0]) for i in idxs])
            for i, c in zip(idxs, charged, strict=True):
                if isinstance(c, QxError):
                    out[i] = c
                else:
                    _paid(items[i][0], c)
                    paid.append(i)
        for i, resp in zip(paid, _write(tx, [items[i][0] for i in paid]), strict=True):
            out[i] = resp
    return out  # type: ignore[return-value]


def _charge_request(p: Prepared) -> billing.ChargeRequest:
    return billing.ChargeRequest(p.key.account_id, p.batch_id, p.type, [(r[0], r[2], r[4]) for r in p.rows], p.parts)


def _paid(p: Prepared, charged: billing.ChargeResult) -> None:
    """The charge's outcome on the send: package-paid messages carry fee_li = 0."""
    if charged.package_messages:
        n = charged.package_messages
        p.rows[:n] = [(r[0], r[1], r[2], r[3], 0) for r in p.rows[:n]]
    p.package_parts = charged.package_parts


def _batch_row(p: Prepared, resp: dict[str, Any], now: int) -> tuple[Any, ...]:
    return (
        p.batch_id, p.key.account_id, p.key.key_id, p.type, p.signature, p.template_id, p.content,
        len(p.rows) + len(p.rejected), len(p.rows), len(p.rejected), p.total_fee, p.out_id,
        p.idempotency_key, p.request_hash if p.idempotency_key else None,
        orjson.dumps(resp).decode() if p.idempotency_key else None, now, p.send_at,
    )  # fmt: skip


def _record(tx: Tx, p: Prepared, status: str, now: int) -> None:
    stats.record_accept(
        tx, p.key.account_id, p.signature, p.template_id, p.type, status, now,
        ((car, prov, p.parts, fee) for _, _, car, prov, fee in p.rows),
    )  # fmt: skip


def _write(tx: Tx, ps: list[Prepared]) -> list[dict[str, Any]]:
    """The rows of paid plain sends, one statement per table for all of them; their answers."""
    now = now_ms()
    resps = [response_of(p) for p in ps]
    sends.insert_batches(tx, [_batch_row(p, r, now) for p, r in zip(ps, resps, strict=True)])
    messages: list[tuple[Any, ...]] = []
    queue: list[tuple[int, int, int]] = []
    for p in ps:
        status = "scheduled" if p.send_at else "queued"
        const = (p.out_id, p.batch_id, p.key.account_id, p.type, p.parts, status, now, p.send_at, False, 0)
        messages.extend((mid, num, car, prov, fee, *const) for mid, num, car, prov, fee in p.rows)
        prio, due = TYPES[p.type], p.send_at or now
        queue.extend((r[0], prio, due) for r in p.rows)
        _record(tx, p, status, now)
    sends.insert_full_messages(tx, messages)
    sends.enqueue_each(tx, queue)
    return resps


def persist(tx: Tx, p: Prepared, on_persist: Callable[[Tx, Prepared], None] | None = None) -> dict[str, Any]:
    """The accept transaction. Raises QxError before any write (store/db.py rule)."""
    account_id = p.key.account_id
    if p.idempotency_key is not None:
        replay = _replay(tx, account_id, p.idempotency_key, p.request_hash)
        if replay is not None:
            return replay
    if not p.rows:
        raise QxError("NO_VALID_NUMBERS", rejected=p.rejected)
    _paid(p, billing.charge_batch(tx, _charge_request(p)))
    resp = response_of(p)
    now = now_ms()
    status = "scheduled" if p.send_at else "queued"
    sends.insert_batch(tx, _batch_row(p, resp, now))
    if p.note:
        from qixin.services.compliance.store import record_batch_note

        record_batch_note(tx, p.batch_id, account_id, p.note)
    parts, mtype, out_id, send_at, batch_id = p.parts, p.type, p.out_id, p.send_at, p.batch_id
    sends.insert_messages(
        tx,
        [(mid, num, car, prov, fee, out_id) for mid, num, car, prov, fee in p.rows],
        {"batch_id": batch_id, "account_id": account_id, "type": mtype, "parts": parts, "status": status,
         "created_at": now, "send_at": send_at, "refunded": False, "receipts_pending": 0},
    )  # fmt: skip
    if p.pin:
        token_store.pin_batch(tx, p.batch_id, p.pin)
    if p.tokens:
        token_store.tag_messages(tx, [(p.tokens[r[1]], r[0]) for r in p.rows if r[1] in p.tokens])
    sends.enqueue(tx, [(r[0],) for r in p.rows], TYPES[mtype], send_at or now)
    _record(tx, p, status, now)
    if on_persist is not None:
        on_persist(tx, p)
    return resp
