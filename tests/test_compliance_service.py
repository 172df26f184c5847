"""The compliance screener without HTTP: evasions, windows across 22:00 and midnight, number runs,
frequency windows on both limit storages (memory and Redis), reservations given back, the CLI permit."""

from __future__ import annotations

import json
import random
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import need, redis_available

from qixin.errors import QxError
from qixin.services.accounts import ApiKey, create_account
from qixin.services.compliance import store
from qixin.services.compliance.ratelimit import RateGate, parse_limit
from qixin.services.compliance.service import ComplianceService
from qixin.services.screening import ScreenRequest
from qixin.settings import ComplianceSettings
from qixin.store.db import Database
from qixin.store.migrate import migrate


def bj(year: int, month: int, day: int, hour: int, minute: int = 0, second: int = 0, ms: int = 0) -> int:
    """Milliseconds UTC of a Beijing wall-clock time."""
    utc = datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp() - 8 * 3600
    return int(utc * 1000) + ms


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[tuple[ComplianceService, ApiKey]]:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    migrate(url)
    db = Database(url)
    db.start()
    out = db.write_sync(lambda tx: create_account(tx, "甲", "企信", 0, 35))
    key = ApiKey(0, out["account_id"], out["app_key"], "", None, (), "active", 35, True)
    service = ComplianceService(db, ComplianceSettings(freeze_after=0))
    await service.start()
    yield service, key
    db.close()


def req(key: ApiKey, numbers: list[str], content: str = "【企信】会议通知", msg_type: str = "notification",
        **body: Any) -> ScreenRequest:  # fmt: skip
    carriers = [(n, "intl" if n.startswith("+") else "cmcc") for n in numbers]
    return ScreenRequest(key, msg_type, content, "企信", None, carriers, None, body)


@pytest.mark.parametrize(
    "text",
    [
        "荐股群，速加",  # plain
        "ｂｉｔ荐股",  # full width around
        "薦股老師帶你飛",  # traditional
        "荐 股",  # spaces
        "荐.股",  # dots
        "荐\u200b股",  # zero-width space
        "荐-*-股",  # symbols
    ],
)
async def test_evasions_are_refused(svc: tuple[ComplianceService, ApiKey], text: str) -> None:
    service, key = svc
    with pytest.raises(QxError) as e:
        await service.screen(req(key, ["13800138000"], f"【企信】{text}"))
    assert e.value.code == "CONTENT_FORBIDDEN" and e.value.detail["category"] == "stocks"


async def test_allow_list_false_positive_and_independent_hit(svc: tuple[ComplianceService, ApiKey]) -> None:
    service, key = svc
    await service.screen(req(key, ["13800138000"], "【企信】根据反洗钱规定，请更新证件"))
    with pytest.raises(QxError):
        await service.screen(req(key, ["13800138000"], "【企信】根据反洗钱规定，另可帮你洗钱"))


@pytest.mark.parametrize(
    ("now", "msg_type", "permit", "expected"),
    [
        (bj(2027, 3, 1, 21, 59, 59, 999), "notification", False, None),  # last instant inside
        (bj(2027, 3, 1, 22, 0), "notification", False, bj(2027, 3, 2, 8, 0)),  # 22:00 is outside
        (bj(2027, 3, 1, 23, 59), "notification", False, bj(2027, 3, 2, 8, 0)),  # before midnight
        (bj(2027, 3, 2, 0, 1), "notification", False, bj(2027, 3, 2, 8, 0)),  # after midnight: same day
        (bj(2027, 2, 28, 23, 0), "notification", False, bj(2027, 3, 1, 8, 0)),  # across the month end
        (bj(2027, 3, 1, 8, 0), "verification", False, None),
        (bj(2027, 3, 1, 3, 0), "verification", True, None),  # the permit covers the night
        (bj(2027, 3, 1, 20, 0), "marketing", True, bj(2027, 3, 2, 9, 0)),  # not marketing
        (bj(2027, 3, 1, 8, 30), "marketing", False, bj(2027, 3, 1, 9, 0)),
    ],
)
async def test_window_deferral(
    svc: tuple[ComplianceService, ApiKey], now: int, msg_type: str, permit: bool, expected: int | None
) -> None:
    service, key = svc
    if permit:
        await service.db.write(lambda tx: store.update_policy(tx, key.account_id, {"permit_24h": True}))
        service.invalidate()
    service.clock = lambda: now
    content = "【企信】您的验证码是1234" if msg_type == "verification" else "【企信】会议通知"
    if msg_type == "marketing":
        content = "【企信】新品上市，回T退订"
    got = await service.screen(req(key, ["13800138000"], content, msg_type, audience="会员"))
    assert got.send_at == expected
    # a customer's own send_at in the night is deferred the same way
    r = req(key, ["13800138001"], content, msg_type, audience="会员")
    r.send_at = now
    service.clock = lambda: 0
    assert (await service.screen(r)).send_at == (expected if expected is not None else now)


async def test_consecutive_number_detector(svc: tuple[ComplianceService, ApiKey]) -> None:
    service, key = svc
    service.with_settings(rate_limits=False)
    twenty = [str(13800000100 + i) for i in range(20)]
    assert (await service.screen(req(key, [*reversed(twenty), "13900000000"]))).rejected == {}
    run = [str(13800000100 + i) for i in range(21)]
    scattered = [str(13700000000 + 2 * i) for i in range(30)]  # step 2: no run
    got = await service.screen(req(key, scattered + run))
    assert got.rejected == dict.fromkeys(run, "NUMBER_RANGE_FORBIDDEN")
    await service.db.write(lambda tx: store.update_policy(tx, key.account_id, {"max_number_run": 0}))
    service.invalidate()
    assert (await service.screen(req(key, run))).rejected == {}


async def test_international_only_when_enabled(svc: tuple[ComplianceService, ApiKey]) -> None:
    service, key = svc
    got = await service.screen(req(key, ["+14155550100", "13800138000"]))
    assert got.rejected == {"+14155550100": "INTERNATIONAL_NOT_ALLOWED"}
    await service.db.write(lambda tx: store.update_policy(tx, key.account_id, {"international": True}))
    service.invalidate()
    assert (await service.screen(req(key, ["+14155550100"]))).rejected == {}


async def test_frequency_limits_memory_and_reservation_release(svc: tuple[ComplianceService, ApiKey]) -> None:
    service, key = svc
    vc = "【企信】您的验证码是1234"
    first = await service.screen(req(key, ["13800138000", "13900139000"], vc, "verification"))
    assert first.rejected == {}
    second = await service.screen(req(key, ["13800138000"], vc, "verification"))
    assert second.rejected == {"13800138000": "RATE_LIMITED"}
    # the first batch was not committed: give its counts back, the numbers may receive again
    assert first.release is not None
    await first.release()
    again = await service.screen(req(key, ["13800138000"], vc, "verification"))
    assert again.rejected == {}
    # identical marketing content once a day; a different text is another counter
    mk = "【企信】新品上市，回T退订"
    assert (await service.screen(req(key, ["13700137000"], mk, "marketing", audience="a"))).rejected == {}
    got = await service.screen(req(key, ["13700137000"], mk, "marketing", audience="a"))
    assert got.rejected == {"13700137000": "RATE_LIMITED"}
    other = "【企信】秋季新品上市，回T退订"
    assert (await service.screen(req(key, ["13700137000"], other, "marketing", audience="a"))).rejected == {}
    # per-account override
    await service.db.write(lambda tx: store.update_policy(tx, key.account_id, {"limits": {"template": "2/day"}}))
    service.invalidate()
    for expected in ({}, {}, {"13600136000": "RATE_LIMITED"}):
        assert (await service.screen(req(key, ["13600136000"]))).rejected == expected


@pytest.mark.parametrize("storage", ["memory", "redis"])
def test_fixed_windows_on_both_storages(storage: str) -> None:
    """Counts per window, refused over the limit, a new window starts afresh; the library sees our counts."""
    url = ""
    if storage == "redis":
        url = "redis://127.0.0.1:6379/0"
        need(redis_available(url))
    gate = RateGate(url, prefix=f"qixin-test-{secrets.token_hex(4)}")
    try:
        items = parse_limit("2/second;3/minute")
        checks = [(item, ("t",), ["a", "b"]) for item in items]
        for _ in range(2):
            refused, _ = gate.reserve(checks)
            assert refused == {}
        refused, _ = gate.reserve(checks)
        assert set(refused) == {"a", "b"} and refused["a"].startswith("2 per 1 second")
        assert gate.limiter.test(items[0], "t", "a") is False  # limits itself sees the counters
        deadline = time.monotonic() + 5
        while not gate.limiter.test(items[0], "t", "a"):  # wait for the next 1-second window, no longer
            assert time.monotonic() < deadline, "the 1-second window never reset"
            time.sleep(0.01)
        # the minute window has one left (peek sees the ended second window as reserve does)
        assert gate.peek(checks, {}) == {}
        refused, reservation = gate.reserve(checks)
        assert refused == {} and gate.remaining(items[1], "t", "a") == 0
        reservation.release()
        assert gate.remaining(items[1], "t", "a") == 1
        # a refused number's increments are given back at once
        many = [(items[1], ("t", "bulk"), [str(i) for i in range(5000)])]
        assert gate.reserve(many)[0] == {}
        assert gate.remaining(items[1], "t", "bulk", "42") == 2
    finally:
        gate.clear()


async def test_mo_optout_words(svc: tuple[ComplianceService, ApiKey]) -> None:
    service, key = svc
    assert service.is_optout(" td ") and service.is_optout("退订。") and service.is_optout("Ｔ")
    assert not service.is_optout("TD 谢谢你们") and not service.is_optout("好的")
    await service.db.write(lambda tx: store.update_policy(tx, key.account_id, {"optout_words": ["不要再发"]}))
    added = await service.db.write(lambda tx: service.on_mo(tx, key.account_id, "8613800138000", "不要再发"))
    assert added is None
    rows = await service.db.read(lambda tx: store.list_optouts(tx, key.account_id))
    assert [r["number"] for r in rows] == ["13800138000"]
    mk = "【企信】新品上市，回T退订"
    got = await service.screen(req(key, ["13800138000", "13900139000"], mk, "marketing", audience="a"))
    assert got.rejected == {"13800138000": "OPTED_OUT"}


def test_cli_account_create_with_permit(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "qixin.cli", "account", "create", "--name", "乙", "--signature", "企信",
         "--permit-24h", "--no-free-text", "--data-dir", str(tmp_path), "--json"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    acct = json.loads(out.stdout)
    db = Database(f"sqlite:///{tmp_path / 'qixin.db'}")
    try:
        pol = db.read_sync(lambda tx: store.load_policy(tx, acct["account_id"]))
        free = db.read_sync(
            lambda tx: tx.one("SELECT allow_free_text FROM accounts WHERE id = ?", (acct["account_id"],))
        )
    finally:
        db.close()
    assert pol.permit_24h is True and not free[0]


@pytest.mark.parametrize("storage", ["memory", "redis"])
def test_peek_answers_what_reserve_refuses_and_counts_nothing(storage: str) -> None:
    """Two gates with the same counts: peek (with its tally across batches) on one, reserve (kept) on the
    other, batch after batch — repeats within a batch and across batches, two limits with their own
    windows. Peek refuses exactly what reserve refuses, and its gate's counters never move."""
    url = ""
    if storage == "redis":
        url = "redis://127.0.0.1:6379/0"
        need(redis_available(url))
    peeking = RateGate(url, prefix=f"qixin-test-{secrets.token_hex(4)}")
    reserving = RateGate(url, prefix=f"qixin-test-{secrets.token_hex(4)}")
    try:
        items = parse_limit("3/minute;4/hour")
        pool = [f"1380000{i:04d}" for i in range(40)]
        rng = random.Random(11)
        warm = [[rng.choice(pool) for _ in range(30)] for _ in range(3)]  # numbers already counted 0–several times
        for batch in warm:
            for gate in (peeking, reserving):
                gate.reserve([(items[0], ("t", "a"), sorted(set(batch))), (items[1], ("any",), sorted(set(batch)))])

        def counts(gate: RateGate) -> list[int]:
            return [gate.remaining(items[0], "t", "a", n) for n in pool] + [
                gate.remaining(items[1], "any", n) for n in pool
            ]

        before = counts(peeking)
        tally: dict[str, int] = {}
        refused_total = 0
        for i in range(8):  # repeats within a batch (odd), distinct numbers (even); repeats across batches
            batch = [rng.choice(pool) for _ in range(12)] if i % 2 else rng.sample(pool, 12)
            groups = [(items[0], ("t", "a"), batch), (items[1], ("any",), batch)]
            peeked = peeking.peek(groups, tally)
            reserved, _ = reserving.reserve(groups)
            assert peeked == reserved
            refused_total += len(reserved)
        assert 0 < refused_total < 8 * 12  # both outcomes were checked
        assert counts(peeking) == before  # nothing counted, nothing to give back
        assert counts(reserving) != before
    finally:
        peeking.clear()
        reserving.clear()
