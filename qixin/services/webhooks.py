"""Webhook delivery from the outbox table: signed, batched per destination, retried with backoff.

Rules:
- An event is written to ``webhook_outbox`` in the same transaction as the change it reports, so no
  event is lost and none is invented.
- The worker claims due rows (pushing ``next_at`` forward as a lease), POSTs ``{"events": [...]}`` to
  each callback URL (up to ``batch`` events per request), signed like our API with the key's secret
  (headers X-Qx-AppKey, X-Qx-Timestamp, X-Qx-Nonce, X-Qx-Signature; path = the URL's path).
- Each event goes to the callback URL its key has when it is sent (``url`` on the row is the one
  when it was written): a retry after a URL change goes to the new URL; with the URL removed, the
  retry fails and is rescheduled like any failure.
- A key whose push format is ``aliyun`` (``callback_formats``, docs/aliyun.md) gets Aliyun's shapes
  instead: a JSON array of SmsReport items for receipts and one of SmsUp items for MO, same signature
  headers; all of its bodies must be answered 2xx for the rows to be sent.
- 2xx marks the rows sent. Anything else schedules a retry after ``backoff[attempts]`` seconds; when
  the schedule is used up the rows are marked dead (kept, visible to operators).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
import orjson

from qixin.domain.signing import signed_headers
from qixin.services.aliyun import aliyun_bodies
from qixin.store import aliyun as formats
from qixin.store import webhooks as outbox
from qixin.store.db import Database, Tx, now_ms
from qixin.tasks import cancel

log = logging.getLogger(__name__)


def claim_events(
    tx: Tx, now: int, lease_ms: int, limit: int
) -> tuple[list[tuple], dict[int, tuple[str, str, str | None]]]:
    """Due events and, for each of their keys, (app_key, secret, the key's CURRENT callback URL)."""
    rows, keys, _ = claim_with_formats(tx, now, lease_ms, limit)
    return rows, keys


def claim_with_formats(
    tx: Tx, now: int, lease_ms: int, limit: int
) -> tuple[list[tuple], dict[int, tuple[str, str, str | None]], dict[int, str]]:
    """``claim_events`` and the push format of the keys that chose one."""
    rows = outbox.claim_due(tx, now, now + lease_ms, limit)
    key_ids = sorted({int(r[1]) for r in rows})
    keys = outbox.key_targets(tx, key_ids) if rows else {}
    return rows, keys, formats.formats_of(tx, key_ids) if rows else {}


def mark_sent(tx: Tx, ids: list[int]) -> None:
    outbox.mark_sent(tx, ids)


def mark_failed(tx: Tx, rows: list[tuple[int, int]], error: str, backoff: tuple[int, ...]) -> None:
    now = now_ms()
    updates = []
    for row_id, attempts in rows:
        n = attempts + 1
        if n > len(backoff):
            updates.append(("dead", n, now, error[:500], row_id))
        else:
            updates.append(("pending", n, now + backoff[n - 1] * 1000, error[:500], row_id))
    outbox.set_attempts(tx, updates)


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
            timeout=self.timeout, limits=httpx.Limits(max_connections=self.concurrency * 2), verify=_tls_context()
        )
        self._task = asyncio.create_task(self._loop(), name="webhooks")

    async def stop(self) -> None:
        await cancel(self._task)
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
        rows, keys, fmts = await self.db.write(
            lambda tx: claim_with_formats(tx, now_ms(), lease_ms, self.batch * self.concurrency)
        )
        if not rows:
            return 0
        # each event goes to its key's callback URL as it is NOW (a retry follows a changed URL)
        groups: dict[tuple[int, str], list[tuple]] = {}
        for r in rows:
            key = keys.get(int(r[1]))
            groups.setdefault((int(r[1]), (key[2] or "") if key else r[2]), []).append(r)
        jobs = []
        for (key_id, url), items in groups.items():
            key = keys.get(key_id)
            cred = (key[0], key[1]) if key else None
            for i in range(0, len(items), self.batch):
                jobs.append(self._post(url, cred, items[i : i + self.batch], fmts.get(key_id, "qixin")))
        await asyncio.gather(*jobs)
        return len(rows)

    async def _post(self, url: str, key: tuple[str, str] | None, items: list[tuple], fmt: str = "qixin") -> None:
        assert self._client is not None
        if fmt == "aliyun":
            bodies = aliyun_bodies([orjson.loads(r[3]) for r in items])
        else:
            bodies = [b'{"events":[' + b",".join(r[3].encode() for r in items) + b"]}"]
        error = ""
        if key is None:
            error = "api key missing"
        elif not url:
            error = "callback url removed"  # retried on schedule: a URL set again in time gets it
        else:
            path = urlsplit(url).path or "/"
            secret = self.open_secret(key[1])
            try:
                for body in bodies:
                    headers = signed_headers(key[0], secret, "POST", path, body)
                    headers["Content-Type"] = "application/json"
                    resp = await self._client.post(url, content=body, headers=headers)
                    if not 200 <= resp.status_code < 300:
                        error = f"HTTP {resp.status_code}"
                        break
                    self.stats["posted"] += 1
                if not error:
                    await self.db.write(lambda tx: mark_sent(tx, [int(r[0]) for r in items]))
                    self.stats["events_sent"] += len(items)
                    return
            except httpx.HTTPError as e:
                error = f"{type(e).__name__}: {e}"
        self.stats["failures"] += 1
        log.warning("webhook to %s failed: %s", url, error)
        await self.db.write(lambda tx: mark_failed(tx, [(int(r[0]), int(r[4])) for r in items], error, self.backoff))


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default verifying TLS context (certifi's CAs, or SSL_CERT_FILE / SSL_CERT_DIR), made once per
    process: loading the CA bundle costs about 0.1 s of CPU, paid by every start of a platform otherwise."""
    return httpx.create_ssl_context()
