"""Number check file jobs: up to 1,000,000 numbers from a CSV / XLSX / TXT file, checked in chunks.

Rules:
- Submit (``submit``): the file's first column (CSV, TXT: one number a line; XLSX: the first sheet) is
  normalised and deduplicated like an inline check and stored in the database per chunk
  (``number_check_inputs``: any process of the platform can run the job), with the whole price
  reserved on the ledger (``billing.numcheck_reserve``, ref ``numcheck:<id>``), the job and its
  ``number_checks`` row, in one transaction; a balance that cannot pay refuses the job whole.
- The worker (``run_once`` / ``start``) leases the oldest unfinished job and checks it ``CHUNK``
  numbers at a time with the inline rules (``NumberChecks.evaluate``). Each chunk commits ONE
  transaction: its result pages, the refund of its free queries (库无, upstream timeouts and errors:
  ``billing.numcheck_settle`` with ref ``numcheck:<id>:<chunk>``, once) and the progress
  (``done_chunks`` advanced only from the value read, so a chunk is never applied twice). A restart
  (or another worker after the lease) resumes at the first chunk not committed.
- When the last chunk is in, the job is ``done``: the check's counts, billed queries and fee are
  computed from its pages; results and the four packages are read as for any check
  (``GET /v1/numbers/checks/{id}``, ``…/packages/{class}``).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import functools
import io
import logging
from typing import Any

import orjson

from qixin.domain.numbercheck import CLASSES
from qixin.errors import QxError
from qixin.ids import ids
from qixin.services import billing
from qixin.services.actor import Actor, UseCase
from qixin.services.numbercheck import PAGE, NumberChecks, normalized_entries, record_marks
from qixin.store import numbercheck as store
from qixin.store.db import Tx, now_ms
from qixin.tasks import cancel

log = logging.getLogger("qixin.numbercheck")

CHUNK = 50_000  # numbers per committed step (a multiple of PAGE)
MAX_JOB = 1_000_000
LEASE_MS = 60_000


def read_numbers(filename: str, data: bytes) -> list[str]:
    """The first column of an uploaded file: .xlsx (first sheet) or text (.csv / .txt, UTF-8)."""
    if filename.lower().endswith(".xlsx"):
        from openpyxl import load_workbook

        try:
            wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as e:  # openpyxl raises many kinds for a broken file
            raise QxError("INVALID_REQUEST", "无法读取 XLSX 文件") from e
        ws = wb.worksheets[0]
        out = [str(r[0]).strip() for r in ws.iter_rows(values_only=True) if r and r[0] is not None]
        wb.close()
        return out
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise QxError("INVALID_REQUEST", "文件必须是 UTF-8 编码的 CSV / TXT，或 XLSX") from e
    return [row[0] for row in csv.reader(io.StringIO(text)) if row]


class NumberCheckJobs(UseCase):
    def __init__(self, checks: NumberChecks, interval: float = 1.0, chunk: int = CHUNK) -> None:
        if chunk % PAGE:
            raise ValueError(f"chunk must be a multiple of {PAGE}")
        super().__init__(checks.db)
        self.chunk = chunk
        self.checks = checks
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    async def submit(self, actor: Actor, filename: str, data: bytes, account_id: int | None = None) -> dict[str, Any]:
        acct = actor.account_for(account_id, "accounts.write")
        numbers = await asyncio.to_thread(read_numbers, filename, data)
        entries = await asyncio.to_thread(normalized_entries, numbers, MAX_JOB)
        unit = await self.checks.unit_price(acct)
        job_id = ids.one()
        size = self.chunk
        inputs = [orjson.dumps(entries[i : i + size]).decode() for i in range(0, len(entries), size)]
        total = len(entries)
        chunks = len(inputs)
        now = now_ms()

        def write(tx: Tx) -> dict[str, Any]:
            if unit:
                billing.numcheck_reserve(tx, acct, str(job_id), total, unit)
            store.insert_check(tx, job_id, acct, actor.id, total, 0, total * unit, unit, {}, now)
            store.insert_job(tx, job_id, acct, total, size, unit, inputs, now)
            return {"job_id": str(job_id), "total": total, "chunks": chunks, "reserved_li": total * unit,
                    "status": "queued"}  # fmt: skip

        out = await self.change(
            actor,
            "numbers.check_job",
            f"numcheck:{job_id}",
            write,
            lambda o: {k: o[k] for k in ("total", "reserved_li")},
        )
        self._wake.set()
        return out

    async def get(self, actor: Actor, job_id: str) -> dict[str, Any]:
        from qixin.services.queries import parse_id

        jid = parse_id(job_id)
        row = await self.db.read(lambda tx: store.job_row(tx, jid))
        if row is None or (actor.is_customer and int(row[1]) != actor.account_id):
            raise QxError("NOT_FOUND")
        if not actor.is_customer:
            actor.require("accounts.read")
        job = dict(zip(store.JOB_KEYS, row, strict=True))
        out = {"job_id": str(jid), "status": job["status"], "total": job["total"],
               "processed": min(int(job["done_chunks"]) * int(job["chunk_size"]), int(job["total"])),
               "check_id": str(jid)}  # fmt: skip
        if job["status"] == "done":
            check = await self.db.read(lambda tx: store.check_row(tx, jid))
            out |= {"charged": int(check[4]), "fee_li": int(check[5]), "counts": orjson.loads(check[7])}
        return out

    # -- the worker ------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="qixin-numcheck-jobs")

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                while await self.run_once():
                    pass
            except Exception:
                log.exception("number check job failed; retried after its lease")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)

    async def run_once(self) -> bool:
        """Run one job to its end (from its first chunk not committed); False when none is due."""
        now = now_ms()
        row = await self.db.write(lambda tx: store.claim_job(tx, now, now + LEASE_MS))
        if row is None:
            return False
        job = dict(zip(store.JOB_KEYS, row, strict=True))
        jid, acct, unit, size = int(job["id"]), int(job["account_id"]), int(job["unit_li"]), int(job["chunk_size"])
        for chunk in range(int(job["done_chunks"]), int(job["chunks"])):
            text = await self.db.read(functools.partial(store.job_input, job_id=jid, chunk=chunk))
            part = [(str(a), b) for a, b in orjson.loads(text)]
            rows, _, _ = await self.checks.evaluate(part, now_ms(), chunk * size)
            keys = [billing_key_of(r) for r in rows]
            pages = [orjson.dumps(rows[i : i + PAGE]).decode() for i in range(0, len(rows), PAGE)]
            first_page = chunk * (size // PAGE)

            def step(
                tx: Tx, c: int = chunk, p: list[str] = pages, k: list[str] = keys, fp: int = first_page,
                rows: list[tuple[Any, ...]] = rows,
            ) -> None:  # fmt: skip
                if not store.advance_job(tx, jid, c, now_ms() + LEASE_MS, now_ms()):
                    raise QxError("CONFLICT", "该分片已由其他进程完成")  # nothing written: the update matched nothing
                store.insert_pages_from(tx, jid, fp, p)
                record_marks(tx, acct, rows, now_ms())
                if unit:
                    billing.numcheck_settle(tx, acct, f"{jid}:{c}", k, unit)

            try:
                await self.db.write(step)
            except QxError as e:
                if e.code != "CONFLICT":
                    raise
                log.info("number check job %s chunk %s was committed by another worker", jid, chunk)
        counts, charged = await self._totals(jid)
        await self.db.write(lambda tx: store.finish_job(tx, jid, charged, charged * unit, counts, now_ms()))
        return True

    async def _totals(self, jid: int) -> tuple[dict[str, int], int]:
        counts = dict.fromkeys(CLASSES, 0)
        charged = 0
        after = -1
        while True:
            pages = await self.db.read(functools.partial(store.pages, check_id=jid, after=after))
            for _, text in pages:
                for r in orjson.loads(text):
                    counts[r[2]] += 1
                    charged += bool(r[8])
            if len(pages) < store.PAGES_PER_READ:
                return counts, charged
            after = int(pages[-1][0])


def billing_key_of(row: tuple[Any, ...]) -> str:
    """The billing outcome of a stored row: billed rows count, the others are free."""
    return "charged" if row[8] else "no_record"


__all__ = ["CHUNK", "MAX_JOB", "NumberCheckJobs", "read_numbers"]
