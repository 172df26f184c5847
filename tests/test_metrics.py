"""GET /metrics: Prometheus text format, parsed by prometheus-client's own parser; the counters move
with real traffic (HTTP → accept → SMPP simulator → receipts); docs/metrics.md names every family."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from conftest import Running
from prometheus_client.parser import text_string_to_metric_families

from qixin.services.actor import Actor

DOC = Path(__file__).resolve().parent.parent / "docs" / "metrics.md"


def _scrape(text: str) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    out: dict[str, list[tuple[str, dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        out[family.name] = [(s.name, s.labels, s.value) for s in family.samples]
    return out


def _value(families: dict[str, list[tuple[str, dict[str, str], float]]], sample: str, **labels: str) -> float:
    for fam in families.values():
        for name, lab, value in fam:
            if name == sample and all(lab.get(k) == v for k, v in labels.items()):
                return value
    return 0.0


async def test_metrics_move_with_traffic_and_need_a_staff_token(running: Running) -> None:
    ops = await running.platform.staff_users.create(Actor.cli(), "prom", "ops")
    reviewer = await running.platform.staff_users.create(Actor.cli(), "rev", "reviewer")
    api = running.account()
    async with httpx.AsyncClient(base_url=running.base) as http:
        assert (await http.get("/metrics")).json()["code"] == "STAFF_AUTH_REQUIRED"
        r = await http.get("/metrics", headers={"Authorization": f"Bearer {reviewer['token']}"})
        assert r.json()["code"] == "FORBIDDEN"
        auth = {"Authorization": f"Bearer {ops['token']}"}
        before = _scrape((await http.get("/metrics", headers=auth)).text)
        for i in range(3):
            assert (await api.send(to=f"1390013{i:04d}", content="您的订单已发货")).status_code == 200
        bad = await api.send(to="13900130000", content="x", type="nonsense")
        assert bad.json()["code"] == "TYPE_INVALID"
        await running.wait_final(3)
        resp = await http.get("/metrics", headers=auth)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    after = _scrape(resp.text)
    accepted = "qixin_messages_accepted_total"
    assert _value(after, accepted, type="notification") - _value(before, accepted, type="notification") == 3
    assert _value(after, "qixin_refusals_total", code="TYPE_INVALID") == 1
    assert _value(after, "qixin_dispatch_submitted_total") - _value(before, "qixin_dispatch_submitted_total") >= 3
    assert _value(after, "qixin_dispatch_receipts_total") >= 3
    assert _value(after, "qixin_http_request_seconds_count", route="/v1/sms", status="200") == 3
    assert _value(after, "qixin_channel_up", channel="smpp-sim") == 1
    assert _value(after, "qixin_queue_depth") >= 0
    documented = set(re.findall(r"^\| `(qixin_[a-z_]+)`", DOC.read_text(encoding="utf-8"), re.M))
    assert documented == set(after), (set(after) - documented, documented - set(after))
