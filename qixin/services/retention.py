"""Retention (c002 7.2): message details are kept ``retention_days`` (six months by default), then purged.

Rules:
- Purged when older than the cutoff (accepted before it): messages (content, numbers, receipt codes) and
  their submitted parts (``submits``, where receipts were matched), batches no message refers to any
  more (with their declared audience), uplink messages (``mo_messages``), webhook events already
  delivered or given up (``webhook_outbox`` sent/dead), parked receipts (``receipt_inbox``).
- Kept: the rollups (``stats_hourly``), the latency histograms, the ledger and package ledger,
  statements, the audit log, complaints; messages that are not final yet; and every message named by an
  open complaint (its message, or every message to its number) until the complaint is closed
  (``close_complaint``), with the batch that holds its content.
- One purge is many short transactions: each chunk is one write job, sized adaptively so that its
  statements take about ``retention_chunk_ms`` (50 ms by default): the writer, shared with the send path,
  is never held longer than that at a time. Deletes go by primary-key range when a whole chunk goes, by
  id list otherwise. Every chunk is idempotent: purges in several processes, or one interrupted and
  run again, remove each row once.
- After the purge the mark (``retention_marks``) moves to the cutoff and ONE audit row records the cutoff
  and the counts (actor ``system:retention`` for the daily worker, ``cli`` from the command line).
  ``qixin stats verify`` / ``rebuild`` compare and recount only the hours from the mark on (the rollups
  of purged hours are kept while their messages are gone).
- The cutoff is the start of an hour (UTC), so the rollups of an hour are either all before the mark or
  all after it.
- PostgreSQL (store/partitions.py): ``messages`` and ``submits`` are partitioned by Beijing month (by id
  range). A month whose whole range is before the cutoff (with the ids' minute of margin) is detached and
  dropped in one short transaction of its own connection (a lock timeout, tried again); the messages it
  must keep (open-complaint evidence, not final) are copied out and written back first — they land in the
  default partition, where the chunked walk keeps them until the complaint closes. Months go whole: the
  month the cutoff falls in stays until all of it is past, and the chunked walk (as on SQLite) covers only
  what lies below the first attached month — the default and legacy partitions. ``maintain`` creates the
  current and the next month ahead: on start of the role and before each daily purge; ``seal`` then counts
  each month a day after it ended (store/partitions.py: ``Seal``), so that its drop needs no scan.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from qixin import ids
from qixin.domain.calendar import SHANGHAI
from qixin.domain.timeparse import parse_time
from qixin.errors import QxError
from qixin.services.actor import Actor, UseCase, audit
from qixin.store import exports as export_store
from qixin.store import partitions
from qixin.store import retention as store
from qixin.store.db import Database, Tx, now_ms
from qixin.tasks import cancel

log = logging.getLogger("qixin.retention")

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
MIN_CHUNK, MAX_CHUNK, FIRST_CHUNK = 100, 20_000, 500
FINAL = frozenset(store.FINAL)


async def _zero() -> int:
    return 0


def _month_bound(cut: int) -> int:
    """PostgreSQL: a month partition goes whole when every id of its range is older than the cutoff by a
    minute (the ids' margin for clocks)."""
    return partitions.id_at(cut - 60_000)


def _id_below(before_at: int) -> int:
    """An id above every id generated before ``before_at`` (ids are time-ordered: ms << 22), with a
    minute's margin for clocks: the created_at test decides exactly."""
    ms = before_at + 60_000 - ids.EPOCH_MS
    return max(ms, 0) << 22


class Chunks:
    """Adaptive chunk size: rows per job so that one job's transaction — its statements and its commit
    (on SQLite the commit may include a WAL checkpoint) — takes about ``target_ms``. ``took`` is told both:
    the statements' time (measured inside the job) and the round trip (submit → committed, which also
    holds any wait for the writer: an upper bound); the size follows the round trip."""

    def __init__(self, target_ms: float) -> None:
        self.target_ms = target_ms
        self.size = FIRST_CHUNK
        self.longest_ms = 0.0  # statements of one chunk
        self.longest_commit_ms = 0.0  # round trip of one chunk, commit included
        self.count = 0
        self.per_row: float | None = None  # ms per row, smoothed
        self.round_trips: list[float] = []

    def took(self, rows: int, ms: float, round_trip_ms: float) -> None:
        log.debug("chunk of %d rows (size %d): %.1f ms, round trip %.1f ms", rows, self.size, ms, round_trip_ms)
        self.count += 1
        self.longest_ms = max(self.longest_ms, ms)
        self.longest_commit_ms = max(self.longest_commit_ms, round_trip_ms)
        self.round_trips.append(round_trip_ms)
        if rows <= 0:
            return
        per_row = max(round_trip_ms, ms, 0.01) / rows
        # pessimistic: the slower of this chunk and the running average (timings are noisy on a busy machine)
        self.per_row = per_row if self.per_row is None else max(per_row, 0.7 * self.per_row + 0.3 * per_row)
        want = 0.6 * self.target_ms / self.per_row  # a margin below the target
        self.size = int(min(MAX_CHUNK, 1.25 * self.size, max(MIN_CHUNK, want)))  # grows by a quarter at most

    def phase(self) -> Chunks:
        """A fresh size for another table (another cost per row), keeping the totals here."""
        other = Chunks(self.target_ms)
        other.count, other.longest_ms, other.longest_commit_ms = self.count, self.longest_ms, self.longest_commit_ms
        other.round_trips = self.round_trips
        return other


class Retention(UseCase):
    """The purge (CLI, daily worker) and the closing of complaints whose evidence it keeps."""

    def __init__(self, db: Database, days: int, chunk_ms: float = 50.0, hour: int = 4,
                 on_change: Callable[[], None] | None = None, data_dir: Path | None = None,
                 export_keep_days: int = 7) -> None:  # fmt: skip
        super().__init__(db, on_change)
        self.export_keep_days = export_keep_days  # finished export jobs (services/exports.py) kept this long
        self.data_dir = data_dir  # where file jobs keep their uploads (None: rows only)
        self.days = days
        self.chunk_ms = chunk_ms
        self.hour = hour
        self.last_drop_steps: dict[str, float] = {}  # the last partition drop, step by step (ms; benches read it)
        self._freeing: asyncio.Task[float] | None = None  # the drop of the tables the last purge detached
        self.lock_timeout_ms = 1000  # a partition drop waits at most this long for its lock, then tries again
        self._task: asyncio.Task[None] | None = None

    def cutoff(self, now: int | None = None) -> int:
        """The default cutoff: ``days`` before now, at the start of that hour."""
        at = (now_ms() if now is None else now) - self.days * DAY_MS
        return at // HOUR_MS * HOUR_MS

    async def purge(self, actor: Actor, before: str | int | None = None, dry_run: bool = False) -> dict[str, Any]:
        """Purge message details older than ``before`` (default: the retention period; a date means
        00:00 Beijing time; never later than now). With ``dry_run`` count what would go, change nothing."""
        actor.require("retention")
        now = now_ms()
        cut = self.cutoff(now) if before in (None, "") else parse_time(before)
        assert cut is not None
        cut = cut // HOUR_MS * HOUR_MS
        if cut > now:
            raise QxError("INVALID_REQUEST", "清理时间点不能晚于当前时间")
        started = time.perf_counter()
        chunks = Chunks(self.chunk_ms)
        counts = {
            "messages": 0,
            "submits": 0,
            "batches": 0,
            **{t: 0 for t in store.SIMPLE_TABLES},
            "file_jobs": 0,
            "export_jobs": 0,
        }
        kept = {"complaint_evidence": 0, "not_final": 0}
        kept_batches: set[int] = set()
        id_below = _id_below(cut)
        dropped: list[str] = []
        drop_ms = 0.0
        if self.db.is_pg and await self.db.read(partitions.is_partitioned):
            if not dry_run:
                dropped, drop_ms = await self._drop_months(cut, counts)
            # the walk stops below the first month not wholly past: a month goes whole (the dry run walks the
            # months it would drop, by the same rule)
            first = await self.db.read(lambda tx: partitions.first_month_low(tx, _month_bound(cut)))
            if first is not None:
                id_below = min(id_below, first)

        # 1. messages and their parts, by id (time order)
        last = 0
        while True:
            size = chunks.size

            def job(tx: Tx, last: int = last, size: int = size) -> tuple[int, int, int, int, set[int], int, float]:
                t0 = time.perf_counter()
                rows = store.message_rows(tx, last, id_below, size)
                if not rows:
                    return -1, 0, 0, 0, set(), 0, 0.0
                numbers, protected = store.open_complaints(tx)
                go: list[int] = []
                evidence = not_final = 0
                batches: set[int] = set()
                for mid, number, status, created, batch in rows:
                    if int(created) >= cut:  # within the ids' minute of margin: newer than the cutoff
                        batches.add(int(batch))
                    elif status not in FINAL:
                        not_final += 1
                        batches.add(int(batch))
                    elif number in numbers or int(mid) in protected:
                        evidence += 1
                        batches.add(int(batch))
                    else:
                        go.append(int(mid))
                m = s = 0
                if dry_run:
                    m = len(go)
                elif len(go) == len(rows):
                    m, s = store.delete_message_range(tx, go[0], go[-1])
                elif go:
                    m, s = store.delete_messages(tx, go)
                return int(rows[-1][0]), m, s, evidence, batches, not_final, (time.perf_counter() - t0) * 1000

            run = self.db.read if dry_run else self.db.write
            t0 = time.perf_counter()
            last_id, m, s, evidence, batches, not_final, ms = await run(job)
            if last_id < 0:
                break
            chunks.took(m + s + evidence + not_final, ms, (time.perf_counter() - t0) * 1000)
            last = last_id
            counts["messages"] += m
            counts["submits"] += s
            kept["complaint_evidence"] += evidence
            kept["not_final"] += not_final
            kept_batches |= batches

        # 2. batches no message refers to any more
        chunks = chunks.phase()
        if dry_run:
            old = await self.db.read(lambda tx: store.count_old_batches(tx, cut))
            counts["batches"] = max(old - len(kept_batches), 0)
        else:
            last = 0
            while True:
                size = chunks.size

                def bjob(tx: Tx, last: int = last, size: int = size) -> tuple[int, int, int, float]:
                    t0 = time.perf_counter()
                    found = store.old_batches(tx, last, id_below, cut, size)
                    if not found:
                        return -1, 0, 0, 0.0
                    n = store.delete_unreferenced_batches(tx, found)
                    return found[-1], len(found), n, (time.perf_counter() - t0) * 1000

                t0 = time.perf_counter()
                last_id, seen, n, ms = await self.db.write(bjob)
                if last_id < 0:
                    break
                chunks.took(seen, ms, (time.perf_counter() - t0) * 1000)
                last = last_id
                counts["batches"] += n

        # 3. uplink, delivered webhook events, parked receipts
        for table in store.SIMPLE_TABLES:
            chunks = chunks.phase()
            if dry_run:
                counts[table] = await self.db.read(lambda tx, t=table: store.count_old(tx, t, cut))  # type: ignore[misc]
                continue
            last = 0
            while True:
                size = chunks.size

                def sjob(
                    tx: Tx, table: str = table, last: int = last, size: int = size
                ) -> tuple[int, int, bool, float]:
                    t0 = time.perf_counter()
                    last_id, n, done = store.delete_old(tx, table, last, cut, size)
                    return last_id, n, done, (time.perf_counter() - t0) * 1000

                t0 = time.perf_counter()
                last, n, done, ms = await self.db.write(sjob)
                chunks.took(max(n, 1), ms, (time.perf_counter() - t0) * 1000)
                counts[table] += n
                if done:
                    break

        # 4. finished file jobs: the uploaded file first, then the rows (a crash in between leaves a row
        #    whose file is gone: the next purge deletes it)
        chunks = chunks.phase()
        if dry_run:
            counts["file_jobs"] = await self.db.read(lambda tx: store.count_old_file_jobs(tx, cut))
        else:
            last = 0
            while True:
                found = await self.db.read(lambda tx, last=last: store.old_file_jobs(tx, last, cut, 500))  # type: ignore[misc]
                if not found:
                    break
                await asyncio.to_thread(self._unlink, [p for _, p in found])
                t0 = time.perf_counter()
                n = await self.db.write(lambda tx, f=found: store.delete_file_jobs(tx, [i for i, _ in f]))  # type: ignore[misc]
                ms = (time.perf_counter() - t0) * 1000
                chunks.took(len(found), ms, ms)
                counts["file_jobs"] += n
                last = found[-1][0]

        # 5. finished export jobs and their files, ``export_keep_days`` after they finished (not the cutoff)
        exports_before = now - self.export_keep_days * DAY_MS
        if dry_run:
            counts["export_jobs"] = await self.db.read(lambda tx: export_store.count_old_jobs(tx, exports_before))
        else:
            last = 0
            while True:
                found = await self.db.read(lambda tx, last=last: export_store.old_jobs(tx, last, exports_before, 500))  # type: ignore[misc]
                if not found:
                    break
                await asyncio.to_thread(self._unlink, [p for _, p in found])
                counts["export_jobs"] += await self.db.write(
                    lambda tx, f=found: export_store.delete_jobs(tx, [i for i, _ in f])  # type: ignore[misc]
                )
                last = found[-1][0]

        out = {
            "before": cut,
            "before_local": datetime.fromtimestamp(cut / 1000, SHANGHAI).isoformat(timespec="seconds"),
            "dry_run": dry_run,
            "purged": counts,
            "kept": kept,
            "chunks": chunks.count,
            "longest_chunk_ms": round(chunks.longest_ms, 1),
            "longest_chunk_commit_ms": round(chunks.longest_commit_ms, 1),
            "chunk_p90_commit_ms": round(sorted(chunks.round_trips)[int(0.9 * (len(chunks.round_trips) - 1))], 1)
            if chunks.round_trips
            else 0.0,
            "seconds": round(time.perf_counter() - started, 3),
        }
        if dropped:
            out["partitions_dropped"] = dropped
            out["longest_detach_ms"] = round(drop_ms, 1)
        if not dry_run:

            def finish(tx: Tx) -> None:
                store.set_mark(tx, cut, now_ms())
                audit(tx, actor, "retention.purge", f"before:{cut}", out)

            await self.db.write(finish)
            log.info("retention purge before %s: %s", out["before_local"], counts)
        return out

    def _unlink(self, paths: list[str]) -> None:
        """Delete stored files (relative to data_dir; never outside it)."""
        if self.data_dir is None:
            return
        root = self.data_dir.resolve()
        for rel in paths:
            path = (root / rel).resolve()
            if path.is_relative_to(root) and path != root:
                path.unlink(missing_ok=True)

    async def _drop_months(self, cut: int, counts: dict[str, int]) -> tuple[list[str], float]:
        """PostgreSQL: detach and drop every month partition wholly before ``cut``; the rows it must keep
        are written back (to the default partition) in the detach's transaction. Counts what went; the
        names dropped and the longest detach transaction (ms: the parents' exclusive lock, commit included)."""
        below = _month_bound(cut)
        pairs = await self.db.read(lambda tx: partitions.droppable(tx, below))
        names: list[str] = []
        longest = 0.0
        await self.files_freed()  # this process's previous purge: its drop first
        await self._drop_detached()  # left by a purge that stopped between its detach and its drop
        for mpart, spart in pairs:
            steps: dict[str, float] = {}
            t_keep = time.perf_counter()
            # outside the lock: old months do not change, only the open complaints may
            numbers, protected = await self.db.read(store.open_complaints)
            seal = await self.db.read(lambda tx, p=mpart.name: partitions.seal_of(tx, p))  # type: ignore[misc]
            if seal is not None:  # counted when its month ended (``seal``): the rows to keep by index
                rows, subs = seal.messages, seal.submits
                found = partial(partitions.sealed_keep, part=mpart.name, seal=seal, before_at=cut, final=FINAL,
                                numbers=numbers, protected=protected)  # fmt: skip
                keep = await self.db.read(found)
            else:  # not sealed (the legacy partition, or a month that ended less than a day ago): scan it
                # the month's scan and the count of its parts at once (two readers: two database backends)
                scan, subs = await asyncio.gather(
                    self.db.read(
                        lambda tx, p=mpart.name, n=numbers, i=protected: partitions.scan_month(tx, p, cut, FINAL, n, i)  # type: ignore[misc]
                    ),
                    self.db.read(lambda tx, p=spart.name: partitions.count_rows(tx, p))  # type: ignore[misc]
                    if spart is not None
                    else _zero(),
                )
                rows, keep = scan
            steps["counts_and_keep"] = round((time.perf_counter() - t_keep) * 1000, 1)
            steps["sealed"] = seal is not None

            def detach(tx: Tx, mpart: partitions.Part = mpart, spart: partitions.Part | None = spart,
                       keep: list[Any] = keep, seen: tuple[set[str], set[int]] = (numbers, protected),
                       seal: partitions.Seal | None = seal,
                       steps: dict[str, float] = steps) -> tuple[int, int]:  # fmt: skip
                partitions.lock_parents(tx, self.lock_timeout_ms)  # what the detach takes anyway, first
                if not partitions.attached(tx, "messages", mpart.name):
                    return -1, 0  # another process's purge detached it meanwhile
                if store.open_complaints(tx) != seen:  # a complaint came or went meanwhile
                    now_numbers, now_protected = store.open_complaints(tx)
                    if seal is not None:
                        keep = partitions.sealed_keep(tx, mpart.name, seal, cut, FINAL, now_numbers, now_protected)
                    else:
                        keep = partitions.scan_month(tx, mpart.name, cut, FINAL, now_numbers, now_protected)[1]
                return partitions.detach_month(tx, mpart.name, spart.name if spart else None,
                                               [int(r[0]) for r in keep], self.lock_timeout_ms, steps)  # fmt: skip

            t0 = time.perf_counter()
            kept_m, kept_s = await asyncio.to_thread(partitions.isolated, self.db, detach)
            took = (time.perf_counter() - t0) * 1000  # commit included: the parents' lock is released
            if kept_m < 0:
                continue
            longest = max(longest, took)
            counts["messages"] += rows - kept_m
            counts["submits"] += subs - kept_s
            names.append(mpart.name)
            steps["detach_total"] = round(took, 1)
            self.last_drop_steps = steps
            log.info("retention: detached partition %s (%d rows, %d kept)", mpart.name, rows, kept_m)
        if names:
            # the detached tables leave the disk in the background: the month is out of the archive and
            # no one waits for its files (``files_freed`` awaits them; a stop leaves them to the next purge)
            self._freeing = asyncio.create_task(self._free_files(), name="qixin-retention-drop")
        return names, longest

    async def _free_files(self) -> float:
        t = time.perf_counter()
        await self._drop_detached()
        took = round((time.perf_counter() - t) * 1000, 1)
        self.last_drop_steps["drop_total"] = took
        return took

    async def files_freed(self) -> float | None:
        """Wait for the drop of the tables the last purge detached (PostgreSQL: their files freed); the
        drop's ms, or None when there was none. The CLI waits for it before it exits."""
        task, self._freeing = self._freeing, None
        return None if task is None else await task

    async def seal(self, now: int | None = None) -> list[str]:
        """PostgreSQL: count each month partition once its month is over (a day after), so that its purge,
        months later, reads the counts instead of scanning it (``partitions.Seal``). The scan is a read of
        its own connection, outside the writer; run by the daily worker before its purge. Sealed names."""
        if not self.db.is_pg or not await self.db.read(partitions.is_partitioned):
            return []
        at = now_ms() if now is None else now
        pairs = await self.db.read(lambda tx: partitions.sealable(tx, at))
        sealed: list[str] = []
        for mpart, spart in pairs:
            seal = await self.db.read(lambda tx, m=mpart, s=spart: partitions.count_month(tx, m, s, FINAL))  # type: ignore[misc]
            save = lambda tx, n=mpart.name, s=seal: partitions.save_seal(tx, n, s, now_ms())  # noqa: E731
            if await self.db.write(save):
                sealed.append(mpart.name)
                log.info("retention: sealed %s (%d rows, %d not final)", mpart.name, seal.messages, len(seal.open_ids))
        return sealed

    async def _drop_detached(self) -> None:
        names = await self.db.read(partitions.detached)
        if names:
            await asyncio.to_thread(
                partitions.isolated, self.db, lambda tx: partitions.drop_detached(tx, names, self.lock_timeout_ms)
            )

    async def maintain(self, now: int | None = None) -> list[str]:
        """PostgreSQL: the current and the next month's partitions exist (no-op on SQLite). Created names."""
        if not self.db.is_pg:
            return []
        at = now_ms() if now is None else now
        made = await asyncio.to_thread(partitions.isolated, self.db, lambda tx: partitions.ensure_months(tx, at))
        if made:
            log.info("retention: created partitions %s", ", ".join(made))
        return made

    async def close_complaint(self, actor: Actor, complaint_id: int, note: str = "") -> dict[str, Any]:
        """Close a complaint: the purge may then remove the messages it kept as evidence."""

        def fn(tx: Tx) -> dict[str, Any]:
            if not store.close_complaint(tx, complaint_id, actor.name or actor.id, note, now_ms()):
                raise QxError("NOT_FOUND", "投诉记录不存在")
            return {"complaint_id": complaint_id, "closed": True}

        actor.require("compliance")
        return await self.change(actor, "complaint.close", f"complaint:{complaint_id}", fn)

    # -- the daily worker --------------------------------------------------------------------------------
    def next_run(self, now: int) -> int:
        """The next ``hour``:00 Beijing time after ``now`` (ms UTC)."""
        local = datetime.fromtimestamp(now / 1000, SHANGHAI)
        at = local.replace(hour=self.hour, minute=0, second=0, microsecond=0)
        if at <= local:
            at += timedelta(days=1)
        return int(at.timestamp() * 1000)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="qixin-retention")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel(task)
        freeing, self._freeing = self._freeing, None
        await cancel(freeing)  # a drop cut short rolls back: the next purge drops those tables first

    async def _loop(self) -> None:
        try:
            await self.maintain()
        except Exception:
            log.exception("retention: creating the months' partitions failed; tried again before the purge")
        while True:
            due = self.next_run(now_ms())
            while (left := due - now_ms()) > 0:
                await asyncio.sleep(min(left / 1000, 60.0))
            try:
                await self.maintain()
                await self.seal()
            except Exception:
                log.exception("retention: creating or sealing the months' partitions failed")
            try:
                await self.purge(Actor.system("retention"))
            except Exception:
                log.exception("retention purge failed; next run tomorrow")
