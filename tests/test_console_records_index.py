"""The records page's query (store/reads.search_messages, shared with GET /v1/sms) walks the index on
messages (account_id, id) instead of sorting every message of the account (migration 0020_console2); a
failure-status filter walks only the failed messages (ix_messages_account_failed, migration 0022_console3);
any other status filter on the records page reads a bounded window per page ("继续查找")."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from console_helpers import PASSWORD
from test_console_pages import login

import qixin.console.routes as console_routes
from qixin.services.actor import Actor
from qixin.services.queries import MessageFilter
from qixin.store import reads
from qixin.store.migrate import migrate


class Recorder:
    """Stands in for a transaction: keeps the statement instead of running it."""

    def __init__(self) -> None:
        self.sql = ""
        self.params: tuple[Any, ...] = ()

    def all(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        self.sql, self.params = sql, params
        return []


def plan(path: Path, filters: dict[str, Any]) -> str:
    rec = Recorder()
    reads.search_messages(rec, filters, 51)  # type: ignore[arg-type]
    with sqlite3.connect(path) as conn:
        rows = conn.execute("EXPLAIN QUERY PLAN " + rec.sql, rec.params).fetchall()
    return "\n".join(str(r[-1]) for r in rows)


def test_records_search_uses_account_id_index(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    migrate(f"sqlite:///{path}")
    for filters in ({"account_id": 1}, {"account_id": 1, "before_id": 10**15}, {"account_id": 1, "status": "delivered"},
                    {"account_id": 1, "status": "queued", "min_id": 5, "before_id": 10**15}):  # fmt: skip
        p = plan(path, filters)
        assert "ix_messages_account_id" in p, (filters, p)
        assert "TEMP B-TREE" not in p, (filters, p)  # no sort of the account's messages
    # a failure status: only the account's failed messages (the partial index), newest first, no sort
    for status in sorted(reads.FAILED_STATUSES):
        for extra in ({}, {"before_id": 10**15}):
            p = plan(path, {"account_id": 1, "status": status, **extra})
            assert "ix_messages_account_failed" in p and "TEMP B-TREE" not in p, (status, p)


async def test_records_status_search_reads_a_bounded_window(running, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Three scheduled messages, then ten sent ones: a search for the scheduled status with a window of
    five reads the ten newest in two pages that find nothing (each says where to go on), then finds the
    three; the console page shows "继续查找" with the cursor; the API (no window) answers in one page."""
    window = 5
    api = running.account()
    later = int(time.time()) + 86_400
    for i in range(3):
        assert (await api.send(to=f"1390000{7100 + i}", content="定时通知", send_at=later)).status_code == 200
    for i in range(10):
        assert (await api.send(to=f"1390000{7200 + i}", content="您好，订单已发货")).status_code == 200
    await running.wait_final(10)
    actor = Actor.customer(api.account_id, api.app_key)
    search = running.platform.message_search
    everything = (await search.search(actor, MessageFilter(), limit=20))["items"]
    assert len(everything) == 13
    status = everything[-1]["status"]  # the scheduled ones are the oldest
    assert status not in reads.FAILED_STATUSES and all(it["status"] != status for it in everything[:10])
    f = MessageFilter(status=status)
    first = await search.search(actor, f, limit=50, scan_window=window)
    assert first["items"] == [] and first["next_cursor"] == first["scanned_to"] == everything[4]["id"]
    second = await search.search(actor, f, first["next_cursor"], limit=50, scan_window=window)
    assert second["items"] == [] and second["next_cursor"] == everything[9]["id"]
    third = await search.search(actor, f, second["next_cursor"], limit=50, scan_window=window)
    assert [it["id"] for it in third["items"]] == [it["id"] for it in everything[10:]]
    assert third["next_cursor"] is None and "scanned_to" not in third
    # a full page inside the window continues from its last row as before
    dense = await search.search(actor, MessageFilter(), limit=2, scan_window=window)
    assert dense["next_cursor"] == everything[1]["id"] and "scanned_to" not in dense
    # the API has no window: one full answer
    assert len((await search.search(actor, f, limit=50))["items"]) == 3
    # the console's records page says it looked at the window and links on
    monkeypatch.setattr(console_routes, "RECORDS_SCAN_WINDOW", window)
    await running.platform.console_users.create_user(Actor.cli(), api.account_id, "所有者", "13900007301", "owner",
                                                     PASSWORD)  # fmt: skip
    owner = await login(running, "13900007301")
    try:
        page = await owner.get(f"/records?status={status}")
        assert page.status_code == 200 and "本页已查找最近 5 条记录" in page.text and "没有符合条件的记录" in page.text
        assert f"cursor={everything[4]['id']}" in page.text and "继续查找更早的记录" in page.text
        page = await owner.get(f"/records?status={status}&cursor={everything[9]['id']}")
        assert page.text.count("139****71") == 3 and "继续查找" not in page.text
    finally:
        await owner.aclose()
