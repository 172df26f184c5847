"""Number status check (空号检测): each class and its evidence, billing exceptions on the ledger, upstream
providers that time out or fail (circuit opens; the results say so), result packages, the HTTP route."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
from conftest import Running, free_port
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from qixin.domain.numbercheck import (
    History,
    OwnVerdicts,
    Upstream,
    billing_key,
    decide,
    needs_upstream,
    own_verdict,
)
from qixin.domain.numbers import prefix_table
from qixin.domain.signing import signed_headers
from qixin.errors import QxError
from qixin.services.accounts import create_account
from qixin.services.actor import Actor
from qixin.services.numbercheck import NumberChecks
from qixin.services.numberproviders import CircuitBreaker, HttpProvider, SimulatorProvider
from qixin.services.pricing import create_plan
from qixin.store.db import Database, now_ms
from qixin.store.migrate import migrate

DAY = 86_400_000
UNIT = 10  # 厘 per number-check query


# -- pure rules -------------------------------------------------------------------------------------------


def test_domain_rules_give_each_class_with_its_evidence() -> None:
    now = 1_000 * DAY
    assert own_verdict(True, False, False, 0, None, now).evidence == ["plan:invalid"]
    assert own_verdict(False, True, False, 0, None, now).cls == "empty"
    risk = own_verdict(True, True, True, 2, History(last_delivered_at=now), now)
    assert (risk.cls, risk.confidence, risk.evidence) == ("risk", 0.95, ["plan:allocated", "blacklist", "complaints:2"])
    assert own_verdict(True, True, False, 1, None, now).confidence == 0.80
    real = own_verdict(True, True, False, 0, History(last_delivered_at=now - 3 * DAY), now)
    assert (real.cls, real.confidence, real.evidence[-1]) == ("real", 0.95, "history:delivered:3d")
    assert own_verdict(True, True, False, 0, History(last_delivered_at=now - 60 * DAY), now).confidence == 0.85
    assert own_verdict(True, True, False, 0, History(last_delivered_at=now - 91 * DAY), now).cls == "silent"
    empty = own_verdict(True, True, False, 0, History(now - 9 * DAY, now - DAY, 2), now)
    assert (empty.cls, empty.confidence) == ("empty", 0.95)
    # a delivery after the empty receipt: the number was re-allocated, it is real
    assert own_verdict(True, True, False, 0, History(now - DAY, now - 9 * DAY, 1), now).cls == "real"
    assert own_verdict(True, True, False, 0, History(unreachable_receipts=3), now).cls == "silent"
    unknown = own_verdict(True, True, False, 0, None, now)
    assert (unknown.cls, unknown.confidence, billing_key(unknown)) == ("unknown", 0.0, "no_record")
    assert needs_upstream(unknown) and not needs_upstream(real)
    assert not needs_upstream(own_verdict(False, True, False, 0, None, now))
    # combining with the upstream
    up = decide(unknown, Upstream("u", "ok", "real", 0.85))
    assert (up.cls, up.confidence, up.evidence[-1]) == ("real", 0.85, "upstream:real")
    weak = own_verdict(True, True, False, 0, History(unreachable_receipts=3), now)
    assert decide(weak, Upstream("u", "ok", "silent", 0.85)).confidence == 0.90
    assert decide(weak, Upstream("u", "ok", "empty", 0.85)).cls == "empty"
    timed_out = decide(unknown, Upstream("u", "timeout"))
    assert (timed_out.cls, billing_key(timed_out)) == ("unknown", "timeout")
    assert billing_key(decide(weak, Upstream("u", "timeout"))) == "timeout"  # free whatever the own evidence said
    assert billing_key(decide(weak, Upstream("u", "open"))) == "error"


def test_shared_own_verdicts_equal_the_rule_for_every_combination_of_evidence() -> None:
    """OwnVerdicts (the batch path) keys a verdict by what the rules read; any number of it must get exactly
    the verdict own_verdict gives it, including times within the same day and empty receipts around the
    delivery."""
    import random

    now = 1_000 * DAY + 5_000_000
    rng = random.Random(7)
    shared = OwnVerdicts(now)
    times = [None, now, now - 1, now - DAY + 1, now - DAY, now - 30 * DAY, now - 31 * DAY, now - 90 * DAY,
             now - 91 * DAY - 7, now - 200 * DAY]  # fmt: skip
    seen = 0
    for _ in range(20_000):
        h = None
        if rng.random() < 0.9:
            h = History(rng.choice(times), rng.choice(times), rng.randrange(3), rng.randrange(5), rng.choice(times))
        args = (rng.random() < 0.95, rng.random() < 0.05, rng.choice((0, 0, 0, 1, 2)), h)
        got, want = shared.of(*args), own_verdict(args[0], True, args[1], args[2], h, now)
        assert (got.cls, got.confidence, got.evidence) == (want.cls, want.confidence, want.evidence), args
        seen += 1
    assert seen == 20_000 and len(shared._memo) < 5_000  # shared: far fewer verdicts than numbers


def test_circuit_breaker_opens_after_failures_and_tries_once_after_reset() -> None:
    t = [0.0]
    b = CircuitBreaker(failures=2, reset=10, clock=lambda: t[0])
    assert b.allow()
    b.failure()
    assert b.state == "closed"
    b.failure()
    assert b.state == "open" and not b.allow()
    t[0] = 10.0
    assert b.allow() and not b.allow()  # one trial
    b.failure()
    assert b.state == "open"
    t[0] = 20.0
    assert b.allow()
    b.success()
    assert b.state == "closed" and b.allow()


# -- the use case on a real database ----------------------------------------------------------------------


@dataclass
class Env:
    db: Database
    account_id: int
    actor: Actor

    def sql(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self.db.write_sync(lambda tx: tx.execute(sql, params))

    def one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self.db.read_sync(lambda tx: tx.one(sql, params))

    def message(self, number: str, status: str, channel: str, stat: str, err: str = "", age_days: float = 1) -> None:
        at = now_ms() - int(age_days * DAY)
        mid = int(self.one("SELECT COALESCE(MAX(id), 0) + 1 FROM messages")[0])
        self.sql(
            "INSERT INTO messages (id, batch_id, account_id, number, carrier, type, parts, fee_li, status, channel,"
            " carrier_stat, carrier_err, created_at, submitted_at, done_at)"
            " VALUES (?, 1, ?, ?, 'cmcc', 'notification', 1, 35, ?, ?, ?, ?, ?, ?, ?)",
            (mid, self.account_id, number, status, channel, stat, err, at, at, at),
        )


@pytest.fixture
def env(db_url: str) -> Iterator[Env]:
    migrate(db_url)
    db = Database(db_url)
    db.start()
    out = db.write_sync(lambda tx: create_account(tx, "检测客户", "企信", 100_000, 35))
    acct = int(out["account_id"])
    db.write_sync(lambda tx: create_plan(tx, acct, "numcheck", UNIT))
    for name, proto in (("ch-cmpp", "cmpp3"), ("ch-sgip", "sgip")):
        db.write_sync(
            lambda tx, n=name, p=proto: tx.execute(
                "INSERT INTO channels (name, protocol, host, port, username, secret, created_at, updated_at)"
                " VALUES (?, ?, '127.0.0.1', 1, 'u', 's', 0, 0)",
                (n, p),
            )
        )
    try:
        yield Env(db, acct, Actor.customer(acct, "qxtest"))
    finally:
        db.close()


def _unallocated() -> str:
    table = prefix_table()
    for p in range(1300, 2000):
        n = f"{p}0000000"
        if n[1] >= "3" and table.carrier_of(n) == "unknown":
            return n
    raise AssertionError("no unallocated 号段 in the prefix table")


def _by_number(out: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["number"]: r for r in out["results"]}


async def test_each_class_from_the_platforms_own_evidence_and_its_charge_on_the_ledger(env: Env) -> None:
    env.message("13800000001", "delivered", "ch-cmpp", "DELIVRD", age_days=2)  # real
    env.message("13800000002", "delivered", "ch-cmpp", "DELIVRD", age_days=120)  # silent: long ago
    env.message("13800000003", "delivered", "ch-cmpp", "DELIVRD", age_days=30)
    env.message("13800000003", "undelivered", "ch-cmpp", "MK:0001", age_days=1)  # empty (空号) since
    env.message("13000000004", "undelivered", "ch-sgip", "UNDELIV", "029", age_days=1)  # SGIP unknown user
    for _ in range(3):
        env.message("13800000005", "undelivered", "ch-cmpp", "MK:0013", age_days=1)  # barred (停机): silent
    env.sql("INSERT INTO blacklist (number, reason, source, created_at) VALUES ('13800000006', '', 'staff', 0)")
    env.sql("INSERT INTO complaints (number, actor, created_at) VALUES ('13800000007', 'staff', 0)")
    env.message("13800000008", "delivered", "ch-cmpp", "DELIVRD", age_days=1)
    env.sql("INSERT INTO ported_numbers (number, carrier, learned_at) VALUES ('13800000008', 'ctcc', 0)")
    unallocated = _unallocated()
    checks = NumberChecks(env.db, provider=None)
    numbers = ["+86 138 0000 0001", "13800000002", "13800000003", "13000000004", "13800000005", "13800000006",
               "13800000007", "13800000008", unallocated, "12345", "13800000009", "13800000001"]  # fmt: skip
    before = env.one("SELECT balance_li FROM accounts WHERE id = ?", (env.account_id,))[0]
    out = await checks.check(env.actor, numbers)
    r = _by_number(out)
    assert out["total"] == 11  # the repeat of 13800000001 is answered once
    expect = {
        "13800000001": ("real", "history:delivered:2d"),
        "13800000002": ("silent", "history:delivered:120d"),
        "13800000003": ("empty", "history:empty_receipt:1"),
        "13000000004": ("empty", "history:empty_receipt:1"),
        "13800000005": ("silent", "history:unreachable:3"),
        "13800000006": ("risk", "blacklist"),
        "13800000007": ("risk", "complaints:1"),
        "13800000008": ("real", "history:delivered:1d"),
        unallocated: ("empty", "plan:unallocated"),
        "12345": ("empty", "plan:invalid"),
        "13800000009": ("unknown", "plan:allocated"),
    }
    for number, (cls, evidence) in expect.items():
        assert r[number]["class"] == cls, (number, r[number])
        assert evidence in r[number]["evidence"], (number, r[number])
    assert r["13800000001"]["carrier"] == "cmcc" and r["13800000001"]["province"]
    assert r["13800000008"]["carrier"] == "ctcc" and r["13800000008"]["ported"] is True
    assert not r["13800000001"]["ported"]
    # billing: every answered query except 库无
    assert r["13800000009"]["billed"] is False and out["charged"] == 10 and out["fee_li"] == 10 * UNIT
    after = env.one("SELECT balance_li FROM accounts WHERE id = ?", (env.account_id,))[0]
    assert before - after == 10 * UNIT
    kind, amount, ref = env.one(
        "SELECT kind, amount_li, ref FROM ledger WHERE account_id = ? ORDER BY id DESC LIMIT 1", (env.account_id,)
    )
    assert (kind, amount, ref) == ("charge", -10 * UNIT, f"numcheck:{out['check_id']}")
    # a check of only 库无 numbers costs nothing and writes no ledger row
    n_ledger = env.one("SELECT COUNT(*) FROM ledger WHERE account_id = ?", (env.account_id,))[0]
    free = await checks.check(env.actor, ["13800000019", "13800000029"])
    assert free["fee_li"] == 0 and free["counts"]["unknown"] == 2
    assert env.one("SELECT COUNT(*) FROM ledger WHERE account_id = ?", (env.account_id,))[0] == n_ledger
    # the stored check reads back the same; packages hold only their class
    stored = await checks.get(env.actor, out["check_id"])
    assert [x["class"] for x in stored["results"]] == [x["class"] for x in out["results"]]
    name, data = await checks.package(env.actor, out["check_id"], "empty", "csv")
    assert name.startswith("空号包")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert {x["number"] for x in rows} == {"13800000003", "13000000004", unallocated, "12345"}
    _, xlsx = await checks.package(env.actor, out["check_id"], "real", "xlsx")
    assert xlsx[:2] == b"PK"
    # another account cannot read it
    with pytest.raises(Exception, match="NOT_FOUND"):
        await checks.get(Actor.customer(env.account_id + 1, "other"), out["check_id"])


async def test_a_large_checks_pages_are_lz4_on_postgresql_and_read_back_whole(env: Env) -> None:
    """A check of many pages stores them compressed with lz4 where the server has it (cheaper to write than
    pglz), only for its own COPY: the writer's next transaction still compresses with the default."""
    if not env.db.is_pg:
        pytest.skip("TOAST compression is PostgreSQL's")
    have = env.one("SELECT setting, 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
    if not have[1]:
        pytest.skip("this PostgreSQL was built without lz4")
    numbers = [f"1390000{i:04d}" for i in range(10_000)]  # 10 pages
    out = await NumberChecks(env.db, None, max_inline=10_000).check_many(env.actor, numbers)
    cid = int(out["check_id"])
    sql = "SELECT DISTINCT pg_column_compression(rows) FROM number_check_pages WHERE check_id = ?"
    methods = env.db.read_sync(lambda tx: tx.all(sql, (cid,)))
    assert [m[0] for m in methods] == ["lz4"]
    # the same writer sessions afterwards: the setting is theirs again (one job per writer, all four in use)
    futures = [env.db.submit(lambda tx: tx.one("SHOW default_toast_compression")[0]) for _ in range(8)]
    after = [f.result() for f in futures]
    assert set(after) == {have[0]}
    back = await NumberChecks(env.db, None).get(env.actor, cid)
    assert [r["number"] for r in back["results"]] == numbers


async def test_no_price_and_no_balance_are_refused_having_written_nothing(env: Env) -> None:
    other = env.db.write_sync(lambda tx: create_account(tx, "无价客户", "企信", 5, 35))
    checks = NumberChecks(env.db, provider=SimulatorProvider())
    with pytest.raises(Exception, match="PRICE_NOT_SET"):
        await checks.check(Actor.customer(int(other["account_id"]), "k"), ["13800000001"])
    env.db.write_sync(lambda tx: create_plan(tx, int(other["account_id"]), "numcheck", UNIT))
    checks = NumberChecks(env.db, provider=SimulatorProvider())
    with pytest.raises(Exception, match="INSUFFICIENT_BALANCE"):
        await checks.check(Actor.customer(int(other["account_id"]), "k"), ["13800000003"])
    assert env.one("SELECT COUNT(*) FROM number_checks")[0] == 0
    with pytest.raises(Exception, match="TOO_MANY_NUMBERS"):
        await checks.check(env.actor, [f"1380000{i:04d}" for i in range(1001)])
    with pytest.raises(Exception, match="NUMBERS_EMPTY"):
        await checks.check(env.actor, [" "])


async def test_concurrent_single_checks_are_coalesced_each_charged_exactly_on_the_ledger(env: Env) -> None:
    real = [f"138000001{i:02d}" for i in range(20)]
    for n in real:
        env.message(n, "delivered", "ch-cmpp", "DELIVRD", age_days=2)
    env.message("13800000301", "undelivered", "ch-cmpp", "MK:0001", age_days=1)  # empty (空号)
    unknown = [f"138000002{i:02d}" for i in range(10)]  # 库无: free
    checks = NumberChecks(env.db, provider=None)
    await checks.check(env.actor, ["13800000299"])  # warms the price cache: the rest arrive together
    rounds0 = checks.stats["coalesced_rounds"]
    bal0 = env.one("SELECT balance_li FROM accounts WHERE id = ?", (env.account_id,))[0]
    last_ledger = env.one("SELECT MAX(id) FROM ledger WHERE account_id = ?", (env.account_id,))[0]
    audits0 = env.one("SELECT COUNT(*) FROM audit_log WHERE action = 'numbers.check'")[0]
    asked = [[n] for n in real + unknown] + [["13800000301"], ["13800000301", real[0]]]
    outs = await asyncio.gather(*(checks.check(env.actor, a) for a in asked))
    assert checks.stats["coalesced_rounds"] - rounds0 < len(asked)  # they went together, not one by one
    assert len({o["check_id"] for o in outs}) == len(asked)
    for a, o in zip(asked, outs, strict=True):
        assert [r["number"] for r in o["results"]] == a
        assert o["fee_li"] == UNIT * sum(n not in unknown for n in a), (a, o)
    assert outs[-1]["counts"]["empty"] == 1 and outs[-1]["counts"]["real"] == 1
    # one ledger row per billed check, its own amount and ref; balances after run down one by one
    rows = env.db.read_sync(lambda tx: tx.all(
        "SELECT amount_li, balance_after_li, ref FROM ledger WHERE account_id = ? AND id > ? ORDER BY id",
        (env.account_id, last_ledger),
    ))  # fmt: skip
    billed = {f"numcheck:{o['check_id']}": o["fee_li"] for o in outs if o["fee_li"]}
    assert {ref: -amount for amount, _, ref in rows} == billed and len(rows) == len(billed)
    running = bal0
    for amount, after, _ in rows:
        running += amount
        assert after == running
    bal1 = env.one("SELECT balance_li FROM accounts WHERE id = ?", (env.account_id,))[0]
    assert bal1 == running == bal0 - sum(billed.values())
    assert env.one("SELECT COUNT(*) FROM audit_log WHERE action = 'numbers.check'")[0] - audits0 == len(asked)
    stored = await checks.get(env.actor, outs[-1]["check_id"])
    assert [r["class"] for r in stored["results"]] == ["empty", "real"]
    assert await checks.skippable(env.account_id, ["13800000301", real[1]], ["empty"]) == {"13800000301": "empty"}

    # an account that can pay for 3 of 5 checks arriving together: 3 are made, 2 refused alone, nothing of them
    poor = int(env.db.write_sync(lambda tx: create_account(tx, "余额少", "企信", 3 * UNIT, 35))["account_id"])
    env.db.write_sync(lambda tx: create_plan(tx, poor, "numcheck", UNIT))
    poor_actor = Actor.customer(poor, "qxpoor")
    await checks.unit_price(poor)
    got = await asyncio.gather(*(checks.check(poor_actor, [n]) for n in real[:5]), return_exceptions=True)
    made = [g for g in got if isinstance(g, dict)]
    refused = [g for g in got if isinstance(g, QxError)]
    assert len(made) == 3 and [e.code for e in refused] == ["INSUFFICIENT_BALANCE"] * 2
    assert env.one("SELECT balance_li FROM accounts WHERE id = ?", (poor,))[0] == 0
    assert env.one("SELECT COUNT(*) FROM number_checks WHERE account_id = ?", (poor,))[0] == 3
    assert env.one("SELECT COUNT(*) FROM ledger WHERE account_id = ? AND kind = 'charge'", (poor,))[0] == 3


async def test_simulator_provider_answers_what_own_evidence_does_not(env: Env) -> None:
    env.message("13800000101", "delivered", "ch-cmpp", "DELIVRD", age_days=1)
    sim = SimulatorProvider()
    out = _by_number(
        await NumberChecks(env.db, provider=sim).check(
            env.actor, ["13800000101", "13800000110", "13800000111", "13800000119"]
        )
    )
    assert sim.asked == 3  # the number the platform's own history decides is not sent upstream
    assert out["13800000101"]["evidence"] == ["plan:allocated", "history:delivered:1d"]
    assert (out["13800000110"]["class"], out["13800000110"]["evidence"][-1]) == ("empty", "upstream:empty")
    assert out["13800000111"]["class"] == "silent"
    assert out["13800000119"]["class"] == "unknown" and not out["13800000119"]["billed"]


# -- an upstream over real HTTP on loopback ---------------------------------------------------------------


class Upstream_:
    def __init__(self) -> None:
        self.mode = "ok"
        self.requests = 0
        self.release = asyncio.Event()

    async def handle(self, request: Request) -> Response:
        self.requests += 1
        body = orjson.loads(await request.body())
        assert body["appId"] == "qx"
        if self.mode == "slow":
            await self.release.wait()  # answers only after the client has given up
        if self.mode == "error":
            return Response(b"boom", status_code=502)
        codes = {"0": "2", "1": "3"}  # provider codes: 1 real, 2 empty, 3 silent
        return Response(orjson.dumps({"data": [{"mobile": n, "state": codes.get(n[-1], "1")}
                                               for n in body["mobiles"]]}), media_type="application/json")  # fmt: skip


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[Upstream_, str]]:
    up = Upstream_()
    port = free_port()
    app = Starlette(routes=[Route("/query", up.handle, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield up, f"http://127.0.0.1:{port}/query"
    up.release.set()
    server.should_exit = True
    await task


def _http(url: str, breaker: CircuitBreaker | None = None, timeout: float = 0.3) -> HttpProvider:
    return HttpProvider(
        url, numbers_field="mobiles", extra_body={"appId": "qx"}, results_field="data", number_field="mobile",
        status_field="state", status_map={"1": "real", "2": "empty", "3": "silent"}, timeout=timeout, batch=2,
        breaker=breaker,
    )  # fmt: skip


async def test_http_provider_maps_the_configured_request_and_answer(env: Env, upstream: tuple[Upstream_, str]) -> None:
    up, url = upstream
    provider = _http(url)
    try:
        out = _by_number(
            await NumberChecks(env.db, provider).check(env.actor, ["13800000200", "13800000201", "13800000202"])
        )
    finally:
        await provider.aclose()
    assert up.requests == 2  # batches of two
    assert out["13800000200"]["class"] == "empty" and "upstream:empty" in out["13800000200"]["evidence"]
    assert out["13800000201"]["class"] == "silent" and out["13800000202"]["class"] == "real"
    assert all(r["billed"] for r in out.values())


async def test_upstream_timeout_is_free_and_said_so(env: Env, upstream: tuple[Upstream_, str]) -> None:
    up, url = upstream
    up.mode = "slow"
    provider = _http(url, timeout=0.2)
    before = env.one("SELECT balance_li FROM accounts WHERE id = ?", (env.account_id,))[0]
    env.message("13800000301", "delivered", "ch-cmpp", "DELIVRD", age_days=1)
    try:
        out = await NumberChecks(env.db, provider).check(env.actor, ["13800000301", "13800000302"])
    finally:
        up.release.set()
        await provider.aclose()
    r = _by_number(out)
    assert r["13800000302"]["class"] == "unknown" and r["13800000302"]["evidence"][-1] == "upstream:timeout"
    assert r["13800000302"]["billed"] is False
    assert r["13800000301"]["billed"] is True  # decided by own evidence, upstream not asked
    assert out["fee_li"] == UNIT
    after = env.one("SELECT balance_li FROM accounts WHERE id = ?", (env.account_id,))[0]
    assert before - after == UNIT


async def test_failing_upstream_opens_its_circuit_and_the_results_say_so(
    env: Env, upstream: tuple[Upstream_, str]
) -> None:
    up, url = upstream
    up.mode = "error"
    provider = _http(url, CircuitBreaker(failures=2, reset=3600))
    checks = NumberChecks(env.db, provider)
    try:
        first = await checks.check(env.actor, ["13800000401", "13800000402", "13800000403", "13800000404",
                                               "13800000405", "13800000406"])  # fmt: skip
        asked = up.requests
        second = await checks.check(env.actor, ["13800000407"])
    finally:
        await provider.aclose()
    assert asked == 2  # two failed requests opened the circuit; the third batch was not sent
    ev = [x["evidence"][-1] for x in first["results"]]
    assert ev == ["upstream:error"] * 4 + ["upstream:open"] * 2
    assert second["results"][0]["evidence"][-1] == "upstream:open" and up.requests == asked
    assert first["fee_li"] == 0 and second["fee_li"] == 0  # errors are not charged
    assert provider.breaker.state == "open"


# -- the HTTP route -----------------------------------------------------------------------------------------


async def test_http_route_checks_and_serves_packages(running: Running, tmp_path: Path) -> None:
    api = running.account()
    running.platform.db.write_sync(lambda tx: create_plan(tx, api.account_id, "numcheck", UNIT))
    resp = await api.request("POST", "/v1/numbers/check", {"numbers": ["13800000510", "13800000512", "13800000513"]})
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert set(out["results"][0]) >= {"number", "class", "carrier", "province", "ported", "confidence", "evidence"}
    assert [x["class"] for x in out["results"]] == ["empty", "risk", "real"]  # the embedded simulator provider
    got = await api.get(f"/v1/numbers/checks/{out['check_id']}")
    assert got.status_code == 200 and got.json()["fee_li"] == 3 * UNIT
    pkg = await api.get(f"/v1/numbers/checks/{out['check_id']}/packages/risk")
    assert pkg.status_code == 200 and "13800000512" in pkg.content.decode("utf-8-sig")
    too_many = await api.request("POST", "/v1/numbers/check", {"numbers": [f"1380001{i:04d}" for i in range(1001)]})
    assert too_many.status_code == 400 and too_many.json()["code"] == "TOO_MANY_NUMBERS"
    other = running.account()
    assert (await other.get(f"/v1/numbers/checks/{out['check_id']}")).json()["code"] == "NOT_FOUND"
    # a file job through the API, run by the platform's worker
    body = "号码\n13800000600\n13800000601\n13800000603\n".encode()
    headers = signed_headers(api.app_key, api.secret, "POST", "/v1/numbers/check-jobs", body, query=[("format", "csv")])
    made = await api.http.post("/v1/numbers/check-jobs?format=csv", content=body, headers=headers)
    assert made.status_code == 201, made.text
    job = made.json()
    assert job["total"] == 4 and job["reserved_li"] == 4 * UNIT  # the header line is answered as plan:invalid
    deadline = asyncio.get_running_loop().time() + 20
    while (state := (await api.get(f"/v1/numbers/checks/{job['job_id']}"))).json().get("counts", {}) == {}:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    done = (await api.get(f"/v1/numbers/check-jobs/{job['job_id']}")).json()
    assert done["status"] == "done" and done["counts"]["empty"] == 2 and done["counts"]["silent"] == 1
    assert [r["class"] for r in state.json()["results"]] == ["empty", "empty", "silent", "real"]


# -- file jobs ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [100_000, pytest.param(1_000_000, marks=[pytest.mark.slow, pytest.mark.soak])])
async def test_a_large_number_job_resumes_after_a_restart_and_settles_exactly(tmp_path: Path, n: int) -> None:
    """100,000 numbers in ``make test`` (seconds); the 1,000,000-number run (about a minute on a busy 2-core
    machine) with ``make soak``."""
    from qixin.services.numbercheck_jobs import NumberCheckJobs

    chunk = n // 20

    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    migrate(url)
    db = Database(url)
    db.start()
    acct = int(db.write_sync(lambda tx: create_account(tx, "批量检测", "企信", 2_000_000, 35))["account_id"])
    db.write_sync(lambda tx: create_plan(tx, acct, "numcheck", 1))
    actor = Actor.customer(acct, "qxjobs")
    jobs = NumberCheckJobs(NumberChecks(db, SimulatorProvider()), chunk=chunk)
    numbers = [f"138{i:08d}" for i in range(n)]  # the simulator answers 库无 for every tenth (…9)
    job = await jobs.submit(actor, "numbers.txt", ("\n".join(numbers) + "\n13800000000\n").encode())
    assert job["total"] == n and job["reserved_li"] == n
    balance = lambda d: d.read_sync(lambda tx: tx.one("SELECT balance_li FROM accounts WHERE id = ?", (acct,))[0])  # noqa: E731
    assert balance(db) == 2_000_000 - n
    done = lambda d: d.read_sync(lambda tx: tx.one("SELECT done_chunks FROM number_check_jobs")[0])  # noqa: E731

    task = asyncio.create_task(jobs.run_once())
    deadline = asyncio.get_running_loop().time() + 60
    while done(db) < 3:
        assert asyncio.get_running_loop().time() < deadline and not task.done()
        await asyncio.sleep(0.01)
    task.cancel()  # the process stops mid-job (its database is left as it is, like a dead process's) ...
    with contextlib.suppress(asyncio.CancelledError):
        await task

    db2 = Database(url)  # ... and a new one starts; the dead process's lease has lapsed
    db2.start()
    stopped_at = done(db2)
    assert 3 <= stopped_at < 20
    db2.write_sync(lambda tx: tx.execute("UPDATE number_check_jobs SET lease_until = 0"))
    jobs2 = NumberCheckJobs(NumberChecks(db2, SimulatorProvider()), chunk=chunk)
    try:
        assert await jobs2.run_once() is True
        assert await jobs2.run_once() is False
        assert db2.read_sync(lambda tx: tx.one("SELECT COUNT(*) FROM number_check_inputs")[0]) == 0
        out = await jobs2.get(actor, job["job_id"])
        assert out["status"] == "done" and out["processed"] == n
        tenth = n // 10
        assert out["counts"]["unknown"] == tenth and out["charged"] == n - tenth and out["fee_li"] == n - tenth
        pages = db2.read_sync(lambda tx: tx.one("SELECT COUNT(*), MIN(page), MAX(page) FROM number_check_pages")[0:3])
        assert tuple(pages) == (n // 1_000, 0, n // 1_000 - 1)
        refunds = db2.read_sync(
            lambda tx: tx.all("SELECT ref, amount_li FROM ledger WHERE account_id = ? AND kind = 'refund'", (acct,))
        )
        assert len(refunds) == 20 and sum(a for _, a in refunds) == tenth  # once per chunk
        assert balance(db2) == 2_000_000 - (n - tenth)
        _, data = await jobs2.checks.package(actor, job["job_id"], "empty", "csv")
        assert data.decode("utf-8-sig").count("\r\n") == tenth + 1  # header + every number ending in 0
    finally:
        db2.close()
        db.close()  # closed last: a thread of the stopped worker may have been mid-query when it stopped
