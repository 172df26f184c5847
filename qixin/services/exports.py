"""Export jobs: a large message export (any query of ``GET /v1/sms`` / ``GET /admin/messages``) written to
a file in the background, with progress, downloadable when done.

The streamed exports (``GET /v1/exports/messages``) stay; a job is the form for exports too large for
one HTTP answer. Use cases (every entry point calls these: ``POST /v1/exports``, ``POST /admin/exports``,
``qixin exports …``): ``create``, ``progress``, ``listing``, ``file``.

Rules:
- The filter is validated, and the actor's scope fixed, at creation (``MessageSearch.conditions``): a
  customer exports only its own account, and its numbers are shown. Staff need ``accounts.read`` and see
  numbers only with ``numbers.read``. The job stores the conditions and that choice; the worker never
  re-decides them.
- Visibility: a customer's jobs are its account's (any of its keys or console users). Staff jobs are
  the staff side's, and a job that shows numbers is visible only to staff who may read numbers.
  Anything else is ``EXPORT_JOB_NOT_FOUND`` (never "forbidden": ids are not confirmed to other tenants).
- The worker writes ``exports/<account or staff>/<id>.<csv|xlsx>`` under ``data_dir``, page by page
  (``EXPORT_PAGE`` rows: memory stays flat whatever the size), newest first like the search. Every
  ``CHECKPOINT_ROWS`` rows it records the rows written, the last message id and (CSV) the file's byte
  offset, and renews its lease.
- A restart (the lease runs out) resumes a CSV at its last checkpoint: the file is cut back to the
  recorded offset and the rows continue after the recorded id, so no row is written twice or lost. An
  XLSX (a zip, which cannot be appended to) starts again from the first row.
- ``total`` is the number of matching rows counted when the job starts (an estimate: messages keep
  arriving, and the export takes the rows as it meets them).
- Finished jobs and their files are purged by retention ``export_keep_days`` after they finished
  (services/retention.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson

from qixin.domain.export import csv_header, safe_cell
from qixin.errors import QxError
from qixin.ids import ids
from qixin.services.actor import Actor, UseCase
from qixin.services.queries import EXPORT_COLUMNS, MessageFilter, MessageSearch
from qixin.store import exports as store
from qixin.store.db import Database, now_ms
from qixin.tasks import cancel

log = logging.getLogger("qixin.exports")

CHECKPOINT_ROWS = 50_000
LEASE_MS = 60_000
FORMATS = ("csv", "xlsx")
MEDIA = {"csv": "text/csv; charset=utf-8", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


async def _prefetch(pages: AsyncIterator[list[dict[str, Any]]]) -> AsyncIterator[list[dict[str, Any]]]:
    """The pages, the next one read (in its worker thread) while the caller writes this one."""
    nxt: asyncio.Future[list[dict[str, Any]]] = asyncio.ensure_future(anext(pages))
    try:
        while True:
            try:
                page = await nxt
            except StopAsyncIteration:
                return
            nxt = asyncio.ensure_future(anext(pages))
            yield page
    finally:
        if not nxt.done():
            nxt.cancel()
            with contextlib.suppress(BaseException):
                await nxt


class ExportJobs(UseCase):
    def __init__(self, db: Database, search: MessageSearch, data_dir: Path, poll_interval: float = 1.0,
                 checkpoint_rows: int = CHECKPOINT_ROWS) -> None:  # fmt: skip
        super().__init__(db)
        self.search = search
        self.data_dir = Path(data_dir)
        self.poll_interval = poll_interval
        self.checkpoint_rows = checkpoint_rows
        self.runner = f"exp-{os.getpid()}-{secrets.token_hex(4)}"
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.stop_after_rows: int | None = None  # tests: stop a job (as a crash would) after this many rows

    # -- use cases -----------------------------------------------------------------------------------
    async def create(self, actor: Actor, f: MessageFilter, fmt: str = "csv") -> dict[str, Any]:
        """A new export job of the search ``f`` (validated now) as ``fmt`` (csv or xlsx)."""
        if fmt not in FORMATS:
            raise QxError("INVALID_REQUEST", "format 必须是 csv 或 xlsx")
        where, reveal = self.search.conditions(actor, f)
        where.pop("before_id", None)
        job_id = ids.one()
        account_id = actor.account_id if actor.is_customer else None
        rel = f"exports/{account_id if account_id is not None else 'staff'}/{job_id}.{fmt}"
        values = (job_id, account_id, f"{actor.kind}:{actor.id}"[:80], reveal, orjson.dumps(where).decode(), fmt,
                  "queued", rel, now_ms())  # fmt: skip
        await self.change(
            actor, "export.create", f"export:{job_id}", lambda tx: store.insert_job(tx, values),
            detail=lambda _: {"format": fmt, "filters": where, "reveal": reveal},
        )  # fmt: skip
        self._wake.set()
        return await self.progress(actor, job_id)

    def _visible(self, actor: Actor, row: Any) -> bool:
        account_id, reveal = row[1], bool(row[3])
        if actor.is_customer:
            return account_id is not None and int(account_id) == actor.account_id
        if not actor.may("accounts.read"):
            return False
        return account_id is None and (not reveal or actor.may("numbers.read"))

    async def _job(self, actor: Actor, job_id: int | str) -> Any:
        try:
            jid = int(job_id)
        except (TypeError, ValueError):
            raise QxError("EXPORT_JOB_NOT_FOUND") from None
        row = await self.read(lambda tx: store.job_row(tx, jid)) if 0 < jid < 2**63 else None
        if row is None or not self._visible(actor, row):
            raise QxError("EXPORT_JOB_NOT_FOUND")
        return row

    @staticmethod
    def _view(row: Any) -> dict[str, Any]:
        (jid, _account, _by, reveal, filters, fmt, status, total, written, _last, _off, _path, size, code, created,
         finished) = row  # fmt: skip
        pct = 100.0 if status == "done" else (round(min(99.9, 100.0 * int(written) / int(total)), 1) if total else 0.0)
        return {
            "id": str(jid), "status": status, "format": fmt, "filters": orjson.loads(filters),
            "numbers_masked": not bool(reveal), "rows_written": int(written),
            "total_estimate": None if total is None else int(total), "percent": pct,
            "size": None if size is None else int(size), "error_code": code, "created_at": int(created),
            "finished_at": None if finished is None else int(finished),
        }  # fmt: skip

    async def progress(self, actor: Actor, job_id: int | str) -> dict[str, Any]:
        return self._view(await self._job(actor, job_id))

    async def listing(self, actor: Actor, limit: int = 20) -> dict[str, Any]:
        if actor.is_customer:
            account_id: int | None = actor.account_id
        else:
            actor.require("accounts.read")
            account_id = None
        rows = await self.read(lambda tx: store.list_jobs(tx, account_id, max(1, min(int(limit), 100))))
        return {"items": [self._view(r) for r in rows if self._visible(actor, r)]}

    async def file(self, actor: Actor, job_id: int | str) -> tuple[Path, str, str]:
        """(path, download name, media type) of a finished export; ``EXPORT_NOT_READY`` before."""
        row = await self._job(actor, job_id)
        if row[6] != "done":
            raise QxError("EXPORT_NOT_READY", status=row[6])
        path = self.data_dir / str(row[11])
        if not path.exists():
            raise QxError("EXPORT_JOB_NOT_FOUND", "导出文件已不存在")
        return path, f"messages-{row[0]}.{row[5]}", MEDIA[str(row[5])]

    # -- the worker ------------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="qixin-exports")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel(task)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_pending()
            except Exception:
                log.exception("export worker failed; trying again")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            except TimeoutError:
                pass

    async def run_pending(self) -> int:
        """Run every job that is due (queued, or its runner's lease ran out); the jobs finished."""
        done = 0
        for jid in await self.read(lambda tx: store.runnable(tx, now_ms())):
            now = now_ms()
            if await self.db.write(lambda tx, j=jid, n=now: store.claim(tx, j, self.runner, n, n + LEASE_MS)):  # type: ignore[misc]
                done += await self._run(jid)
        return done

    async def _run(self, jid: int) -> int:
        row = await self.read(lambda tx: store.job_row(tx, jid))
        where = orjson.loads(row[4])
        reveal, fmt, path = bool(row[3]), str(row[5]), self.data_dir / str(row[11])
        try:
            if row[7] is None:
                total = await self.read(lambda tx: store.count_matching(tx, where))
                await self.db.write(lambda tx: store.set_total(tx, jid, total))
            if fmt == "csv":
                rows, size = await self._write_csv(jid, where, reveal, path, int(row[8]), row[9], int(row[10]))
            else:
                rows, size = await self._write_xlsx(jid, where, reveal, path)
        except _Lost:
            return 0
        except QxError as e:
            code = e.code
            await self.db.write(lambda tx: store.finish(tx, jid, self.runner, "failed", 0, None, code, now_ms()))
            return 0
        await self.db.write(lambda tx: store.finish(tx, jid, self.runner, "done", rows, size, None, now_ms()))
        log.info("export %s done: %d rows, %d bytes", jid, rows, size)
        return 1

    async def _checkpoint(self, jid: int, rows: int, last_id: int | None, offset: int) -> None:
        until = now_ms() + LEASE_MS
        ok = await self.db.write(lambda tx: store.checkpoint(tx, jid, self.runner, rows, last_id, offset, until))
        if not ok:
            raise _Lost
        if self.stop_after_rows is not None and rows >= self.stop_after_rows:
            raise _Lost  # tests: as if the process died here (the lease stays until it runs out)

    async def _write_csv(self, jid: int, where: dict[str, Any], reveal: bool, path: Path, rows: int,
                         last_id: int | None, offset: int) -> tuple[int, int]:  # fmt: skip
        have = await asyncio.to_thread(lambda: path.stat().st_size if path.exists() else -1)
        resume = last_id is not None and offset > 0 and have >= offset
        if not resume:
            rows, last_id, offset = 0, None, 0
            await self.db.write(lambda tx: store.start_over(tx, jid, self.runner))
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        fh = await asyncio.to_thread(open, path, "r+b" if resume else "wb")
        try:
            if resume:
                await asyncio.to_thread(fh.truncate, offset)
                await asyncio.to_thread(fh.seek, offset)
            else:
                offset += await asyncio.to_thread(fh.write, csv_header(EXPORT_COLUMNS))
            if resume:
                where = where | {"before_id": last_id}
            since = 0
            async for data, n, last_id in self.search.csv_pages(where, reveal):
                offset += await asyncio.to_thread(fh.write, data)
                rows += n
                since += n
                if since >= self.checkpoint_rows:
                    since = 0
                    await asyncio.to_thread(fh.flush)
                    await self._checkpoint(jid, rows, last_id, offset)
            await asyncio.to_thread(fh.flush)
            await asyncio.to_thread(os.fsync, fh.fileno())
        finally:
            await asyncio.to_thread(fh.close)
        return rows, offset

    async def _write_xlsx(self, jid: int, where: dict[str, Any], reveal: bool, path: Path) -> tuple[int, int]:
        from openpyxl import Workbook

        await self.db.write(lambda tx: store.start_over(tx, jid, self.runner))
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        wb = Workbook(write_only=True)
        ws = wb.create_sheet("短信记录")
        ws.append(list(EXPORT_COLUMNS))
        rows = since = 0
        tmp = path.with_suffix(".xlsx.part")
        try:
            async for page in _prefetch(self.search.pages(where, reveal)):
                for it in page:
                    ws.append([safe_cell(it.get(c)) for c in EXPORT_COLUMNS])
                rows += len(page)
                since += len(page)
                if since >= self.checkpoint_rows:
                    since = 0
                    await self._checkpoint(jid, rows, int(page[-1]["id"]), 0)
        except BaseException:
            # close the write-only workbook's streams (its rows sit in a temporary file), keep nothing
            await asyncio.to_thread(wb.save, tmp)
            await asyncio.to_thread(tmp.unlink, missing_ok=True)
            raise
        await asyncio.to_thread(wb.save, tmp)
        await asyncio.to_thread(os.replace, tmp, path)
        return rows, (await asyncio.to_thread(path.stat)).st_size


class _Lost(Exception):
    """The job's lease is no longer this runner's (or a test stopped it): stop writing."""
