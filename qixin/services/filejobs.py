"""File jobs: send the numbers of a file (CSV, XLSX, TXT or pasted text) in chunks, with a preview first.

The use cases (every entry point calls these: ``POST /v1/batches``, ``qixin send --file``, the console):
``preview`` (nothing stored), ``create`` (the file stored under ``data_dir``, the job row; the worker —
or the caller, with ``run`` — sends it), ``progress``, ``listing``, ``cancel``.

Rules:
- The file is read once into numbers in file order (``domain/numberfile``); repeats of a number already
  seen in the file are removed before chunking (NUMBER_DUPLICATE, never sent, never billed), so the
  chunks hold each number at most once whatever chunk it fell in.
- Each chunk of at most ``chunk_size`` (≤ ``max_numbers_per_request``) numbers is ONE request to the
  accept use case (``AcceptService.accept``, the one behind ``POST /v1/sms``): parsed, screened, priced,
  billed and written in one transaction, with the idempotency key ``job:<id>:chunk:<n>``. A personalised
  job (template variables from columns) sends one request per distinct set of variables within the
  chunk (``job:<id>:chunk:<n>:<g>``): accept renders one text per request.
- A chunk row is written after its accept committed. A runner that resumes a job skips the recorded
  chunks and sends the others with the same keys: a chunk whose accept committed before a crash (but
  whose row was not written) is answered from the stored answer (replayed, not sent again); one that
  did not commit is sent. Nobody is sent twice, nobody is lost.
- The preview runs the same pieces as accept, chunk by chunk (``AcceptService.prepare``: number parsing,
  compliance screening, pricing) as a dry run: the frequency limits are checked, not counted
  (``RateGate.peek`` against the preview's own tally, so a later chunk sees the earlier chunks' numbers
  as the job will), and nothing is reserved or given back: its counts are what the job then does, as
  long as lists, limits and counters do not change in between. A content violation found by the
  preview is recorded like one found by a send (it is the same screening).
- A runner holds a job through a lease (renewed before every request); cancelling stops the job before
  its next request (messages already accepted stay accepted: there is no cancel of accepted messages).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from qixin.domain.numberfile import NumberFile, read_number_file
from qixin.domain.numbers import mask, normalize_cn_mobile
from qixin.errors import QxError
from qixin.ids import ids
from qixin.services import billing
from qixin.services.accept import SHANGHAI, AcceptService
from qixin.services.accounts import ApiKey, Directory
from qixin.services.actor import Actor, UseCase
from qixin.services.compliance.intl import international_number
from qixin.services.screening import DryRun
from qixin.store import accounts as accounts_store
from qixin.store import filejobs as store
from qixin.store.db import Database, Tx, now_ms

log = logging.getLogger("qixin.filejobs")

EXAMPLES = 3  # masked examples per category in a preview
PARSED_KEPT = 2  # files kept parsed in memory, so a create right after its preview does not read it again
FINAL = ("done", "failed", "cancelled")
PER_NUMBER_TEMPLATE_CODES = ("TEMPLATE_PARAM_MISSING", "TEMPLATE_PARAM_INVALID", "TEMPLATE_PARAM_UNKNOWN")


@dataclass(slots=True)
class JobOptions:
    """What to send to the numbers of the file (the fields of POST /v1/sms, and the file's columns)."""

    signature: str | None = None  # None: the account's only approved signature
    type: str = "notification"
    content: str | None = None
    template_id: str | None = None
    params: dict[str, str] = field(default_factory=dict)  # the same for every number
    params_columns: dict[str, str] = field(default_factory=dict)  # template variable -> column of the file
    number_column: str | None = None
    send_at: int | str | None = None
    audience: str | None = None
    skip_empty: bool = False  # POST /v1/sms's skip_empty / skip_silent (numbers a recent number check classed so)
    skip_silent: bool = False

    def to_json(self) -> str:
        return orjson.dumps(asdict(self)).decode()

    @classmethod
    def from_json(cls, text: str) -> JobOptions:
        return cls(**orjson.loads(text))

    def check(self) -> None:
        if self.params_columns and self.template_id is None:
            raise QxError("INVALID_REQUEST", "按列填充模板变量（params_columns）须使用模板发送（template_id）")
        for name, value in (("params", self.params), ("params_columns", self.params_columns)):
            if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                      for k, v in value.items()):  # fmt: skip
                raise QxError("INVALID_REQUEST", f"{name} 必须是 {{变量名: 字符串}} 对象")


@dataclass(slots=True)
class Plan:
    """The file as the job sends it: numbers in order with repeats removed, and their variables."""

    total: int  # numbers in the file
    numbers: list[str]  # as written, each number once
    params: list[dict[str, str]] | None  # per number (personalised jobs)
    duplicates: list[str]  # the repeats removed, as written
    chunk_size: int

    @property
    def chunks(self) -> int:
        return (len(self.numbers) + self.chunk_size - 1) // self.chunk_size

    def requests(self, n: int) -> list[tuple[str, list[str], dict[str, str] | None]]:
        """Chunk ``n`` as (key suffix, numbers, per-request variables or None) requests."""
        lo, hi = n * self.chunk_size, min(len(self.numbers), (n + 1) * self.chunk_size)
        numbers = self.numbers[lo:hi]
        if self.params is None:
            return [(f"chunk:{n}", numbers, None)]
        groups: dict[tuple[tuple[str, str], ...], tuple[list[str], dict[str, str]]] = {}
        for number, params in zip(numbers, self.params[lo:hi], strict=True):
            group = groups.setdefault(tuple(sorted(params.items())), ([], params))
            group[0].append(number)
        return [(f"chunk:{n}:{g}", nums, params) for g, (nums, params) in enumerate(groups.values())]


def dedupe_key(raw: str) -> str | None:
    """The number a file entry stands for (None: not a number; accept reports it NUMBER_INVALID)."""
    return normalize_cn_mobile(raw) or international_number(raw)


def make_plan(f: NumberFile, chunk_size: int) -> Plan:
    seen: set[str] = set()
    numbers: list[str] = []
    params: list[dict[str, str]] | None = [] if f.params is not None else None
    duplicates: list[str] = []
    for i, raw in enumerate(f.numbers):
        key = dedupe_key(raw)
        if key is not None:
            if key in seen:
                duplicates.append(raw)
                continue
            seen.add(key)
        numbers.append(raw)
        if params is not None and f.params is not None:
            params.append(f.params[i])
    return Plan(len(f.numbers), numbers, params, duplicates, chunk_size)


def _local(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


class FileJobs(UseCase):
    """The file-job use cases and the runner that sends (and resumes) jobs."""

    def __init__(
        self,
        db: Database,
        accept: AcceptService,
        directory: Directory,
        data_dir: Path,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        max_numbers: int = 1_000_000,
        chunk_size: int = 100_000,
        poll_interval: float = 1.0,
        lease_seconds: float = 30.0,
    ) -> None:
        super().__init__(db)
        self.accept = accept
        self.directory = directory
        self.data_dir = Path(data_dir)
        self.max_bytes = max_bytes
        self.max_numbers = max_numbers
        self.chunk_size = max(1, min(chunk_size, accept.max_numbers))
        self.poll_interval = poll_interval
        self.lease_ms = int(lease_seconds * 1000)
        self.runner = secrets.token_hex(8)  # this process, as the holder of job leases
        self._plans: dict[int, Plan] = {}  # plans made by create(), used once by run() in this process
        self._parsed: dict[tuple[Any, ...], Plan] = {}  # the last files read (a preview, then its create)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running = False
        self.stats = {"chunks": 0, "jobs_done": 0, "jobs_failed": 0}

    # -- shared steps -------------------------------------------------------------------------------
    async def _key(self, actor: Actor, account_id: int | None) -> ApiKey:
        """The API key the job sends as: a customer's own; the account's oldest active key for staff/CLI
        and for a console user (who needs ``console.send``)."""
        if actor.is_customer and actor.role is not None:  # a console user (services/console_users.py)
            actor.require("console.send")
            account = actor.account_for(None)
            app_key = await self.db.read_small(lambda tx: store.first_active_key(tx, account))
            console_key = await self.directory.key(app_key) if app_key else None
            if console_key is None:
                raise QxError("APPKEY_INVALID", "账户没有可用的 API 密钥，无法发送")
            return console_key
        if actor.is_customer:
            key = await self.directory.key(actor.id)
            if key is None:
                raise QxError("APPKEY_INVALID")
            return key
        account = actor.account_for(account_id, "accounts.write")
        app_key = await self.db.read_small(lambda tx: store.first_active_key(tx, account))
        key = await self.directory.key(app_key) if app_key else None
        if key is None:
            raise QxError("NOT_FOUND", "账户不存在或没有可用的 API 密钥")
        return key

    async def _signature(self, key: ApiKey, options: JobOptions) -> str:
        if options.signature:
            return options.signature
        names = await self.directory.approved_signatures(key.account_id)
        if len(names) != 1:
            raise QxError("SIGNATURE_NOT_APPROVED", "请指定签名（账户有多个或没有已审核的签名）")
        return next(iter(names))

    async def _read(self, data: bytes, filename: str, options: JobOptions) -> Plan:
        if len(data) > self.max_bytes:
            raise QxError(
                "FILE_TOO_LARGE", f"文件超过上限 {self.max_bytes // (1024 * 1024)} MB", limit_bytes=self.max_bytes
            )
        options.check()
        cache_key = (hashlib.sha256(data).digest(), filename, options.number_column,
                     tuple(sorted(options.params_columns.items())))  # fmt: skip
        hit = self._parsed.get(cache_key)
        if hit is not None:  # the file a preview just read, now confirmed (same process)
            return hit

        def parse() -> Plan:
            f = read_number_file(
                data, filename, number_column=options.number_column, params_columns=options.params_columns,
                max_numbers=self.max_numbers,
            )  # fmt: skip
            return make_plan(f, self.chunk_size)

        plan = await asyncio.to_thread(parse)
        if plan.total == 0:
            raise QxError("NUMBERS_EMPTY", "文件中没有号码")
        self._parsed[cache_key] = plan
        while len(self._parsed) > PARSED_KEPT:
            self._parsed.pop(next(iter(self._parsed)))
        return plan

    @staticmethod
    def _body(job_id: int | None, suffix: str, options: JobOptions, signature: str, numbers: list[str],
              params: dict[str, str] | None) -> tuple[dict[str, Any], bytes]:  # fmt: skip
        """The accept request of one chunk (or group), and its raw bytes (the same on every run)."""
        body: dict[str, Any] = {"to": numbers, "signature": signature, "type": options.type}
        if options.template_id is not None:
            body["template_id"] = options.template_id
            body["params"] = {**options.params, **(params or {})}
        else:
            body["content"] = options.content
        if options.send_at is not None:
            body["send_at"] = options.send_at
        if options.audience is not None:
            body["audience"] = options.audience
        for option in ("skip_empty", "skip_silent"):
            if getattr(options, option):
                body[option] = True
        if job_id is not None:
            body["idempotency_key"] = f"job:{job_id}:{suffix}"
        return body, orjson.dumps(body)

    # -- preview ------------------------------------------------------------------------------------
    async def preview(
        self, actor: Actor, account_id: int | None, data: bytes, filename: str, options: JobOptions
    ) -> dict[str, Any]:
        """What sending this file would do, chunk by chunk through accept's own preparation; nothing is
        stored, nothing is billed, no frequency-limit counter is touched (a dry run of screening)."""
        key = await self._key(actor, account_id)
        plan = await self._read(data, filename, options)
        signature = await self._signature(key, options)
        return await self._preview(key, plan, filename, options, signature)

    async def _preview(self, key: ApiKey, plan: Plan, filename: str, options: JobOptions,
                       signature: str) -> dict[str, Any]:  # fmt: skip
        refused: Counter[str] = Counter()
        examples: dict[str, list[str]] = {"valid": []}
        if plan.duplicates:
            refused["NUMBER_DUPLICATE"] = len(plan.duplicates)
            examples["NUMBER_DUPLICATE"] = [mask(n) for n in plan.duplicates[:EXAMPLES]]
        valid = fee = total_parts = 0
        parts: set[int] = set()
        deferred: int | None = None
        send_at: int | None = None
        sample: str | None = None
        dry_run = DryRun()  # frequency limits checked, never counted: later chunks see the earlier ones
        for n in range(plan.chunks):
            for _, numbers, params in plan.requests(n):
                body, raw = self._body(None, "", options, signature, numbers, params)
                try:
                    p = await self.accept.prepare(key, body, raw, dry_run)
                except QxError as e:
                    if params is None or e.code not in PER_NUMBER_TEMPLATE_CODES:
                        raise
                    refused[e.code] += len(numbers)
                    examples.setdefault(e.code, []).extend(mask(x) for x in numbers[:EXAMPLES])
                    continue
                if p.release is not None:  # a screener that reserved anyway: give back at once
                    await p.release()
                valid += len(p.rows)
                fee += p.total_fee
                total_parts += p.total_parts
                if p.rows:
                    parts.add(p.parts)
                sample = sample or p.content
                send_at = p.send_at
                if "deferred_to" in p.note:
                    deferred = int(p.note["deferred_to"])
                if len(examples["valid"]) < EXAMPLES:
                    examples["valid"] += [mask(r[1]) for r in p.rows[: EXAMPLES - len(examples["valid"])]]
                for r in p.rejected:
                    refused[r["code"]] += 1
                    ex = examples.setdefault(r["code"], [])
                    if len(ex) < EXAMPLES:
                        ex.append(mask(r["to"]))
        row = await self.db.read_small(lambda tx: accounts_store.account_row(tx, key.account_id))
        balance_li = int(row[3]) if row else 0
        return {
            "filename": filename,
            "total": plan.total,
            "valid": valid,
            "invalid": refused.get("NUMBER_INVALID", 0),
            "duplicate": refused.get("NUMBER_DUPLICATE", 0),
            "opted_out": refused.get("OPTED_OUT", 0),
            "blacklisted": refused.get("BLACKLISTED", 0),
            "refused": dict(refused),
            "examples": {k: v[:EXAMPLES] for k, v in examples.items()},
            "parts": max(parts) if parts else 0,
            "parts_min": min(parts) if parts else 0,
            "total_parts": total_parts,
            "total_fee_li": fee,
            "total_fee": billing.li_to_yuan(fee),
            "balance_li": balance_li,
            "balance_enough": balance_li >= fee,  # packages (条数包) may pay for what the balance cannot
            "chunks": plan.chunks,
            "content": sample,
            "send_at": send_at,
            "send_at_local": _local(send_at),
            "deferred_to": deferred,
            "deferred_to_local": _local(deferred),
        }

    # -- create ------------------------------------------------------------------------------------
    async def create(
        self, actor: Actor, account_id: int | None, data: bytes, filename: str, options: JobOptions
    ) -> dict[str, Any]:
        """Store the file and the job; the worker (or ``run``) sends it. Obvious refusals (signature,
        template, content, frozen account) come back here, from a first request prepared as accept would."""
        key = await self._key(actor, account_id)
        plan = await self._read(data, filename, options)
        signature = await self._signature(key, options)
        options = replace(options, signature=signature)  # stored with the job: every run sends with it
        first = next(((nums, params) for _, nums, params in plan.requests(0)), None) if plan.chunks else None
        if first is not None:  # fail fast on what would refuse every chunk
            body, raw = self._body(None, "", options, signature, first[0][:100], first[1])
            try:
                p = await self.accept.prepare(key, body, raw)
            except QxError as e:
                if first[1] is None or e.code not in PER_NUMBER_TEMPLATE_CODES:
                    raise
            else:
                if p.release is not None:
                    await p.release()
        job_id = ids.take(1)[0]
        suffix = Path(filename).suffix.lower()
        rel = f"filejobs/{key.account_id}/{job_id}{suffix if suffix in ('.csv', '.xlsx', '.txt') else '.txt'}"
        path = self.data_dir / rel

        def save() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

        await asyncio.to_thread(save)
        now = now_ms()
        values = (job_id, key.account_id, key.app_key, store.ACTIVE, filename[:255] or "numbers.txt", rel, len(data),
                  options.to_json(), plan.total, len(plan.duplicates), plan.chunks, f"{actor.kind}:{actor.id}"[:80],
                  None, 0, now)  # fmt: skip
        try:
            await self.change(
                actor, "filejob.create", f"filejob:{job_id}", lambda tx: store.insert_job(tx, values),
                detail=lambda _: {"account_id": key.account_id, "filename": filename, "size": len(data),
                                  "total": plan.total, "chunks": plan.chunks},
            )  # fmt: skip
        except BaseException:
            await asyncio.to_thread(path.unlink, missing_ok=True)
            raise
        self._plans[job_id] = plan
        self._wake.set()
        return await self.progress(actor, job_id)

    # -- reads --------------------------------------------------------------------------------------
    async def progress(self, actor: Actor, job_id: int | str, account_id: int | None = None) -> dict[str, Any]:
        out = await self.find(actor, job_id, account_id)
        if out is None:
            raise QxError("FILE_JOB_NOT_FOUND")
        return out

    async def find(self, actor: Actor, job_id: int | str, account_id: int | None = None) -> dict[str, Any] | None:
        """The job's progress, or None when there is no such job for this actor (GET /v1/batches/{id} then
        looks for a batch)."""
        try:
            jid = int(job_id)
        except (TypeError, ValueError):
            return None
        if not 0 < jid < 2**63:
            return None
        scope = actor.account_id if actor.is_customer else (account_id if account_id is not None else None)
        if not actor.is_customer:
            actor.require("accounts.read")

        def q(tx: Tx) -> dict[str, Any] | None:
            row = store.job_row(tx, jid, scope)
            return None if row is None else _progress(row, store.chunk_rows(tx, jid))

        return await self.db.read_small(q)

    async def listing(self, actor: Actor, account_id: int | None = None, limit: int = 50) -> list[dict[str, Any]]:
        scope = actor.account_for(account_id) if actor.is_customer or account_id is not None else None
        if scope is None:
            actor.require("accounts.read")

        def q(tx: Tx) -> list[dict[str, Any]]:
            return [_progress(r, store.chunk_rows(tx, int(r[0]))) for r in store.list_jobs(tx, scope, limit)]

        return await self.db.read(q)

    # -- cancel -------------------------------------------------------------------------------------
    async def cancel(self, actor: Actor, job_id: int | str, account_id: int | None = None) -> dict[str, Any]:
        """Stop the job before its next chunk (accepted chunks stay accepted)."""
        job = await self.progress(actor, job_id, account_id)
        if actor.is_customer and actor.role is not None:  # a console user
            actor.require("console.send")
        if not actor.is_customer:
            actor.require("accounts.write")
        jid = int(job["job_id"])

        def fn(tx: Tx) -> bool:
            if not store.finish(tx, jid, "cancelled", now_ms(), "CANCELLED", "已取消"):
                raise QxError("FILE_JOB_FINISHED", f"文件发送任务已结束（{store.job_status(tx, jid)}）")
            return True

        await self.change(actor, "filejob.cancel", f"filejob:{jid}", fn, detail=lambda _: {"job_id": str(jid)})
        return await self.progress(actor, jid, account_id)

    # -- the runner ---------------------------------------------------------------------------------
    async def run(self, job_id: int, on_chunk: Callable[[], None] | None = None) -> bool:
        """Send the job's remaining chunks here if its lease can be had; False when another runner holds it
        (or it is not running any more)."""
        if not await self._claim(job_id):
            return False
        ours = True
        try:
            ours = await self._run(job_id, on_chunk)
        except asyncio.CancelledError:  # stopping: the next runner resumes from the recorded chunks
            raise
        except Exception:  # the lease runs out and a runner tries again later
            log.exception("file job %s stopped by an unexpected error; it will be resumed", job_id)
            ours = False
            return True
        finally:
            self._plans.pop(job_id, None)
            if ours:
                await asyncio.shield(self.db.write(lambda tx: store.release(tx, job_id, self.runner)))
        return True

    async def _claim(self, job_id: int) -> bool:
        now = now_ms()
        return await self.db.write(lambda tx: store.claim(tx, job_id, self.runner, now, now + self.lease_ms))

    async def _run(self, job_id: int, on_chunk: Callable[[], None] | None) -> bool:
        row = await self.db.read_small(lambda tx: store.job_row(tx, job_id))
        options = JobOptions.from_json(row[7])
        plan = self._plans.get(job_id)
        if plan is None:
            try:
                data = await asyncio.to_thread((self.data_dir / row[5]).read_bytes)
                plan = await self._read(data, row[4], options)
            except FileNotFoundError:  # e.g. an API process whose data_dir this process does not share
                await self._finish(job_id, "failed", QxError("FILE_INVALID", "任务文件不存在（数据目录未共享？）"))
                return True
            except QxError as e:  # the file no longer passes the limits in force
                await self._finish(job_id, "failed", e)
                return True
        key = await self.directory.key(row[2])
        if key is None:
            await self._finish(job_id, "failed", QxError("APPKEY_INVALID"))
            return True
        signature = options.signature or ""
        done = await self.db.read_small(lambda tx: store.committed_chunks(tx, job_id))
        for n in range(plan.chunks):
            if n in done:
                continue
            accepted = rejected = fee = 0
            refused: Counter[str] = Counter()
            batches: list[str] = []
            requests = plan.requests(n)
            sent = 0  # numbers of this chunk whose request went through
            for suffix, numbers, params in requests:
                if not await self._claim(job_id):  # cancelled (or, after a long stall, taken over)
                    if sent and await self.db.read_small(lambda tx: store.job_status(tx, job_id)) == "cancelled":
                        # a personalised chunk cancelled between its requests: count what went out
                        values = (job_id, n, sent, accepted, rejected, fee, orjson.dumps(dict(refused)).decode(),
                                  ",".join(batches), now_ms())  # fmt: skip
                        await self.db.write(lambda tx, v=values: store.insert_chunk(tx, v))  # type: ignore[misc]
                    return False
                sent += len(numbers)
                body, raw = self._body(job_id, suffix, options, signature, numbers, params)
                try:
                    resp = await self.accept.accept(key, body, raw)
                except QxError as e:
                    if e.code == "NO_VALID_NUMBERS":
                        items = e.detail.get("rejected") or []
                        rejected += len(items)
                        refused.update(r["code"] for r in items)
                        continue
                    if params is not None and e.code in PER_NUMBER_TEMPLATE_CODES:
                        rejected += len(numbers)
                        refused[e.code] += len(numbers)
                        continue
                    await self._finish(job_id, "failed", e)
                    return True
                accepted += int(resp["accepted_count"])
                rejected += int(resp["rejected_count"])
                fee += int(resp["total_fee_li"])
                refused.update(r["code"] for r in resp["rejected"])
                batches.append(str(resp["batch_id"]))
            size = len(plan.numbers[n * plan.chunk_size : (n + 1) * plan.chunk_size])
            values = (job_id, n, size, accepted, rejected, fee, orjson.dumps(dict(refused)).decode(),
                      ",".join(batches), now_ms())  # fmt: skip
            await self.db.write(lambda tx, v=values: store.insert_chunk(tx, v))  # type: ignore[misc]
            self.stats["chunks"] += 1
            if on_chunk is not None:
                on_chunk()
        await self._finish(job_id, "done", None)
        return True

    async def _finish(self, job_id: int, status: str, err: QxError | None) -> None:
        code, message = (err.code, err.message) if err else (None, None)
        await self.db.write(lambda tx: store.finish(tx, job_id, status, now_ms(), code, message))
        self.stats["jobs_done" if status == "done" else "jobs_failed"] += 1
        if err is not None:
            log.warning("file job %s failed: %s", job_id, err.code)

    # -- the worker (app.FileJobsRole) ---------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        """Resume unfinished jobs now, then look for new ones every ``poll_interval`` (or when woken)."""
        self._running = True
        self._task = asyncio.create_task(self._loop(), name="filejobs")

    async def stop(self) -> None:
        self._running = False
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _loop(self) -> None:
        while self._running:
            self._wake.clear()
            try:
                for job_id in await self.db.read_small(lambda tx: store.runnable_jobs(tx, now_ms())):
                    await self.run(job_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("file job worker round failed")
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            except TimeoutError:
                pass


def _progress(row: Any, chunks: list[Any]) -> dict[str, Any]:
    (jid, account_id, _app_key, status, filename, _path, size, options, total, duplicates, n_chunks, code,
     message, _by, created_at, finished_at) = row  # fmt: skip
    refused: Counter[str] = Counter()
    if duplicates:
        refused["NUMBER_DUPLICATE"] = int(duplicates)
    accepted = rejected = fee = processed = 0
    batches: list[str] = []
    for _n, csize, acc, rej, cfee, crefused, cbatches in chunks:
        processed += int(csize)
        accepted += int(acc)
        rejected += int(rej)
        fee += int(cfee)
        refused.update(orjson.loads(crefused))
        batches += [b for b in str(cbatches).split(",") if b]
    total = int(total)
    done_numbers = processed + int(duplicates)
    opts = orjson.loads(options)
    return {
        "job_id": str(jid),
        "kind": "file_job",
        "account_id": int(account_id),
        "status": status,
        "filename": filename,
        "size": int(size),
        "type": opts.get("type"),
        "signature": opts.get("signature"),
        "template_id": opts.get("template_id"),
        "total": total,
        "processed": done_numbers,
        "percent": 100 if status == "done" else (done_numbers * 100 // total if total else 0),
        "chunks": int(n_chunks),
        "chunks_done": len(chunks),
        "accepted": accepted,
        "rejected": rejected + int(duplicates),
        "refused": dict(refused),
        "fee_li": fee,
        "fee": billing.li_to_yuan(fee),
        "batch_ids": batches,
        "error": {"code": code, "message": message} if code and code != "CANCELLED" else None,
        "created_at": int(created_at),
        "finished_at": int(finished_at) if finished_at is not None else None,
    }
