"""docs/ops: the Prometheus alert rules and the Grafana dashboard parse and name only metrics the platform
exposes (families collected from a built platform's registry, with the sample suffixes of their type)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from qixin.app import build
from qixin.settings import Settings
from qixin.store.migrate import migrate

OPS = Path(__file__).resolve().parent.parent / "docs" / "ops"
METRIC = re.compile(r"\bqixin_[a-z0-9_]+\b")
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
            "gauge": ("",), "summary": ("_sum", "_count", "_created")}  # fmt: skip


@pytest.fixture(scope="module")
def exposed(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("ops"))
    migrate(settings.db_url)
    services = build(settings)
    try:
        families = list(services.metrics.registry.collect())
    finally:
        services.db.close()
    names = {f.name + s for f in families for s in SUFFIXES.get(f.type, ("",))}
    assert "qixin_channel_up" in names and "qixin_dispatch_receipts_total" in names
    return names


def test_prometheus_rules_parse_and_reference_exposed_metrics(exposed: set[str]) -> None:
    doc = yaml.safe_load((OPS / "prometheus-alerts.yml").read_text(encoding="utf-8"))
    rules = [r for g in doc["groups"] for r in g["rules"]]
    names = {r["alert"] for r in rules}
    assert {"QixinChannelDown", "QixinReceiptsStopped", "QixinQueueLag", "QixinWebhookDeadLetters"} <= names
    for r in rules:
        assert r["expr"].strip() and r["annotations"]["summary"] and r["labels"]["severity"]
        used = set(METRIC.findall(r["expr"]))
        assert used, r["alert"]
        assert used <= exposed, f"{r['alert']}: {sorted(used - exposed)} not exposed by /metrics"
        assert r["expr"].count("(") == r["expr"].count(")"), r["alert"]


def test_grafana_dashboard_parses_and_references_exposed_metrics(exposed: set[str]) -> None:
    dash = json.loads((OPS / "grafana-dashboard.json").read_text(encoding="utf-8"))
    assert dash["title"] and dash["uid"] and dash["panels"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    seen: set[str] = set()
    for p in dash["panels"]:
        assert p["targets"], p["title"]
        for t in p["targets"]:
            used = set(METRIC.findall(t["expr"]))
            assert used and used <= exposed, f"{p['title']}: {sorted(used - exposed)} not exposed"
            seen |= used
    # every family docs/metrics.md lists has a panel
    documented = set(re.findall(r"^\| `(qixin_[a-z_]+)`", (OPS.parent / "metrics.md").read_text(), re.M))
    covered = {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in seen}
    assert documented and documented <= covered, sorted(documented - covered)
