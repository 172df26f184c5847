"""The full loop over real TCP: HTTP accept → SMPP submit to the simulator → receipt → signed webhook
into a real local HTTP receiver. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from conftest import Receiver, Running

from qixin.services.actor import Actor
from qixin.services.webhooks import mark_failed


async def wait_for(cond, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_full_loop_receipts_reach_the_webhook(running: Running, receiver: tuple[Receiver, str]) -> None:
    rec, url = receiver
    api = running.account(balance_li=1_000_000, price_li=35, callback_url=url)
    rec.secrets[api.app_key] = api.secret
    numbers = [f"139{i:08d}" for i in range(300)]
    data = (await api.send(to=numbers, content="您的快递已到驿站，取件码 8-2-1103。", out_id="order-7")).json()
    assert data["accepted_count"] == 300
    await running.wait_final(300)
    await wait_for(lambda: len(rec.events) >= 300)
    assert rec.bad_signatures == 0
    ids = {m["id"] for m in data["accepted"]}
    assert {e["id"] for e in rec.events} == ids  # each message exactly once
    assert all(e["type"] == "receipt" and e["out_id"] == "order-7" for e in rec.events)
    statuses = {e["status"] for e in rec.events}
    assert statuses <= {"delivered", "undelivered", "expired"} and "delivered" in statuses
    sim = running.runtime.simulator
    assert sim is not None and sim.stats.submits >= 300
    batch = (await api.get(f"/v1/batches/{data['batch_id']}")).json()
    assert sum(batch["status_counts"].values()) == 300
    assert set(batch["status_counts"]) <= {"delivered", "undelivered", "expired"}


async def test_webhook_retries_with_backoff_after_failures(running: Running, receiver: tuple[Receiver, str]) -> None:
    rec, url = receiver
    rec.fail_first = 1
    api = running.account(balance_li=10_000, price_li=35)
    await running.platform.accounts.set_callback(Actor.cli(), api.app_key, url)
    running.platform.directory.invalidate()
    rec.secrets[api.app_key] = api.secret
    running.platform.webhooks.backoff = (1, 1, 1)
    await api.send(to="13800138000", content="重试测试")
    await running.wait_final(1)
    await wait_for(lambda: len(rec.events) == 1, timeout=20)
    assert rec.requests >= 2  # the first push failed with 503 and was retried
    # the receiver has the event before the worker has stored that it was taken: wait for the row
    row: tuple = ()  # type: ignore[type-arg]
    for _ in range(200):
        row = await running.platform.db.read(
            lambda tx: tx.one("SELECT status, attempts, last_error FROM webhook_outbox")
        )
        if row[0] == "sent":
            break
        await asyncio.sleep(0.05)
    assert row[0] == "sent" and row[1] == 2 and row[2] == "HTTP 503"


def test_backoff_schedule_then_dead(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from qixin.store.db import Database
    from qixin.store.migrate import migrate

    url = f"sqlite:///{tmp_path / 'w.db'}"
    migrate(url)
    db = Database(url)
    db.write_sync(
        lambda tx: tx.execute(
            "INSERT INTO webhook_outbox (account_id, api_key_id, url, payload, next_at, created_at, status, attempts)"
            " VALUES (1, 1, 'http://x', '{}', 0, 0, 'pending', 0)"
        )
    )
    for attempt in range(3):
        db.write_sync(lambda tx, a=attempt: mark_failed(tx, [(1, a)], "HTTP 500", (5, 30)))
        status, attempts = db.read_sync(lambda tx: tx.one("SELECT status, attempts FROM webhook_outbox"))
        assert attempts == attempt + 1
        assert status == ("dead" if attempt == 2 else "pending")
    db.close()
