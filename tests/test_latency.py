"""Receipt latency: fixed log-spaced histograms (pure rules), kept with the receipts that make messages
final, percentiles per channel / account / hour from merged counts; tenant isolation of the route."""

from __future__ import annotations

import random

import httpx
from conftest import Running

from qixin.domain import latency
from qixin.services.actor import Actor
from qixin.store import latency as latency_store


def test_buckets_are_log_spaced_and_cover_every_latency() -> None:
    assert latency.bucket_of(-5) == 0 and latency.bucket_of(0) == 0 and latency.bucket_of(0.99) == 0
    assert latency.bucket_of(1) == 1
    prev = 0
    for ms in range(1, 200_000, 7):
        b = latency.bucket_of(ms)
        low, high = latency.bounds_of(b)
        assert low <= ms < high and b >= prev
        prev = b
    for b in range(2, latency.OVERFLOW):
        low, high = latency.bounds_of(b)
        assert abs(high / low - 2**0.25) < 1e-9  # four buckets per doubling
    assert latency.bucket_of(10**15) == latency.OVERFLOW


def _hist(values: list[float]) -> dict[int, int]:
    h: dict[int, int] = {}
    for v in values:
        b = latency.bucket_of(v)
        h[b] = h.get(b, 0) + 1
    return h


def test_percentiles_from_counts_are_within_one_bucket_of_the_exact_ones() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(6, 1.2) for _ in range(20_000)]  # ~400 ms median, long tail
    exact = sorted(values)
    h = _hist(values)
    for q in (0.5, 0.9, 0.99):
        want = exact[int(q * len(exact)) - 1]
        got = latency.percentile(h, q)
        assert got is not None and abs(got / want - 1) < 0.19, (q, got, want)
    assert latency.percentile({}, 0.5) is None
    assert latency.percentile({latency.bucket_of(100): 3}, 0.99) is not None
    # known latencies: 90 of 100 ms-ish and 10 of 5 s: p50 ≈ 100, p90 ≈ 100, p99 ≈ 5000
    known = _hist([100.0] * 90 + [5000.0] * 10)
    assert 84 <= (latency.percentile(known, 0.5) or 0) <= 119
    assert 84 <= (latency.percentile(known, 0.9) or 0) <= 119
    assert 4200 <= (latency.percentile(known, 0.99) or 0) <= 5950
    s = latency.summary(known)
    assert s["count"] == 100 and s["p50"] is not None


def test_merged_histograms_equal_the_histogram_of_all_values() -> None:
    rng = random.Random(3)
    parts = [[rng.uniform(1, 10_000) for _ in range(500)] for _ in range(5)]
    merged = latency.merge(_hist(p) for p in parts)
    assert merged == _hist([v for p in parts for v in p])
    assert latency.percentile(merged, 0.9) == latency.percentile(_hist([v for p in parts for v in p]), 0.9)


async def test_simulator_delays_show_in_the_buckets_per_account_and_channel(running: Running) -> None:
    sim = running.runtime.simulator
    a, b = running.account(), running.account(name="乙")
    sim.config.receipt_delay = (0.02, 0.02)
    assert (await a.send(to=[f"1390000{i:04d}" for i in range(20)], content="您的订单已发货")).status_code == 200
    await running.wait_final(20)
    sim.config.receipt_delay = (0.6, 0.6)
    assert (await b.send(to=[f"1391000{i:04d}" for i in range(10)], content="您的订单已发货")).status_code == 200
    await running.wait_final(30)

    rows = await running.platform.db.read(latency_store.all_counts)
    per_account: dict[tuple[int, str], list[int]] = {}
    for _hour, channel, account, bucket, submit_receipt, accept_final in rows:
        assert channel == "smpp-sim"
        per_account.setdefault((int(account), "submit_receipt"), []).extend([int(bucket)] * int(submit_receipt))
        per_account.setdefault((int(account), "accept_final"), []).extend([int(bucket)] * int(accept_final))
    # every message delivered by a receipt is counted once per kind
    assert len(per_account[(a.account_id, "submit_receipt")]) == 20
    assert len(per_account[(b.account_id, "submit_receipt")]) == 10
    assert len(per_account[(b.account_id, "accept_final")]) == 10
    # b's receipts came 600 ms after the simulator took the submit (we note the submission when its answer
    # arrives, a few ms later, more on a loaded machine): not below the bucket under 600 ms' one
    assert min(per_account[(b.account_id, "submit_receipt")]) >= latency.bucket_of(600) - 1
    assert max(per_account[(b.account_id, "submit_receipt")]) <= latency.bucket_of(1500)
    assert max(per_account[(a.account_id, "submit_receipt")]) < latency.bucket_of(600)

    admin = await running.platform.staff_users.create(Actor.cli(), "lat-admin", "admin")
    async with httpx.AsyncClient(base_url=running.base) as http:
        r = await http.get("/admin/statistics/latency?group_by=account_id&bucket=none",
                           headers={"Authorization": f"Bearer {admin['token']}"})  # fmt: skip
    assert r.status_code == 200, r.text
    groups = {g["account_id"]: g for g in r.json()["groups"]}
    assert groups[b.account_id]["submit_receipt"]["count"] == 10
    low_600 = latency.bounds_of(latency.bucket_of(600) - 1)[0]  # a percentile is exact to its bucket
    assert low_600 <= groups[b.account_id]["submit_receipt"]["p50"] <= 1500
    assert groups[a.account_id]["submit_receipt"]["p99"] < low_600
    assert groups[b.account_id]["accept_final"]["p50"] >= groups[b.account_id]["submit_receipt"]["p50"] * 0.8

    # the customer route: own account only, whatever is asked
    mine = (await a.get("/v1/statistics/latency?group_by=channel&bucket=hour")).json()
    assert [g["submit_receipt"]["count"] for g in mine["groups"]] == [20]
    assert mine["groups"][0]["channel"] == "smpp-sim" and "hour" in mine["groups"][0]
    other = (await a.get(f"/v1/statistics/latency?group_by=account_id&account_id={b.account_id}")).json()
    assert all(g["account_id"] == a.account_id for g in other["groups"])
    assert (await a.get("/v1/statistics/latency?group_by=number")).json()["code"] == "INVALID_REQUEST"
