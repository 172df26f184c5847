"""Periodic probe of the number check's upstream provider (空号检测上游探测), read by the alert rules.

Rules:
- Every ``interval`` seconds (``QIXIN_NUMCHECK_PROBE_INTERVAL``; 0: never) the probe asks the configured
  provider about one fixed number (``PROBE_NUMBERS``), bounded by ``timeout`` seconds
  (``QIXIN_NUMCHECK_PROBE_TIMEOUT``). Nothing is billed and no check is stored: the probe is the
  platform's, not an account's. It goes through the provider's own circuit breaker, so a probe also
  serves as the half-open trial that closes a circuit once the upstream answers again.
- The outcome is ``ok`` (every number answered), or the provider's failure status: ``timeout``,
  ``error``, ``open`` (circuit open: not asked); with the latency in ms. It is written to
  ``numcheck_probes`` (one row per provider: the latest probe and the count of consecutive failed
  probes), so an alert evaluator in another process reads it (services/alerts.py, kind
  ``numcheck_provider``: a failed probe, or one slower than the rule's threshold in ms — degraded).
- With no provider (``QIXIN_NUMCHECK_PROVIDER=none``) there is nothing to probe. Run the probe where the
  alert evaluator runs (``NumberProbeRole`` is in ``qixin run`` and ``qixin dispatcher``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from qixin.services.numberproviders import Provider
from qixin.store import numbercheck as store
from qixin.store.db import Database, Tx, now_ms
from qixin.tasks import cancel

log = logging.getLogger("qixin.numbercheck")

PROBE_NUMBERS = ("13800138000",)  # a fixed, allocated number: the answer's class does not matter


def probe_dict(r: Any) -> dict[str, Any]:
    return {"provider": str(r[0]), "status": str(r[1]), "latency_ms": int(r[2]), "detail": str(r[3]),
            "failures": int(r[4]), "probed_at": int(r[5])}  # fmt: skip


class ProviderProbe:
    """Probes the number check's upstream provider every ``interval`` seconds (see the module rules)."""

    def __init__(self, db: Database, provider: Provider | None, interval: float = 60.0, timeout: float = 10.0) -> None:
        self.db = db
        self.provider = provider
        self.interval = interval
        self.timeout = timeout
        self.stats = {"probes": 0, "failed": 0}
        self._task: asyncio.Task[None] | None = None

    async def probe_once(self) -> dict[str, Any] | None:
        """One probe, written to ``numcheck_probes``; its outcome (None: no provider)."""
        provider = self.provider
        if provider is None:
            return None
        t0 = time.monotonic()
        status, detail = "ok", ""
        try:
            answers = await asyncio.wait_for(provider.check(list(PROBE_NUMBERS)), self.timeout)
            failed = [u for n in PROBE_NUMBERS if (u := answers.get(n)) is None or u.status != "ok"]
            if failed:
                first = failed[0]
                status, detail = ("error", "no answer") if first is None else (first.status, first.detail)
        except TimeoutError:
            status, detail = "timeout", f"no answer in {self.timeout:g}s"
        except Exception as e:  # a provider should not raise; if it does, the probe says so
            status, detail = "error", type(e).__name__
        latency = round((time.monotonic() - t0) * 1000)
        at = now_ms()

        def write(tx: Tx) -> Any:
            store.put_probe(tx, provider.name, status, latency, detail, at)
            return next(r for r in store.probes(tx) if r[0] == provider.name)

        out = probe_dict(await self.db.write(write))
        self.stats["probes"] += 1
        if status != "ok":
            self.stats["failed"] += 1
            log.warning("number-check upstream %s probe: %s (%s) in %d ms", provider.name, status, detail, latency)
        return out

    async def latest(self) -> list[dict[str, Any]]:
        return [probe_dict(r) for r in await self.db.read(store.probes)]

    async def start(self) -> None:
        if self.interval > 0 and self.provider is not None:
            self._task = asyncio.create_task(self._run(), name="numcheck-probe")

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        while True:
            try:
                await self.probe_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("number-check provider probe failed")
            await asyncio.sleep(self.interval)
