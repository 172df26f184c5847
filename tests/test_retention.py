"""Retention: message details older than the retention period are purged in short chunks on SQLite and
PostgreSQL; recent ones, complaint evidence (until the complaint is closed), rollups, ledger and audit
stay; each purge is audited with its counts; ``stats verify`` compares only the retained period."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from conftest import Running, running_platform

from qixin.services import stats
from qixin.services.actor import Actor
from qixin.store import retention as retention_store
from qixin.store.db import Tx, now_ms

DAY_MS = 86_400_000
AGE_MS = 200 * DAY_MS  # older than the 183 days kept by default
ID_SHIFT = AGE_MS << 22  # ids are time-ordered: (ms since 2024) << 22 | node | sequence


def _age_account(tx: Tx, account_id: int) -> None:
    """Move everything an account sent 200 days into the past, as if it had been sent then: message and
    batch ids and times, submitted parts, the rollups' hours."""
    tx.execute(
        "UPDATE submits SET message_id = message_id - ?, submitted_at = submitted_at - ?"
        " WHERE message_id IN (SELECT id FROM messages WHERE account_id = ?)",
        (ID_SHIFT, AGE_MS, account_id),
    )
    tx.execute(
        "UPDATE messages SET id = id - ?, batch_id = batch_id - ?, created_at = created_at - ?,"
        " submitted_at = submitted_at - ?, done_at = done_at - ? WHERE account_id = ?",
        (ID_SHIFT, ID_SHIFT, AGE_MS, AGE_MS, AGE_MS, account_id),
    )
    tx.execute(
        "UPDATE batches SET id = id - ?, created_at = created_at - ? WHERE account_id = ?",
        (ID_SHIFT, AGE_MS, account_id),
    )
    tx.execute("UPDATE stats_hourly SET hour = hour - ? WHERE account_id = ?", (AGE_MS, account_id))
    tx.execute("UPDATE stats_hourly_core SET hour = hour - ? WHERE account_id = ?", (AGE_MS, account_id))


def _side_rows(tx: Tx, account_id: int) -> None:
    """Uplink messages, webhook events and a parked receipt, one old and one recent of each."""
    now = now_ms()
    for at in (now - AGE_MS, now):
        tx.execute(
            "INSERT INTO mo_messages (account_id, channel, source, destination, content, received_at)"
            " VALUES (?, 'smpp-sim', '13900001111', '10690000', 'TD', ?)",
            (account_id, at),
        )
        for status in ("sent", "dead", "pending"):
            tx.execute(
                "INSERT INTO webhook_outbox (account_id, api_key_id, url, payload, next_at, status, created_at)"
                " VALUES (?, 1, 'http://127.0.0.1:9/x', '{}', ?, ?, ?)",
                (account_id, now + DAY_MS, status, at),  # never due during the test
            )
        tx.execute(
            "INSERT INTO receipt_inbox (channel, carrier_msg_id, stat, err, received_at)"
            " VALUES ('smpp-sim', ?, 'DELIVRD', '000', ?)",
            (f"x{at}", at),
        )
        for status in ("sent", "pending"):
            tx.execute(
                "INSERT INTO alert_notices (alert_id, event, target, payload, status, attempts, next_at, created_at)"
                " VALUES (1, 'fired', 'webhook', '{}', ?, 1, ?, ?)",
                (status, now + DAY_MS, at),
            )


def _snapshot(tx: Tx) -> dict[str, object]:
    one = lambda sql: tuple(tx.one(sql))  # noqa: E731
    return {
        "ledger": one("SELECT COUNT(*), SUM(amount_li) FROM ledger"),
        "rollups": one("SELECT COUNT(*), SUM(messages), SUM(parts), SUM(fee_li) FROM stats_hourly"),
        "latency": one("SELECT COUNT(*), SUM(submit_receipt), SUM(accept_final) FROM latency_hourly"),
        "balances": one("SELECT SUM(balance_li) FROM accounts"),
    }


def _count(tx: Tx, sql: str, params: tuple[object, ...] = ()) -> int:
    return int(tx.one(sql, params)[0])


async def test_purge_removes_old_details_and_keeps_the_rest(running: Running) -> None:
    db = running.platform.db
    old, new = running.account(name="旧客户"), running.account(name="新客户")
    old_numbers = [f"1390000{i:04d}" for i in range(40)]
    assert (await old.send(to=old_numbers, content="您的订单已发货")).status_code == 200
    assert (await new.send(to=[f"1391000{i:04d}" for i in range(10)], content="您的订单已发货")).status_code == 200
    await running.wait_final(50)
    await db.write(lambda tx: _age_account(tx, old.account_id))
    await db.write(lambda tx: _side_rows(tx, old.account_id))
    assert (await db.read(stats.verify))["ok"]

    # an open complaint about one of the old numbers keeps its messages (and their batch) as evidence
    complaint = await running.platform.compliance_desk.record_complaint(Actor.cli(), old_numbers[3], None, "投诉")
    before = await db.read(_snapshot)
    audits = await db.read(lambda tx: _count(tx, "SELECT COUNT(*) FROM audit_log"))

    dry = await running.platform.retention.purge(Actor.cli(), dry_run=True)
    assert dry["purged"]["messages"] == 39 and dry["kept"]["complaint_evidence"] == 1
    assert await db.read(lambda tx: _count(tx, "SELECT COUNT(*) FROM messages")) == 50  # nothing changed

    retention = running.platform.retention
    retention.chunk_ms = 0.05  # tiny chunks: the purge must work across many transactions
    out = await retention.purge(Actor.system("retention"))
    assert out["purged"]["messages"] == 39
    assert out["purged"]["submits"] == 39
    assert out["purged"]["batches"] == 0  # the batch still holds the evidence message
    assert out["purged"]["mo_messages"] == 1 and out["purged"]["webhook_outbox"] == 2  # sent + dead, not pending
    # the old parked receipt goes: by the purge, or first by the dispatcher, which drops parked receipts
    # older than a day as orphans every half second (a race the test must not depend on)
    assert out["purged"]["receipt_inbox"] in (0, 1)
    assert await db.read(lambda tx: _count(tx, "SELECT COUNT(*) FROM receipt_inbox WHERE received_at < ?",
                                           (out["before"],))) == 0  # fmt: skip
    assert out["kept"]["complaint_evidence"] == 1 and out["chunks"] > 3
    assert out["purged"]["alert_notices"] == 1  # the old sent one; a pending one stays whatever its age

    def remaining(tx: Tx) -> dict[str, int]:
        return {
            "old": _count(tx, "SELECT COUNT(*) FROM messages WHERE account_id = ?", (old.account_id,)),
            "new": _count(tx, "SELECT COUNT(*) FROM messages WHERE account_id = ?", (new.account_id,)),
            "evidence": _count(tx, "SELECT COUNT(*) FROM messages WHERE number = ?", (old_numbers[3],)),
            "old_batches": _count(tx, "SELECT COUNT(*) FROM batches WHERE account_id = ?", (old.account_id,)),
            "new_submits": _count(
                tx, "SELECT COUNT(*) FROM submits s JOIN messages m ON m.id = s.message_id WHERE m.account_id = ?",
                (new.account_id,),
            ),
            "mo": _count(tx, "SELECT COUNT(*) FROM mo_messages"),
            "outbox": _count(tx, "SELECT COUNT(*) FROM webhook_outbox"),
        }  # fmt: skip

    assert await db.read(remaining) == {"old": 1, "new": 10, "evidence": 1, "old_batches": 1, "new_submits": 10,
                                        "mo": 1, "outbox": 4}  # fmt: skip
    assert await db.read(_snapshot) == before  # rollups, latency histograms, ledger, balances untouched
    rows = await db.read(
        lambda tx: tx.all("SELECT actor_type, actor_id, detail FROM audit_log WHERE action = 'retention.purge'")
    )
    assert len(rows) == 1 and (rows[0][0], rows[0][1]) == ("system", "retention")
    assert orjson.loads(rows[0][2])["purged"]["messages"] == 39
    assert await db.read(lambda tx: _count(tx, "SELECT COUNT(*) FROM audit_log")) == audits + 1

    # the evidence report still shows the message; the rollups keep the purged account's counts
    evidence = await running.platform.compliance_desk.evidence_report(Actor.cli(), complaint["complaint_id"])
    assert len(evidence["messages"]) == 1 and evidence["messages"][0]["content"]
    check = await db.read(stats.verify)
    assert check["ok"], check["mismatches"]
    assert check["since"] == out["before"]  # only the retained period is compared
    assert {m["account_id"] for m in check["mismatches"]} == set()

    # a retained message that loses its row is still caught
    await db.write(lambda tx: tx.execute("DELETE FROM messages WHERE account_id = ? AND number = ?",
                                         (new.account_id, "13910000000")))  # fmt: skip
    bad = await db.read(stats.verify)
    assert not bad["ok"] and {m["account_id"] for m in bad["mismatches"]} == {new.account_id}
    # rebuild recounts the retained period only: the purged hours keep their rollups
    await db.write(stats.rebuild)
    assert (await db.read(stats.verify))["ok"]
    aged = await running.platform.statistics.query(Actor.cli(), ["account_id"], None, (now_ms() - 300 * DAY_MS) // 1000,
                                                   None, {"account_id": old.account_id})  # fmt: skip
    assert aged["groups"][0]["messages"] == 40

    # closing the complaint lets the next purge take the evidence and then the batch
    await retention.close_complaint(Actor.cli(), complaint["complaint_id"], "已处理")
    again = await retention.purge(Actor.cli())
    assert again["purged"]["messages"] == 1 and again["purged"]["batches"] == 1
    assert (await db.read(remaining))["old_batches"] == 0
    assert (await running.platform.retention.purge(Actor.cli()))["purged"]["messages"] == 0  # idempotent


async def test_purge_refuses_a_cutoff_in_the_future_and_staff_without_the_area(running: Running) -> None:
    from qixin.errors import QxError

    r = running.platform.retention
    try:
        await r.purge(Actor.cli(), before=(now_ms() + DAY_MS) // 1000)
        raise AssertionError("a future cutoff was accepted")
    except QxError as e:
        assert e.code == "INVALID_REQUEST"
    try:
        await r.purge(Actor.staff(1, "ops"))
        raise AssertionError("ops may not purge")
    except QxError as e:
        assert e.code == "FORBIDDEN"
    try:
        await r.close_complaint(Actor.cli(), 987654)
        raise AssertionError("an unknown complaint was closed")
    except QxError as e:
        assert e.code == "NOT_FOUND"


def test_next_run_is_the_configured_beijing_hour() -> None:
    from datetime import datetime

    from qixin.domain.calendar import SHANGHAI
    from qixin.services.retention import Retention

    r = Retention(None, 183, hour=3)  # type: ignore[arg-type]
    at = int(datetime(2026, 12, 2, 2, 59, tzinfo=SHANGHAI).timestamp() * 1000)
    assert r.next_run(at) == int(datetime(2026, 12, 2, 3, 0, tzinfo=SHANGHAI).timestamp() * 1000)
    at = int(datetime(2026, 12, 2, 3, 0, tzinfo=SHANGHAI).timestamp() * 1000)
    assert r.next_run(at) == int(datetime(2026, 12, 3, 3, 0, tzinfo=SHANGHAI).timestamp() * 1000)
    assert r.cutoff(at) % 3_600_000 == 0 and at - r.cutoff(at) >= 183 * DAY_MS


def test_cli_purge_dry_run_then_purge_and_verify(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from typer.testing import CliRunner

    from qixin.cli import app
    from qixin.settings import load_settings
    from qixin.store.db import Database

    runner = CliRunner(env={"COLUMNS": "200"})
    d = str(tmp_path)
    assert runner.invoke(app, ["migrate", "--data-dir", d]).exit_code == 0
    db = Database(load_settings(d).db_url)
    db.write_sync(lambda tx: _side_rows(tx, 1))
    db.close()
    dry = runner.invoke(app, ["retention", "purge", "--dry-run", "--data-dir", d, "--json"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output)["purged"]["mo_messages"] == 1
    done = runner.invoke(app, ["retention", "purge", "--before", "2026-12-01", "--data-dir", d])
    assert done.exit_code == 0 and "已清理" in done.output, done.output
    verify = runner.invoke(app, ["stats", "verify", "--data-dir", d, "--json"])
    assert verify.exit_code == 0 and json.loads(verify.output)["since"] > 0
    bad = runner.invoke(app, ["retention", "purge", "--before", "2999-01-01", "--data-dir", d])
    assert bad.exit_code == 2 and "INVALID_REQUEST" in bad.output
    audit = Database(load_settings(d).db_url)
    rows = audit.read_sync(lambda tx: tx.all("SELECT actor_type FROM audit_log WHERE action = 'retention.purge'"))
    audit.close()
    assert [r[0] for r in rows] == ["cli"]


async def test_staff_close_a_complaint_over_http(running: Running) -> None:
    import httpx

    desk = running.platform.compliance_desk
    c = await desk.record_complaint(Actor.cli(), "13900009999", None, "投诉")
    reviewer = await running.platform.staff_users.create(Actor.cli(), "rev-close", "reviewer")
    ops = await running.platform.staff_users.create(Actor.cli(), "ops-close", "ops")
    async with httpx.AsyncClient(base_url=running.base) as http:
        path = f"/admin/complaints/{c['complaint_id']}/close"
        r = await http.post(path, headers={"Authorization": f"Bearer {ops['token']}"})
        assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN"
        r = await http.post(path, content=b'{"note": "done"}', headers={"Authorization": f"Bearer {reviewer['token']}"})
        assert r.status_code == 200 and r.json() == {"complaint_id": c["complaint_id"], "closed": True}
        r = await http.post("/admin/complaints/987654/close", headers={"Authorization": f"Bearer {reviewer['token']}"})
        assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"
        r = await http.post(path, content=b"{", headers={"Authorization": f"Bearer {reviewer['token']}"})
        assert r.json()["code"] == "INVALID_JSON"
    rows = await running.platform.db.read(
        lambda tx: tx.all("SELECT actor_type, target FROM audit_log WHERE action = 'complaint.close'")
    )
    assert [tuple(r) for r in rows] == [("staff", f"complaint:{c['complaint_id']}")]
    numbers, _ = await running.platform.db.read(retention_store.open_complaints)
    assert "13900009999" not in numbers


def test_chunks_follow_the_measured_cost_toward_the_target() -> None:
    from qixin.services.retention import FIRST_CHUNK, MAX_CHUNK, MIN_CHUNK, Chunks

    c = Chunks(target_ms=50)
    assert c.size == FIRST_CHUNK
    c.took(500, 5.0, 6.0)  # cheap rows: grows, but by a quarter at most
    assert c.size == int(FIRST_CHUNK * 1.25)
    for _ in range(40):
        c.took(c.size, c.size * 0.002, c.size * 0.002)  # 2 µs a row: 50 ms would be 25,000 rows
    assert abs(c.size - 15_000) <= 1  # 60 % of the target: the margin for noise
    for _ in range(10):
        c.took(c.size, c.size * 0.0005, c.size * 0.0005)
    assert c.size == MAX_CHUNK
    c.took(c.size, 400.0, 420.0)  # a slow chunk (a busy machine): the next one is far smaller at once
    assert c.size <= 0.6 * 50 / (420.0 / MAX_CHUNK) + 1 and c.longest_commit_ms == 420.0
    for _ in range(5):
        c.took(c.size, c.size * 10.0, c.size * 10.0)  # 10 ms a row: the floor
    assert c.size == MIN_CHUNK and c.count == 57


def _age_account_by(tx: Tx, account_id: int, age_ms: int) -> None:
    shift = age_ms << 22
    tx.execute(
        "UPDATE submits SET message_id = message_id - ?, submitted_at = submitted_at - ?"
        " WHERE message_id IN (SELECT id FROM messages WHERE account_id = ?)",
        (shift, age_ms, account_id),
    )
    tx.execute(
        "UPDATE messages SET id = id - ?, batch_id = batch_id - ?, created_at = created_at - ?,"
        " submitted_at = submitted_at - ?, done_at = done_at - ? WHERE account_id = ?",
        (shift, shift, age_ms, age_ms, age_ms, account_id),
    )
    tx.execute("UPDATE batches SET id = id - ?, created_at = created_at - ? WHERE account_id = ?",
               (shift, age_ms, account_id))  # fmt: skip
    tx.execute("UPDATE stats_hourly SET hour = hour - ? WHERE account_id = ?", (age_ms, account_id))
    tx.execute("UPDATE stats_hourly_core SET hour = hour - ? WHERE account_id = ?", (age_ms, account_id))


async def test_postgresql_drops_whole_months_and_keeps_complaint_evidence(running: Running) -> None:
    """PostgreSQL: a month wholly past retention is detached and dropped (messages and submits), its open
    complaint evidence written back to the default partition; the current month stays; the partial
    month and the default partition go through the chunked walk. SQLite: no partitions (same results)."""
    from qixin.store import partitions

    db = running.platform.db
    old, new = running.account(name="旧客户"), running.account(name="新客户")
    old_numbers = [f"1392000{i:04d}" for i in range(30)]
    assert (await old.send(to=old_numbers, content="您的订单已发货")).status_code == 200
    assert (await new.send(to=[f"1393000{i:04d}" for i in range(5)], content="您的订单已发货")).status_code == 200
    await running.wait_final(35)
    age = 260 * DAY_MS  # its month ends long before the 183-day cutoff
    await db.write(lambda tx: _age_account_by(tx, old.account_id, age))
    when = now_ms() - age
    month = partitions.month_of(when)
    name = partitions.month_name("messages", *month)
    if db.is_pg:
        assert await db.read(partitions.is_partitioned)
        # the aged rows fell into the default partition (no month held them); creating the month moves them
        in_default = lambda tx: _count(tx, "SELECT COUNT(*) FROM messages_default")  # noqa: E731
        assert await db.read(in_default) == 30
        made = await db.write(lambda tx: partitions.create_month(tx, *month))
        assert made == [name, partitions.month_name("submits", *month)]
        assert await db.read(in_default) == 0
        assert await db.read(lambda tx: _count(tx, f"SELECT COUNT(*) FROM {name}")) == 30
        assert await db.write(lambda tx: partitions.create_month(tx, *month)) == []  # exists: nothing made
        assert await running.platform.retention.maintain() == []  # current and next months exist already
        # the month is long over: sealed (counted once), then read by the purge instead of a scan
        assert await running.platform.retention.seal() == [name]
        assert await running.platform.retention.seal() == []  # once
        seal = await db.read(lambda tx: partitions.seal_of(tx, name))
        assert seal == partitions.Seal(30, 30, ())
    else:
        assert not await db.read(partitions.is_partitioned)
        assert await running.platform.retention.maintain() == []

    complaint = await running.platform.compliance_desk.record_complaint(Actor.cli(), old_numbers[7], None, "投诉")
    before = await db.read(_snapshot)
    out = await running.platform.retention.purge(Actor.system("retention"))
    assert out["purged"]["messages"] == 29 and out["purged"]["submits"] == 29
    assert out["kept"]["complaint_evidence"] == 1
    assert out["purged"]["batches"] == 0  # the evidence message still needs its batch
    if db.is_pg:
        assert out["partitions_dropped"] == [name] and out["longest_detach_ms"] > 0
        assert running.platform.retention.last_drop_steps["sealed"] is True
        assert (await running.platform.retention.files_freed() or -1) >= 0  # the detached tables' drop
        assert await running.platform.retention.files_freed() is None  # awaited once
        assert await db.read(lambda tx: partitions.seal_of(tx, name)) is None  # gone with its month
        tables = lambda tx: {str(r[0]) for r in tx.all("SELECT tablename FROM pg_tables")}  # noqa: E731
        left = await db.read(tables)
        assert name not in left and partitions.month_name("submits", *month) not in left
        # the evidence lives on in the default partition, with its submitted part
        assert await db.read(lambda tx: _count(tx, "SELECT COUNT(*) FROM messages_default")) == 1
        assert await db.read(lambda tx: _count(tx, "SELECT COUNT(*) FROM submits_default")) == 1
    else:
        assert "partitions_dropped" not in out
    assert await db.read(lambda tx: _count(tx, "SELECT COUNT(*) FROM messages WHERE account_id = ?",
                                           (new.account_id,))) == 5  # fmt: skip
    assert await db.read(lambda tx: _count(tx, "SELECT COUNT(*) FROM messages WHERE number = ?",
                                           (old_numbers[7],))) == 1  # fmt: skip
    assert await db.read(_snapshot) == before  # rollups, ledger, balances untouched
    evidence = await running.platform.compliance_desk.evidence_report(Actor.cli(), complaint["complaint_id"])
    assert len(evidence["messages"]) == 1
    assert (await db.read(stats.verify))["ok"]

    # the complaint closed, the evidence goes by the chunked walk, then its batch
    await running.platform.retention.close_complaint(Actor.cli(), complaint["complaint_id"])
    again = await running.platform.retention.purge(Actor.cli())
    assert again["purged"]["messages"] == 1 and again["purged"]["submits"] == 1 and again["purged"]["batches"] == 1
    assert "partitions_dropped" not in again
    assert await db.read(lambda tx: _count(tx, "SELECT COUNT(*) FROM messages WHERE account_id = ?",
                                           (old.account_id,))) == 0  # fmt: skip
    # sending still works into the current month
    assert (await new.send(to=["13930009999"], content="您的订单已发货")).status_code == 200
    await running.wait_final(6)


def test_migration_turns_a_table_with_rows_into_the_legacy_partition(empty_db_url: str) -> None:
    """0022_retention2 on a messages table holding rows (PostgreSQL): no rewrite, the table becomes the
    ``*_legacy`` partition below the next month; lookups, inserts into the months after it, ON CONFLICT-free
    bulk inserts of submits (the key now holds message_id) and the purge's drop all work. SQLite: unchanged."""
    from alembic import command

    from qixin import ids as idgen
    from qixin.store import partitions
    from qixin.store.db import Database
    from qixin.store.migrate import alembic_config

    cfg = alembic_config(empty_db_url)
    for head in ("0020_numbers2", "0020_ports2", "0020_review", "0021_console2"):
        command.upgrade(cfg, head)
    db = Database(empty_db_url)
    mid = idgen.ids.one()
    cols = ("id", "batch_id", "account_id", "number", "carrier", "type", "parts", "fee_li", "status", "created_at")

    def seed(tx: Tx) -> None:
        tx.bulk_insert("messages", cols, [(mid, 1, 1, "13900000001", "cmcc", "notification", 1, 35, "delivered",
                                           now_ms())])  # fmt: skip
        tx.bulk_insert("submits", ("channel", "carrier_msg_id", "message_id", "part_no", "submitted_at"),
                       [("smpp-sim", "c1", mid, 1, now_ms())])  # fmt: skip

    db.write_sync(seed)
    db.close()
    command.upgrade(cfg, "heads")
    db = Database(empty_db_url)
    try:
        if not db.is_pg:
            assert not db.read_sync(partitions.is_partitioned)
            assert db.read_sync(lambda tx: _count(tx, "SELECT COUNT(*) FROM messages")) == 1
            return
        parts = db.read_sync(lambda tx: partitions.partitions(tx, "messages"))
        names = [p.name for p in parts]
        nxt = partitions.next_month(*partitions.month_of(now_ms()))
        assert names == ["messages_legacy", partitions.month_name("messages", *nxt), "messages_default"], names
        assert parts[0].low is None and parts[0].high == partitions.id_at(partitions.month_start(*nxt))
        assert db.read_sync(lambda tx: tx.one("SELECT number FROM messages WHERE id = ?", (mid,)))[0] == "13900000001"
        # the partitioned parent carries the table's indexes; the legacy partition's own were attached
        idx = db.read_sync(lambda tx: {str(r[0]) for r in tx.all(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'messages'")})  # fmt: skip
        assert {"messages_pkey", "ix_messages_account_id", "ix_messages_number_done"} <= idx, idx
        key = db.read_sync(lambda tx: tx.one(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'submits_pkey'"))[0]  # fmt: skip
        assert key == "PRIMARY KEY (channel, carrier_msg_id, message_id)"
        # a row of next month goes to its month; one far ahead to the default
        later = partitions.id_at(partitions.month_start(*nxt)) + 5
        far = partitions.id_at(partitions.month_start(nxt[0] + 2, 1)) + 5
        for i in (later, far):
            db.write_sync(lambda tx, i=i: tx.bulk_insert("messages", cols, [(i, 1, 1, "13900000002", "cmcc",
                          "notification", 1, 35, "delivered", partitions.ms_of_id(i))]))  # fmt: skip
        where = db.read_sync(lambda tx: {int(r[1]): str(r[0]) for r in tx.all(
            "SELECT tableoid::regclass::text, id FROM messages")})  # fmt: skip
        assert where == {mid: "messages_legacy", later: partitions.month_name("messages", *nxt),
                         far: "messages_default"}  # fmt: skip
        # a month created later takes its rows out of the default
        made = db.write_sync(lambda tx: partitions.create_month(tx, nxt[0] + 2, 1))
        assert partitions.month_name("messages", nxt[0] + 2, 1) in made
        assert db.read_sync(lambda tx: _count(tx, "SELECT COUNT(*) FROM messages_default")) == 0
        # the legacy partition is dropped once wholly past a cutoff (called directly: a real cutoff is months away)
        assert [p.name for p, _ in db.read_sync(lambda tx: partitions.droppable(tx, later))] == ["messages_legacy"]
        kept = partitions.isolated(db, lambda tx: partitions.detach_month(tx, "messages_legacy", "submits_legacy",
                                                                          [mid], 1000))  # fmt: skip
        assert kept == (1, 1)  # written back: to the default partition
        assert db.read_sync(partitions.detached) == ["messages_legacy", "submits_legacy"]
        assert db.read_sync(lambda tx: tx.one("SELECT tableoid::regclass::text FROM messages WHERE id = ?",
                                              (mid,)))[0] == "messages_default"  # fmt: skip
        partitions.isolated(db, lambda tx: partitions.drop_detached(tx, partitions.detached(tx), 1000))
        assert db.read_sync(partitions.detached) == []
        db.write_sync(lambda tx: tx.execute("DELETE FROM messages WHERE id = ?", (mid,)))
        db.write_sync(lambda tx: tx.execute("DELETE FROM submits WHERE message_id = ?", (mid,)))
        assert db.read_sync(lambda tx: _count(tx, "SELECT COUNT(*) FROM messages WHERE id = ?", (mid,))) == 0
        assert db.read_sync(lambda tx: _count(tx, "SELECT COUNT(*) FROM submits")) == 0
    finally:
        db.close()


async def test_purge_removes_finished_file_jobs_and_their_uploads(running: Running) -> None:
    """Finished file jobs older than the cutoff go with their uploaded file and chunk rows; a running one
    and a recent one stay; a stored path outside data_dir is never deleted."""
    db = running.platform.db
    data_dir = running.platform.retention.data_dir
    assert data_dir is not None
    now = now_ms()
    outside = data_dir.parent / "outside-data-dir.txt"
    outside.write_text("13900000000")
    jobs = {1: ("done", now - AGE_MS), 2: ("running", now - AGE_MS), 3: ("done", now), 4: ("failed", now - AGE_MS)}
    for jid, (status, at) in jobs.items():
        rel = f"filejobs/1/{jid}.txt" if jid != 4 else "../outside-data-dir.txt"
        if jid != 4:
            (data_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (data_dir / rel).write_text("13900000000\n")

        def add(tx: Tx, jid: int = jid, status: str = status, at: int = at, rel: str = rel) -> None:
            # the running one is leased to another runner: the platform's own file-job worker leaves it alone
            tx.execute(
                "INSERT INTO file_jobs (id, account_id, app_key, status, filename, path, size, options, total,"
                " duplicates, chunks, created_by, runner, lease_until, created_at) VALUES (?, 1, 'k', ?, 'n.txt', ?,"
                " 12, '{}', 1, 0, 1, 'cli:', 'elsewhere', ?, ?)",
                (jid, status, rel, now + DAY_MS, at),
            )
            tx.execute(
                "INSERT INTO file_job_chunks (job_id, n, size, accepted, rejected, fee_li, refused, batch_ids,"
                " committed_at) VALUES (?, 0, 1, 1, 0, 35, '{}', '', ?)",
                (jid, at),
            )

        await db.write(add)
    dry = await running.platform.retention.purge(Actor.cli(), dry_run=True)
    assert dry["purged"]["file_jobs"] == 2 and (data_dir / "filejobs/1/1.txt").exists()
    out = await running.platform.retention.purge(Actor.cli())
    assert out["purged"]["file_jobs"] == 2
    left = await db.read(lambda tx: sorted(int(r[0]) for r in tx.all("SELECT id FROM file_jobs")))
    assert left == [2, 3]
    assert await db.read(lambda tx: _count(tx, "SELECT COUNT(*) FROM file_job_chunks")) == 2
    assert not (data_dir / "filejobs/1/1.txt").exists()
    assert (data_dir / "filejobs/1/2.txt").exists() and (data_dir / "filejobs/1/3.txt").exists()
    assert outside.exists()  # a path escaping data_dir: the row goes, the file outside is left alone
    assert (await running.platform.retention.purge(Actor.cli()))["purged"]["file_jobs"] == 0


async def test_two_processes_purging_and_creating_months_at_once(running: Running) -> None:
    """PostgreSQL: two purges at once (two processes' daily run) drop a month once and count each row once;
    two maintenance steps at once create each month once, without an error. (SQLite: nothing to create;
    the chunked purges alone are tested idempotent above.)"""
    import asyncio

    from qixin.services.retention import Retention
    from qixin.store import partitions

    db = running.platform.db
    if not db.is_pg:
        return
    old = running.account(name="旧客户")
    assert (await old.send(to=[f"1394000{i:04d}" for i in range(12)], content="您的订单已发货")).status_code == 200
    await running.wait_final(12)
    age = 260 * DAY_MS
    await db.write(lambda tx: _age_account_by(tx, old.account_id, age))
    month = partitions.month_of(now_ms() - age)
    await db.write(lambda tx: partitions.create_month(tx, *month))
    one, two = running.platform.retention, Retention(db, 183, data_dir=running.platform.retention.data_dir)
    a, b = await asyncio.gather(one.purge(Actor.cli()), two.purge(Actor.cli()))
    assert a["purged"]["messages"] + b["purged"]["messages"] == 12
    assert a["purged"]["submits"] + b["purged"]["submits"] == 12
    dropped = a.get("partitions_dropped", []) + b.get("partitions_dropped", [])
    assert dropped == [partitions.month_name("messages", *month)]
    await asyncio.gather(one.files_freed(), two.files_freed())
    assert await db.read(partitions.detached) == []
    # months far ahead, created by two maintenance steps at once
    later = now_ms() + 400 * DAY_MS
    made = await asyncio.gather(one.maintain(later), two.maintain(later))
    names = sorted(made[0] + made[1])
    y, m = partitions.month_of(later)
    ny, nm = partitions.next_month(y, m)
    assert names == sorted(partitions.month_name(t, yy, mm) for t in ("messages", "submits")
                           for yy, mm in ((y, m), (ny, nm)))  # fmt: skip


@pytest.mark.pg
async def test_postgresql_a_sealed_month_goes_whole_with_what_was_open_kept(pg_url: str, tmp_path: Path) -> None:
    """PostgreSQL: a month is sealed a day after it ended — its rows and parts counted, the ids not final
    then. A purge whose cutoff falls inside a month leaves that month whole (the chunked walk stops below
    it); once the cutoff is past the month, the purge drops it with the seal's counts, keeping by index
    what must stay: a message still not final, a final one to a number under an open complaint. A message
    that was open at the seal and became final since goes with the month."""
    from qixin.store import partitions

    async with running_platform(pg_url, tmp_path) as running:
        db, retention = running.platform.db, running.platform.retention
        old = running.account(name="旧客户")
        numbers = [f"1395000{i:04d}" for i in range(10)]
        assert (await old.send(to=numbers, content="您的订单已发货")).status_code == 200
        await running.wait_final(10)
        now = now_ms()
        year, month = partitions.month_of(now - 300 * DAY_MS)
        start, end = partitions.month_start(year, month), partitions.month_start(year, month + 1)
        await db.write(lambda tx: _age_account_by(tx, old.account_id, now - (start + 5 * DAY_MS)))
        name = partitions.month_name("messages", year, month)
        assert await db.write(lambda tx: partitions.create_month(tx, year, month)) == [
            name, partitions.month_name("submits", year, month)]  # fmt: skip
        ids = await db.read(lambda tx: [int(r[0]) for r in tx.all(
            "SELECT id FROM messages WHERE account_id = ? ORDER BY id", (old.account_id,))])  # fmt: skip
        still_open, late, evidence = ids[0], ids[1], ids[2]
        reopen = "UPDATE messages SET status = 'submitted', done_at = NULL WHERE id IN (?, ?)"
        await db.write(lambda tx: tx.execute(reopen, (still_open, late)))

        # not sealed before a day has passed since the month's end; then sealed once
        assert name not in [p.name for p, _ in await db.read(lambda tx: partitions.sealable(tx, end + 3_600_000))]
        assert await retention.seal(end + partitions.SEAL_AFTER_MS + 60_000) == [name]
        assert await db.read(lambda tx: partitions.seal_of(tx, name)) == partitions.Seal(10, 10, (still_open, late))

        # a cutoff inside the month: nothing of it goes, though its messages are older than the cutoff
        mid = await retention.purge(Actor.cli(), before=(start + 10 * DAY_MS) // 1000)
        assert mid["purged"]["messages"] == 0 and "partitions_dropped" not in mid
        dry = await retention.purge(Actor.cli(), before=(start + 10 * DAY_MS) // 1000, dry_run=True)
        assert dry["purged"]["messages"] == 0

        # since the seal: the late receipt came (final now); a complaint names a delivered message's number
        deliver = "UPDATE messages SET status = 'delivered', done_at = ? WHERE id = ?"
        await db.write(lambda tx: tx.execute(deliver, (start + 6 * DAY_MS, late)))
        number = await db.read(lambda tx: tx.one("SELECT number FROM messages WHERE id = ?", (evidence,))[0])
        await running.platform.compliance_desk.record_complaint(Actor.cli(), number, None, "投诉")
        dry = await retention.purge(Actor.cli(), dry_run=True)  # the default cutoff: the month is wholly past
        assert dry["purged"]["messages"] == 8 and dry["kept"] == {"complaint_evidence": 1, "not_final": 1}
        out = await retention.purge(Actor.cli())
        assert out["partitions_dropped"] == [name] and retention.last_drop_steps["sealed"] is True
        await retention.files_freed()
        assert await db.read(partitions.detached) == []
        assert out["purged"]["messages"] == 8 and out["purged"]["submits"] == 8
        assert out["kept"] == {"complaint_evidence": 1, "not_final": 1}
        left = await db.read(lambda tx: sorted(int(r[0]) for r in tx.all(
            "SELECT id FROM messages_default WHERE account_id = ?", (old.account_id,))))  # fmt: skip
        assert left == [still_open, evidence]
        assert await db.read(lambda tx: partitions.seal_of(tx, name)) is None
        assert (await db.read(stats.verify))["ok"]
