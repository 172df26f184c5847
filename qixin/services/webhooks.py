"""Webhook delivery from the outbox table: signed, batched per destination, retried with backoff.

Rules:
- An event is written to ``webhook_outbox`` in the same transaction as the change it reports, so no
  event is lost and none is invented.
- The worker claims due rows (pushing ``next_at`` forward as a lease), POSTs ``{"events": [...]}`` to
  each callback URL (up to ``batch`` events per request), signed like our API with the key's secret
  (headers X-Qx-AppKey, X-Qx-Timestamp, X-Qx-Nonce, X-Qx-Signature; path = the URL's path).
- 2xx marks the rows sent. Anything else schedules a retry after ``backoff[attempts]`` seconds; when
  the schedule is used up the rows are marked dead (kept, visible to operators).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from qixin.domain.signing import signed_headers
from qixin.store.db import Database, Tx, now_ms

log = logging.getLogger(__name__)

CLAIM_SQLITE = (
    "UPDATE webhook_outbox SET next_at = ? WHERE id IN (SELECT id FROM webhook_outbox"
    " WHERE status = 'pending' AND next_at <= ? ORDER BY next_at LIMIT ?)"
    " RETURNING id, api_key_id, url, payload, attempts"
)
CLAIM_PG = (
    "UPDATE webhook_outbox o SET next_at = ? FROM (SELECT id FROM webhook_outbox"
    " WHERE status = 'pending' AND next_at <= ? ORDER BY next_at LIMIT ? FOR UPDATE SKIP LOCKED) s"
    " WHERE o.id = s.id RETURNING o.id, o.api_key_id, o.url, o.payload, o.attempts"
)


def claim_events(tx: Tx, now: int, lease_ms: int, limit: int) -> tuple[list[tuple], dict[int, tuple[str, str]]]:
    rows = tx.all(CLAIM_PG if tx.is_pg else CLAIM_SQLITE, (now + lease_ms, now, limit))
    keys: dict[int, tuple[str, str]] = {}
    key_ids = sorted({int(r[1]) for r in rows})
    if key_ids:
        for kid, app_key, secret in tx.all(
            f"SELECT id, app_key, app_secret FROM api_keys WHERE id IN ({tx.in_list(key_ids)})",
            tuple(key_ids),
        ):
            keys[int(kid)] = (app_key, secret)
    return rows, keys


def mark_sent(tx: Tx, ids: list[int]) -> None:
    tx.executemany(
        "UPDATE webhook_outbox SET status = 'sent', attempts = attempts + 1 WHERE id = ?", [(i,) for i in ids]
    )


def mark_failed(tx: Tx, rows: list[tuple[int, int]], error: str, backoff: tuple[int, ...]) -> None:
    now = now_ms()
    updates = []
    for row_id, attempts in rows:
        n = attempts + 1
        if n > len(backoff):
            updates.append(("dead", n, now, error[:500], row_id))
        else:
            updates.append(("pending", n, now + backoff[n - 1] * 1000, error[:500], row_id))
    tx.executemany(
        "UPDATE webhook_outbox SET status = ?, attempts = ?, next_at = ?, last_error = ? WHERE id = ?",
        updates,
    )


class WebhookWorker:
    def __init__(
        self,
        db: Database,
        *,
        batch: int = 100,
        timeout: float = 5.0,
        backoff: tuple[int, ...] = (5, 30, 120, 600, 1800, 3600, 7200, 14400),
        poll: float = 0.2,
        concurrency: int = 8,
        open_secret: Callable[[str], str] = str,
    ) -> None:
        self.db = db
        self.open_secret = open_secret  # app secrets are stored sealed (domain/secretbox.py)
        self.batch = batch
        self.timeout = timeout
        self.backoff = backoff
        self.poll = poll
        self.concurrency = concurrency
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self.stats = {"posted": 0, "events_sent": 0, "failures": 0}

    async def start(self) -> None:
        self._client = httpx.AsyncClient(
            timeout=self.timeout, limits=httpx.Limits(max_connections=self.concurrency * 2)
        )
        self._task = asyncio.create_task(self._loop(), name="webhooks")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client:
            await self._client.aclose()

    async def _loop(self) -> None:
        lease_ms = int((self.timeout * 2 + 5) * 1000)
        while True:
            try:
                n = await self.run_once(lease_ms)
            except Exception:
                log.exception("webhook round failed")
                n = 0
            if n == 0:
                await asyncio.sleep(self.poll)

    async def run_once(self, lease_ms: int = 15_000) -> int:
        rows, keys = await self.db.write(lambda tx: claim_events(tx, now_ms(), lease_ms, self.batch * self.concurrency))
        if not rows:
            return 0
        groups: dict[tuple[int, str], list[tuple]] = {}
        for r in rows:
            groups.setdefault((int(r[1]), r[2]), []).append(r)
        jobs = []
        for (key_id, url), items in groups.items():
            for i in range(0, len(items), self.batch):
                jobs.append(self._post(url, keys.get(key_id), items[i : i + self.batch]))
        await asyncio.gather(*jobs)
        return len(rows)

    async def _post(self, url: str, key: tuple[str, str] | None, items: list[tuple]) -> None:
        assert self._client is not None
        body = b'{"events":[' + b",".join(r[3].encode() for r in items) + b"]}"
        error = ""
        if key is None:
            error = "api key missing"
        else:
            path = urlsplit(url).path or "/"
            headers = signed_headers(key[0], self.open_secret(key[1]), "POST", path, body)
            headers["Content-Type"] = "application/json"
            try:
                resp = await self._client.post(url, content=body, headers=headers)
                if 200 <= resp.status_code < 300:
                    await self.db.write(lambda tx: mark_sent(tx, [int(r[0]) for r in items]))
                    self.stats["posted"] += 1
                    self.stats["events_sent"] += len(items)
                    return
                error = f"HTTP {resp.status_code}"
            except httpx.HTTPError as e:
                error = f"{type(e).__name__}: {e}"
        self.stats["failures"] += 1
        log.warning("webhook to %s failed: %s", url, error)
        await self.db.write(lambda tx: mark_failed(tx, [(int(r[0]), int(r[4])) for r in items], error, self.backoff))
