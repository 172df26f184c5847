"""Upstream number-status providers for the number check (空号检测): the interface and two providers.

Rules:
- A provider answers a list of 11-digit numbers with one ``Upstream`` per number (``domain/numbercheck``):
  status ``ok`` with a class and confidence, or ``timeout`` / ``error`` / ``open`` (its circuit breaker
  open: not asked). A provider never raises for a failed upstream: the results say what happened, so
  billing can leave those queries free and the customer sees why.
- ``HttpProvider``: one POST per ``batch`` numbers to a configured URL; the request body and the
  response mapping come from configuration (``NumberCheckSettings``): the numbers go in the field
  ``numbers_field`` (merged with ``extra_body``); the answer's list ``results_field`` holds objects
  whose ``number_field`` and ``status_field`` are read, and ``status_map`` turns the provider's status
  value into a class (unmapped values are ``unknown``). A bearer token (write-only) may be sent. A
  request slower than ``timeout`` seconds is a timeout; a connection failure, an HTTP status other
  than 2xx or an answer that does not parse is an error.
- ``CircuitBreaker``: after ``failures`` consecutive failed requests (timeouts and errors) the circuit
  opens for ``reset`` seconds: every number is answered ``open`` at once. After that one trial request
  is let through (half-open): success closes the circuit, failure opens it again.
- ``SimulatorProvider`` (the embedded default and the tests): deterministic by the number's last digit —
  0 empty, 1 silent, 2 risk, 9 no record, any other digit real — so a demo shows every class.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Protocol

import httpx

from qixin.domain.numbercheck import CLASSES, Upstream
from qixin.domain.numbers import mask

log = logging.getLogger("qixin.numbercheck")

__all__ = ["CircuitBreaker", "HttpProvider", "Provider", "SimulatorProvider"]


class Provider(Protocol):
    name: str

    async def check(self, numbers: Sequence[str]) -> dict[str, Upstream]: ...


class SimulatorProvider:
    """A built-in upstream that needs no network (see the module rules)."""

    name = "simulator"
    BY_LAST_DIGIT: ClassVar[dict[str, str]] = {"0": "empty", "1": "silent", "2": "risk", "9": "unknown"}

    def __init__(self, confidence: float = 0.85) -> None:
        self.confidence = confidence
        self.asked = 0

    async def check(self, numbers: Sequence[str]) -> dict[str, Upstream]:
        self.asked += len(numbers)
        out = {}
        for n in numbers:
            cls = self.BY_LAST_DIGIT.get(n[-1:], "real")
            out[n] = Upstream(self.name, "ok", cls, self.confidence if cls != "unknown" else 0.0)
        return out


class CircuitBreaker:
    """Consecutive failures open the circuit for ``reset`` seconds; then one trial (half-open)."""

    def __init__(self, failures: int = 5, reset: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.failures = failures
        self.reset = reset
        self.clock = clock
        self.consecutive = 0
        self.opened_at: float | None = None
        self._trial = False

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if self.clock() - self.opened_at >= self.reset else "open"

    def allow(self) -> bool:
        st = self.state
        if st == "closed":
            return True
        if st == "half_open" and not self._trial:
            self._trial = True
            return True
        return False

    def success(self) -> None:
        self.consecutive = 0
        self.opened_at = None
        self._trial = False

    def failure(self) -> None:
        self.consecutive += 1
        if self._trial or self.consecutive >= self.failures:
            self.opened_at = self.clock()
        self._trial = False


class HttpProvider:
    """An upstream reached over HTTP, its request and response shape from configuration."""

    def __init__(
        self,
        url: str,
        *,
        name: str = "http",
        numbers_field: str = "numbers",
        extra_body: dict[str, Any] | None = None,
        results_field: str = "results",
        number_field: str = "number",
        status_field: str = "status",
        status_map: dict[str, str] | None = None,
        confidence: float = 0.85,
        token: str = "",
        timeout: float = 2.0,
        batch: int = 100,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        bad = {v for v in (status_map or {}).values() if v not in CLASSES}
        if bad:
            raise ValueError(f"status_map values must be classes {CLASSES}, not {sorted(bad)}")
        self.url = url
        self.name = name
        self.numbers_field = numbers_field
        self.extra_body = dict(extra_body or {})
        self.results_field = results_field
        self.number_field = number_field
        self.status_field = status_field
        self.status_map = {str(k): v for k, v in (status_map or {}).items()}
        self.confidence = min(confidence, 0.99)
        self.timeout = timeout
        self.batch = batch
        self.breaker = breaker or CircuitBreaker()
        self._headers = {"authorization": f"Bearer {token}"} if token else {}
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout, headers=self._headers)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def check(self, numbers: Sequence[str]) -> dict[str, Upstream]:
        out: dict[str, Upstream] = {}
        for i in range(0, len(numbers), self.batch):
            out.update(await self._ask(numbers[i : i + self.batch]))
        return out

    def _all(self, numbers: Sequence[str], status: str, detail: str) -> dict[str, Upstream]:
        return {n: Upstream(self.name, status, detail=detail) for n in numbers}

    async def _ask(self, numbers: Sequence[str]) -> dict[str, Upstream]:
        if not self.breaker.allow():
            return self._all(numbers, "open", "circuit open")
        body = {**self.extra_body, self.numbers_field: list(numbers)}
        try:
            resp = await asyncio.wait_for(self._http().post(self.url, json=body), self.timeout)
        except (TimeoutError, httpx.TimeoutException):
            self.breaker.failure()
            log.warning("number-check upstream %s timed out (%d numbers, first %s)", self.name, len(numbers),
                        mask(numbers[0]))  # fmt: skip
            return self._all(numbers, "timeout", f"no answer in {self.timeout:g}s")
        except httpx.HTTPError as exc:
            self.breaker.failure()
            log.warning("number-check upstream %s failed: %s", self.name, type(exc).__name__)
            return self._all(numbers, "error", type(exc).__name__)
        try:
            if not 200 <= resp.status_code < 300:
                raise ValueError(f"HTTP {resp.status_code}")
            rows = resp.json()[self.results_field]
            found: dict[str, Upstream] = {}
            for row in rows:
                number = str(row[self.number_field])
                cls = self.status_map.get(str(row[self.status_field]), "unknown")
                found[number] = Upstream(self.name, "ok", cls, self.confidence if cls != "unknown" else 0.0)
        except (ValueError, KeyError, TypeError) as exc:
            self.breaker.failure()
            log.warning("number-check upstream %s answered badly: %s", self.name, str(exc)[:80])
            return self._all(numbers, "error", str(exc)[:80])
        self.breaker.success()
        return {n: found.get(n, Upstream(self.name, "ok")) for n in numbers}
