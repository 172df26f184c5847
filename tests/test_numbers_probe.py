"""The periodic probe of the number check's upstream provider (worker role ``NumberProbeRole``) and the
alert kind ``numcheck_provider``: a failing upstream fires an alert (circuit open included), recovery
resolves it, a slow one fires as degraded; the probe is bounded by its timeout and stops."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
from conftest import TEST_COMPLIANCE, Running, free_port, start_running
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from qixin.domain import alerts as rules
from qixin.domain.alerts import Facts, ProviderFact, Rule, State
from qixin.services.actor import Actor
from qixin.services.numbercheck_probe import ProviderProbe
from qixin.services.numberproviders import SimulatorProvider
from qixin.settings import NumberCheckSettings, Settings
from qixin.store.db import Database
from qixin.store.migrate import migrate


class Upstream:
    def __init__(self) -> None:
        self.mode = "ok"
        self.delay = 0.0
        self.requests = 0

    async def handle(self, request: Request) -> Response:
        self.requests += 1
        body = orjson.loads(await request.body())
        if self.mode == "error":
            return Response(b"busy", status_code=503)
        if self.delay:
            await asyncio.sleep(self.delay)  # the upstream being slow (what the probe measures)
        rows = [{"number": n, "status": "real"} for n in body["numbers"]]
        return Response(orjson.dumps({"results": rows}), media_type="application/json")


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[Upstream, str]]:
    up = Upstream()
    port = free_port()
    app = Starlette(routes=[Route("/check", up.handle, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield up, f"http://127.0.0.1:{port}/check"
    server.should_exit = True
    await task


@pytest.fixture
async def plat(db_url: str, tmp_path: Path, upstream: tuple[Upstream, str]) -> AsyncIterator[Running]:
    numcheck = NumberCheckSettings(
        provider="http", http_url=upstream[1], http_timeout=0.5, breaker_failures=2, breaker_reset=0.2,
        probe_interval=0.05, probe_timeout=2.0,
    )  # fmt: skip
    settings = Settings(
        data_dir=tmp_path, database_url=db_url, sim_receipt_delay=(0.01, 0.03), compliance=TEST_COMPLIANCE,
        simulators=("smpp",), alerts_interval=0, numcheck=numcheck,
    )  # fmt: skip
    r, server, task = await start_running(settings)
    try:
        yield r
    finally:
        server.should_exit = True
        await task
        await r.runtime.stop()


async def until(cond: Callable[[], Any], timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def probe_alerts(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in alerts if a["kind"] == "numcheck_provider"]


async def test_a_failing_upstream_fires_an_alert_and_recovery_resolves_it(
    plat: Running, upstream: tuple[Upstream, str]
) -> None:
    up, _ = upstream
    probe, alerts = plat.platform.numcheck_probe, plat.platform.alerts
    assert probe.running  # started by NumberProbeRole in the embedded runtime

    async def status(want: str) -> bool:
        return [p["status"] for p in await probe.latest()] == [want]

    await until(lambda: status("ok"))
    fired, _ = await alerts.evaluate_once()
    assert probe_alerts(fired) == []

    up.mode = "error"  # 503: an error; two in a row open the circuit, then probes say "open"
    await until(lambda: status("open"))
    fired, _ = await alerts.evaluate_once()
    [alert] = probe_alerts(fired)
    assert alert["subject"] == "provider:http" and alert["title"] == "号码检测上游异常"
    assert "探测失败" in alert["message"] and alert["value"] >= 2  # consecutive failed probes
    fired, _ = await alerts.evaluate_once()
    assert probe_alerts(fired) == []  # still open: not fired twice

    up.mode = "ok"  # the probe is the half-open trial that closes the circuit
    await until(lambda: status("ok"))
    assert plat.platform.numbers.provider.breaker.state == "closed"  # type: ignore[union-attr]
    _, resolved = await alerts.evaluate_once()
    assert [a["id"] for a in probe_alerts(resolved)] == [alert["id"]]

    # degraded: slower than the rule's threshold (ms), but answering
    rule_id = next(r["id"] for r in await alerts.rules(Actor.cli()) if r["kind"] == "numcheck_provider")
    await alerts.set_rule(Actor.cli(), rule_id, {"threshold": 100})
    up.delay = 0.25

    async def slow() -> bool:
        return any(p["status"] == "ok" and p["latency_ms"] > 100 for p in await probe.latest())

    await until(slow)
    fired, _ = await alerts.evaluate_once()
    [slow_alert] = probe_alerts(fired)
    assert "响应变慢" in slow_alert["message"] and slow_alert["value"] > 100

    await probe.stop()  # cancels the loop and waits for it: no probe in flight afterwards
    assert not probe.running and probe.stats["probes"] >= 4


async def test_the_probe_is_bounded_by_its_timeout_and_needs_a_provider(db_url: str) -> None:
    migrate(db_url)
    db = Database(db_url)
    db.start()
    try:

        class Hung(SimulatorProvider):
            name = "hung"

            async def check(self, numbers: Any) -> Any:
                await asyncio.Event().wait()  # never answers

        probe = ProviderProbe(db, Hung(), interval=0, timeout=0.2)
        started = asyncio.get_running_loop().time()
        out = await probe.probe_once()
        assert out is not None and out["status"] == "timeout" and out["failures"] == 1
        assert asyncio.get_running_loop().time() - started < 2.0
        assert (await probe.probe_once() or {})["failures"] == 2
        await probe.start()  # interval 0: never started
        assert not probe.running
        assert await ProviderProbe(db, None).probe_once() is None
        ok = await ProviderProbe(db, SimulatorProvider()).probe_once()
        assert ok is not None and ok["status"] == "ok" and ok["failures"] == 0
    finally:
        db.close()


def test_the_rule_fires_on_failure_and_on_latency_over_its_threshold() -> None:
    rule = Rule(1, "numcheck_provider", "provider", threshold=500)
    facts = Facts(now=1, providers={
        "up": ProviderFact("ok", 20, 0), "down": ProviderFact("timeout", 2000, 3, "no answer in 2s"),
        "slow": ProviderFact("ok", 900, 0),
    })  # fmt: skip
    firing = rules.evaluate([rule], facts, State())
    assert sorted(s for _, s in firing) == ["provider:down", "provider:slow"]
    assert firing[(1, "provider:down")].value == 3 and "timeout" in firing[(1, "provider:down")].message
    assert rules.check_rule("numcheck_provider", "provider", 0, 0, 0, 0) != ""
    assert rules.check_rule("numcheck_provider", "provider", 1000, 0, 0, 0) == ""
