"""Prometheus metrics of one process (``GET /metrics``; docs/metrics.md lists every name).

Rules:
- One registry per process (built by the composition root), never the library's global one: several
  platforms in one test process stay apart, and each role of a distributed deployment exposes its own.
- Counters that the workers already keep (dispatcher, uplink, webhooks, channels) are read at scrape
  time by ``PipelineCollector`` — no second bookkeeping on the hot paths; gauges of durable state
  (queue depth and lag, webhook backlog) are read from the database at scrape time, with cheap queries.
- What only the entry points know (HTTP latency by route, accepted messages by type, refusals by code)
  is counted where it happens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from qixin.store import reads
from qixin.store.db import Database, now_ms

disable_created_metrics()  # no *_created series: noise for Prometheus, and not per registry anyway

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_seconds = Histogram(
            "qixin_http_request_seconds", "HTTP requests by method, route and status", ["method", "route", "status"],
            registry=r, buckets=LATENCY_BUCKETS,
        )  # fmt: skip
        self._http_children: dict[tuple[str, str, int], Any] = {}
        self.accepted = Counter("qixin_messages_accepted", "Messages accepted, by type", ["type"], registry=r)
        self.refused = Counter(
            "qixin_refusals", "Send refusals (whole requests and single numbers) by error code", ["code"], registry=r
        )

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        child = self._http_children.get(key)
        if child is None:  # the label lookup once per (method, route, status), not per request
            child = self._http_children[key] = self.http_seconds.labels(method, route, str(status))
        child.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class PipelineCollector(Collector):
    """Reads the workers' own counters and the durable gauges when Prometheus scrapes."""

    def __init__(
        self,
        db: Database,
        dispatcher_stats: Callable[[], dict[str, int]],
        inflight: Callable[[], int],
        channels: Callable[[], list[dict[str, Any]]],
        uplink_stats: Callable[[], dict[str, int]],
        webhook_stats: Callable[[], dict[str, int]],
    ) -> None:
        self.db = db
        self.dispatcher_stats = dispatcher_stats
        self.inflight = inflight
        self.channels = channels
        self.uplink_stats = uplink_stats
        self.webhook_stats = webhook_stats

    def describe(self) -> Iterable[Metric]:
        return []  # the families depend on the data; auto-describe is not needed

    def collect(self) -> Iterator[Metric]:
        d = self.dispatcher_stats()
        for key, help_ in (("submitted", "Messages submitted to a carrier (all parts accepted)"),
                           ("failed", "Messages that failed after acceptance (refunded)"),
                           ("receipts", "Delivery receipts stored"), ("final", "Messages that reached a final status"),
                           ("rerouted", "Messages moved to another channel after a refusal"),
                           ("abandoned", "Submissions given up without an outcome (the lease brings them back)"),
                           ("parked", "Receipts parked before their submit was stored")):  # fmt: skip
            yield CounterMetricFamily(f"qixin_dispatch_{key}", help_, value=d.get(key, 0))
        yield GaugeMetricFamily(
            "qixin_inflight", "Messages claimed whose outcome is not yet stored", value=self.inflight()
        )
        now = now_ms()
        depth, due, oldest_ms = self.db.read_sync(lambda tx: reads.queue_snapshot(tx, now))
        yield GaugeMetricFamily("qixin_queue_depth", "Rows in the dispatch queue (scheduled included)", value=depth)
        yield GaugeMetricFamily("qixin_queue_due", "Queue rows due now", value=due)
        yield GaugeMetricFamily(
            "qixin_queue_oldest_due_seconds", "Age of the oldest due queue row", value=oldest_ms / 1000
        )
        up = GaugeMetricFamily(
            "qixin_channel_up", "1 when the channel has a usable session", labels=["channel", "protocol"]
        )
        window = GaugeMetricFamily("qixin_channel_window_used", "Outstanding requests in the channel's windows",
                                   labels=["channel"])  # fmt: skip
        tps = GaugeMetricFamily("qixin_channel_tps", "Parts submitted in the last second", labels=["channel"])
        submitted = CounterMetricFamily("qixin_channel_submitted", "Parts submitted on the channel", labels=["channel"])
        errors = CounterMetricFamily("qixin_channel_submit_errors", "Submit errors on the channel", labels=["channel"])
        receipts = CounterMetricFamily("qixin_channel_receipts", "Receipts received on the channel", labels=["channel"])
        throttled = CounterMetricFamily("qixin_channel_throttled", "Flow-control answers from the carrier",
                                        labels=["channel"])  # fmt: skip
        binds = CounterMetricFamily("qixin_channel_binds", "Sessions bound to the carrier", labels=["channel"])
        for h in self.channels():
            name = str(h.get("name", ""))
            up.add_metric([name, str(h.get("protocol", ""))], 1.0 if h.get("up") else 0.0)
            window.add_metric([name], float(h.get("window_used", 0) or 0))
            tps.add_metric([name], float(h.get("tps_now", 0) or 0))
            submitted.add_metric([name], float(h.get("submitted", 0) or 0))
            errors.add_metric([name], float(h.get("submit_errors", 0) or 0))
            receipts.add_metric([name], float(h.get("receipts", 0) or 0))
            throttled.add_metric([name], float(h.get("throttled", 0) or 0))
            binds.add_metric([name], float(h.get("binds", 0) or 0))
        yield from (up, window, tps, submitted, errors, receipts, throttled, binds)
        u = self.uplink_stats()
        yield CounterMetricFamily("qixin_mo_received", "Uplink (MO) messages received", value=u.get("received", 0))
        yield CounterMetricFamily("qixin_mo_unmatched", "MO messages no account claimed", value=u.get("unmatched", 0))
        w = self.webhook_stats()
        yield CounterMetricFamily("qixin_webhook_posts", "Webhook POSTs answered 2xx", value=w.get("posted", 0))
        yield CounterMetricFamily("qixin_webhook_failures", "Webhook POSTs that failed", value=w.get("failures", 0))
        outbox = self.db.read_sync(reads.webhook_snapshot)
        yield GaugeMetricFamily(
            "qixin_webhook_backlog", "Webhook events waiting to be pushed", value=outbox.get("pending", 0)
        )
        yield GaugeMetricFamily(
            "qixin_webhook_dead", "Webhook events given up (dead letters)", value=outbox.get("dead", 0)
        )
