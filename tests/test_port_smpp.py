"""The customer SMPP port against an independent client: `smpplib` (PyPI) binds with a direct-connection
login, submits short and long messages, gets one receipt per submit_sm and an MO; refusals map to the
documented command_status values; the same compliance and billing as POST /v1/sms."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import smpplib.client
import smpplib.consts
import smpplib.exceptions
import smpplib.gsm
from _ports import fuzz, garbage, one_port
from conftest import Running
from hypothesis import given
from hypothesis import strategies as st

from qixin.services.actor import Actor

LOGIN, SECRET = "cust01", "pw0001"


@pytest.fixture
async def ports(tmp_path: Path) -> AsyncIterator[tuple[Running, int]]:
    async for out in _platform(tmp_path, ""):
        yield out


@pytest.fixture
async def pg_ports(tmp_path: Path, pg_url: str) -> AsyncIterator[tuple[Running, int]]:
    async for out in _platform(tmp_path, pg_url):
        yield out


async def _platform(tmp_path: Path, database_url: str, **kw: Any) -> AsyncIterator[tuple[Running, int]]:
    async for out in one_port(tmp_path, "smpp", database_url=database_url, **kw):
        yield out


async def _login(r: Running, **kw: Any) -> tuple[int, dict[str, Any]]:
    api = r.account(balance_li=kw.pop("balance_li", 100_000), price_li=35)
    out = await r.platform.connections.add(Actor.cli(), api.account_id, "smpp", kw.pop("login", LOGIN),
                                           kw.pop("secret", SECRET), **kw)  # fmt: skip
    return api.account_id, out


class Customer:
    """smpplib in a thread: bind, submit, collect answers and deliveries until a condition holds."""

    def __init__(self, port: int, login: str = LOGIN, secret: str = SECRET) -> None:
        self.client = smpplib.client.Client("127.0.0.1", port, timeout=5, allow_unknown_opt_params=True)
        self.resps: list[Any] = []
        self.delivered: list[Any] = []
        self.client.set_message_sent_handler(lambda pdu: self.resps.append(pdu))
        self.client.set_message_received_handler(lambda pdu: self.delivered.append(pdu))
        self.client.set_error_pdu_handler(lambda pdu: None)  # error answers reach the sent handler too
        self.login, self.secret = login, secret

    def bind(self) -> None:
        self.client.connect()
        self.client.bind_transceiver(system_id=self.login, password=self.secret)

    def until(self, cond: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise AssertionError(f"timeout: {len(self.resps)} answers, {len(self.delivered)} deliveries")
            self.client.read_once()

    def close(self) -> None:
        try:
            self.client.unbind()
        except Exception:
            pass
        self.client.disconnect()


def _mid(pdu: Any) -> str:
    v = pdu.message_id
    return v.decode() if isinstance(v, bytes) else str(v)


def _receipt_id(pdu: Any) -> str:
    v = pdu.receipted_message_id
    return v.decode() if isinstance(v, bytes) else str(v)


def _submit(c: Customer, to: str, text: str, rd: bool = True) -> int:
    parts, coding, esm = smpplib.gsm.make_parts(text)
    for part in parts:
        c.client.send_message(
            source_addr_ton=smpplib.consts.SMPP_TON_INTL, source_addr="10690000", dest_addr_ton=1,
            destination_addr=to, short_message=part, data_coding=coding, esm_class=esm, registered_delivery=rd,
        )  # fmt: skip
    return len(parts)


async def test_smpplib_short_long_receipts_and_mo(ports: tuple[Running, int]) -> None:
    r, port = ports
    account_id, _ = await _login(r)
    long_text = "【企信】" + "您的订单已发货，感谢您的支持。" * 9  # UCS-2, 3 parts by UDH

    def session() -> Customer:
        c = Customer(port)
        c.bind()
        n = _submit(c, "8613800138000", "【企信】hello from smpplib")
        n += _submit(c, "8613800138001", long_text)
        c.until(lambda: len(c.resps) == n and len(c.delivered) == n)
        return c

    c = await asyncio.to_thread(session)
    try:
        assert [p.status for p in c.resps] == [0] * len(c.resps) and len(c.resps) == 4
        ids = {_mid(p) for p in c.resps}
        assert len(ids) == 4
        receipts = [p for p in c.delivered if p.esm_class & 0x04]
        assert {_receipt_id(p) for p in receipts} == ids  # exactly one receipt per submit_sm
        for p in receipts:
            text = p.short_message.decode()
            assert text.startswith(f"id:{_receipt_id(p)} sub:001 dlvrd:") and " stat:" in text and " err:" in text
        # the long message is ONE message, billed per part (3), charged once
        rows = await r.platform.db.read(
            lambda tx: tx.all("SELECT parts, fee_li FROM messages WHERE account_id = ? ORDER BY parts", (account_id,))
        )
        assert [(int(a), int(b)) for a, b in rows] == [(1, 35), (3, 105)]
        bal = await r.platform.db.read(lambda tx: tx.one("SELECT balance_li FROM accounts WHERE id = ?", (account_id,)))
        assert int(bal[0]) == 100_000 - 140
        # MO to service code + extension reaches the bound transceiver as deliver_sm
        ext = await r.platform.db.read(
            lambda tx: tx.one("SELECT code FROM extensions WHERE account_id = ?", (account_id,))
        )
        sim = r.runtime.simulator
        await sim.send_mo("8613900139000", "10690000" + ext[0], "好的收到")

        def mo() -> None:
            c.until(lambda: any(not (p.esm_class & 0x04) for p in c.delivered))

        await asyncio.to_thread(mo)
        (got,) = [p for p in c.delivered if not (p.esm_class & 0x04)]
        assert got.short_message.decode("utf-16-be") == "好的收到"
    finally:
        await asyncio.to_thread(c.close)


@pytest.mark.pg
async def test_on_postgresql_receipts_and_long_messages(pg_ports: tuple[Running, int]) -> None:
    await test_smpplib_short_long_receipts_and_mo(pg_ports)


async def test_receipt_waits_for_the_next_bind(ports: tuple[Running, int]) -> None:
    r, port = ports
    await _login(r)

    def submit_and_leave() -> str:
        c = Customer(port)
        c.bind()
        _submit(c, "8613800138000", "【企信】then I leave")
        c.until(lambda: len(c.resps) == 1)
        c.close()
        return _mid(c.resps[0])

    mid = await asyncio.to_thread(submit_and_leave)
    await r.wait_final(1)

    def come_back() -> list[str]:
        c = Customer(port)
        c.bind()
        c.until(lambda: len(c.delivered) >= 1)
        c.close()
        return [_receipt_id(p) for p in c.delivered]

    assert await asyncio.to_thread(come_back) == [mid]


async def test_refusals_map_to_command_status(ports: tuple[Running, int]) -> None:
    r, port = ports
    account_id, _ = await _login(r, msg_type="verification")

    def session() -> list[int]:
        c = Customer(port)
        c.bind()
        _submit(c, "8613800138000", "【企信】您的验证码是 123456")  # accepted
        _submit(c, "8613800138000", "【企信】您的验证码是 654321")  # same number within a minute: RATE_LIMITED
        _submit(c, "86123", "【企信】您的验证码是 111111")  # invalid destination
        _submit(c, "8613800138002", "【企信】验证码 222222 新开ｃａｓｉｎｏ")  # forbidden content
        _submit(c, "8613800138003", "【别家】您的验证码是 333333")  # signature not approved
        _submit(c, "tk_0123456789abcdef", "【企信】您的验证码是 444444")  # a privacy token: HTTP API only
        c.until(lambda: len(c.resps) == 6)
        c.close()
        return [p.status for p in sorted(c.resps, key=lambda p: p.sequence)]

    assert await asyncio.to_thread(session) == [0, 0x402, 0x0B, 0x401, 0x403, 0x0B]
    rows = await r.platform.db.read(lambda tx: tx.all("SELECT id FROM messages WHERE account_id = ?", (account_id,)))
    assert len(rows) == 1  # refused messages are neither stored nor billed


async def test_bind_refusals(ports: tuple[Running, int]) -> None:
    r, port = ports
    account_id, _ = await _login(r, max_connections=1)
    await r.platform.connections.add(Actor.cli(), account_id, "smpp", "walled", "pw", ip_allowlist=["10.9.9.0/24"])

    def bind(login: str, secret: str) -> int:
        c = Customer(port, login, secret)
        try:
            c.bind()
        except smpplib.exceptions.PDUError as e:
            return int(e.args[1])
        finally:
            c.client.disconnect()
        return 0

    def scenario() -> list[int]:
        first = Customer(port)
        first.bind()
        try:
            return [bind(LOGIN, "wrong"), bind("nobody", "x"), bind("walled", "pw"), bind(LOGIN, SECRET)]
        finally:
            first.close()

    assert await asyncio.to_thread(scenario) == [0x0E, 0x0F, 0x0D, 0x0D]
    await r.platform.db.write(
        lambda tx: tx.execute("UPDATE accounts SET status = 'frozen' WHERE id = ?", (account_id,))
    )
    r.platform.ports.directory.invalidate()
    assert await asyncio.to_thread(bind, LOGIN, SECRET) == 0x0D


async def test_throttled_beyond_the_connection_tps(ports: tuple[Running, int]) -> None:
    r, port = ports
    await _login(r, tps=2)

    def session() -> list[int]:
        c = Customer(port)
        c.bind()
        for i in range(6):
            _submit(c, f"861380013{i:04d}", "【企信】burst", rd=False)
        c.until(lambda: len(c.resps) == 6)
        c.close()
        return [p.status for p in c.resps]

    statuses = await asyncio.to_thread(session)
    assert statuses.count(0) == 2 and statuses.count(0x58) == 4  # ESME_RTHROTTLED


async def test_missing_segment_fails_unsent(ports: tuple[Running, int]) -> None:
    r, port = ports
    account_id, _ = await _login(r)

    def session() -> Customer:
        c = Customer(port)
        c.bind()
        parts, coding, esm = smpplib.gsm.make_parts("【企信】" + "长" * 150)
        c.client.send_message(source_addr="1069", destination_addr="8613800138000", short_message=parts[0],
                              data_coding=coding, esm_class=esm, registered_delivery=True)  # fmt: skip
        c.until(lambda: len(c.resps) == 1 and len(c.delivered) == 1, timeout=10)
        c.close()
        return c

    c = await asyncio.to_thread(session)
    assert c.resps[0].status == 0
    text = c.delivered[0].short_message.decode()
    assert f"id:{_mid(c.resps[0])} " in text and "stat:REJECTD" in text
    rows = await r.platform.db.read(lambda tx: tx.all("SELECT id FROM messages WHERE account_id = ?", (account_id,)))
    assert rows == []


# -- garbage on the wire: answered with an error or closed; other sessions keep working ----------------


_frames = garbage(">IIII", (0x02, 0x04, 0x09, 0x103, 0x15, 0x06, 0x99), 80)


async def test_garbage_never_hurts_other_sessions(ports: tuple[Running, int]) -> None:
    r, port = ports
    await _login(r, max_connections=2)
    stop = threading.Event()
    seen: list[int] = []

    def steady() -> None:
        c = Customer(port)
        c.bind()
        i = 0
        while not stop.is_set():
            _submit(c, f"8613700{i:06d}", "【企信】steady", rd=False)
            i += 1
            c.until(lambda n=i: len(c.resps) == n)
        seen.append(i)
        c.close()

    worker = threading.Thread(target=steady)
    worker.start()
    try:
        await asyncio.to_thread(fuzz, port, _frames, 60)
    finally:
        stop.set()
        await asyncio.to_thread(worker.join, 30)
    assert seen and seen[0] > 0
    # and the port still binds and accepts afterwards
    await asyncio.to_thread(lambda: Customer(port).bind())


# -- a second independent client: aiosmpplib (asyncio) ---------------------------------------------------


async def test_aiosmpplib_submits_and_gets_one_receipt_each(ports: tuple[Running, int]) -> None:
    import aiosmpplib
    from aiosmpplib.broker import SimpleBroker

    r, port = ports
    await _login(r)
    resps: list[Any] = []
    delivered: list[Any] = []

    class Hook(aiosmpplib.AbstractHook):
        async def sending(self, smpp_message: Any, pdu: bytes, client_id: str) -> None:
            return None

        async def received(self, smpp_message: Any, pdu: bytes, client_id: str) -> None:
            if isinstance(smpp_message, aiosmpplib.SubmitSmResp):
                resps.append(smpp_message)
            elif isinstance(smpp_message, aiosmpplib.DeliverSm):
                delivered.append(smpp_message)

        async def send_error(self, smpp_message: Any, error: Exception, client_id: str) -> None:
            resps.append(error)

    broker = SimpleBroker()
    esme = aiosmpplib.ESME("127.0.0.1", port, LOGIN, SECRET, hook=Hook(), broker=broker, log_level="WARNING")
    task = asyncio.create_task(esme.start())
    try:
        for i, text in enumerate(["【企信】hello aiosmpplib", "【企信】您好，异步客户端"]):
            await broker.enqueue(
                aiosmpplib.SubmitSm(
                    short_message=text, source=aiosmpplib.PhoneNumber("1069"),
                    destination=aiosmpplib.PhoneNumber(f"861380013800{i}"), log_id=f"m{i}", registered_delivery=1,
                )
            )  # fmt: skip
        deadline = time.monotonic() + 20
        while (len(resps) < 2 or len(delivered) < 2) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert len(resps) == 2 and all(isinstance(x, aiosmpplib.SubmitSmResp) for x in resps), resps
        ids = {x.message_id for x in resps}
        receipts = [d for d in delivered if d.is_receipt()]
        assert len(receipts) == 2 and {str(d.parse_receipt()["id"]) for d in receipts} == ids
    finally:
        await esme.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


# -- segments by SAR TLVs and 16-bit UDH references; GSM-7, Latin-1 and UCS-2 codings (our own client) -----


async def test_sar_udh16_and_codings(ports: tuple[Running, int]) -> None:
    from qixin.protocols.session import Session
    from qixin.protocols.smpp.codec import BindTransceiver, SmppCodec, SubmitSm

    r, port = ports
    account_id, _ = await _login(r)
    delivered: list[Any] = []
    codec = SmppCodec()

    def handler(session: Session, pdu: Any) -> Any:
        delivered.append(pdu)
        return codec.response_to(pdu)

    s = Session(codec, handler, window=64, request_timeout=10, heartbeat_interval=0)
    await asyncio.get_running_loop().create_connection(lambda: s, "127.0.0.1", port)
    assert (await (await s.request(BindTransceiver(system_id=LOGIN, password=SECRET)))).command_status == 0
    s.mark_bound()
    body = "【企信】" + "长短信分段测试，" * 12  # 100 characters: 2 UCS-2 parts
    raw = body.encode("utf-16-be")
    half = len(raw) // 2 & ~1
    pdus = [
        # SAR TLVs, parts in reverse order
        SubmitSm(destination_addr="13800138000", data_coding=8, short_message=raw[half:], registered_delivery=1,
                 sar_msg_ref_num=0x1234, sar_total_segments=2, sar_segment_seqnum=2),
        SubmitSm(destination_addr="13800138000", data_coding=8, short_message=raw[:half], registered_delivery=1,
                 sar_msg_ref_num=0x1234, sar_total_segments=2, sar_segment_seqnum=1),
        # 16-bit UDH reference
        SubmitSm(destination_addr="13800138001", data_coding=8, esm_class=0x40, registered_delivery=1,
                 short_message=bytes((6, 8, 4, 0x56, 0x78, 2, 1)) + raw[:half]),
        SubmitSm(destination_addr="13800138001", data_coding=8, esm_class=0x40, registered_delivery=1,
                 short_message=bytes((6, 8, 4, 0x56, 0x78, 2, 2)) + raw[half:]),
        # GSM-7 (unpacked) and Latin-1
        SubmitSm(destination_addr="13800138002", data_coding=0, short_message=b"\x00 gsm7 text",
                 registered_delivery=1),
        SubmitSm(destination_addr="13800138003", data_coding=3, short_message="caf\xe9 latin".encode("latin-1"),
                 registered_delivery=1),
    ]  # fmt: skip
    resps = await asyncio.gather(*[await s.request(p) for p in pdus])
    assert [x.command_status for x in resps] == [0] * 6
    deadline = time.monotonic() + 20
    while len(delivered) < 6 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert sorted(d.receipted_message_id for d in delivered) == sorted(x.message_id for x in resps)
    await s.close(2)
    rows = await r.platform.db.read(
        lambda tx: tx.all(
            "SELECT m.number, m.parts, COALESCE(m.content, b.content) FROM messages m"
            " JOIN batches b ON b.id = m.batch_id WHERE m.account_id = ? ORDER BY m.number",
            (account_id,),
        )
    )
    assert [(n, int(p)) for n, p, _ in rows] == [("13800138000", 2), ("13800138001", 2), ("13800138002", 1),
                                                  ("13800138003", 1)]  # fmt: skip
    assert rows[0][2] == body and rows[1][2] == body
    assert rows[2][2].endswith("@ gsm7 text") and rows[3][2].endswith("café latin")


async def test_freeze_after_bind_stops_sending(ports: tuple[Running, int]) -> None:
    r, port = ports
    account_id, _ = await _login(r)

    def first() -> Customer:
        c = Customer(port)
        c.bind()
        _submit(c, "8613800138000", "【企信】before", rd=False)
        c.until(lambda: len(c.resps) == 1)
        return c

    c = await asyncio.to_thread(first)
    await r.platform.db.write(
        lambda tx: tx.execute("UPDATE accounts SET status = 'frozen' WHERE id = ?", (account_id,))
    )
    r.platform.invalidate()  # what a staff change does in its process; other processes: within the 3 s TTL

    def second() -> list[int]:
        _submit(c, "8613800138001", "【企信】after", rd=False)
        c.until(lambda: len(c.resps) == 2)
        c.close()
        return [p.status for p in c.resps]

    assert await asyncio.to_thread(second) == [0, 0x404]


async def test_enquire_link_both_ways(tmp_path: Path) -> None:
    from qixin.protocols.session import Session
    from qixin.protocols.smpp.codec import BindTransceiver, EnquireLinkResp, SmppCodec

    async for r, port in _platform(tmp_path, "", port_heartbeat=0.2):
        await _login(r)
        codec = SmppCodec()
        s = Session(codec, None, window=8, request_timeout=5, heartbeat_interval=0)  # we send none by ourselves
        await asyncio.get_running_loop().create_connection(lambda s=s: s, "127.0.0.1", port)
        assert (await (await s.request(BindTransceiver(system_id=LOGIN, password=SECRET)))).command_status == 0
        s.mark_bound()
        deadline = time.monotonic() + 5
        while s.keepalives_received < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert s.keepalives_received >= 2  # the port's enquire_link after 0.2 s of silence, answered by us
        answer = await asyncio.wait_for(s.request_forced(codec.heartbeat()), 5)
        assert isinstance(answer, EnquireLinkResp) and answer.command_status == 0  # ours answered by the port
        await s.close(2)


async def test_tps_cap_shared_by_processes_with_redis(ports: tuple[Running, int]) -> None:
    """Two PortDesks (two processes' worth) with Redis admit at most ``tps`` submits per second together."""
    import secrets as _secrets

    from conftest import need, redis_available

    from qixin.errors import QxError
    from qixin.services.ports import PortDesk, Segment

    need(redis_available())
    r, _ = ports
    await _login(r, tps=3)
    p = r.platform
    prefix = f"qixin-test-{_secrets.token_hex(4)}"
    desks = [PortDesk(p.db, p.accept, p.ports.directory, redis_url="redis://127.0.0.1:6379/0", redis_prefix=prefix)
             for _ in range(2)]  # fmt: skip
    for d in desks:
        await d.start()
    try:
        conn = await p.ports.directory.find("smpp", LOGIN)
        assert conn is not None
        while time.time() % 1 > 0.3:  # start early in a second: all submits fall in one window
            await asyncio.sleep(0.01)
        outcomes = []
        for i in range(8):
            try:
                await desks[i % 2].submit(conn, Segment(str(i), "1069", (f"1380013{i:04d}",), "【企信】shared"))
                outcomes.append("ok")
            except QxError as e:
                outcomes.append(e.code)
        assert outcomes.count("ok") == 3 and outcomes.count("CONNECTION_THROTTLED") == 5, outcomes
    finally:
        for d in desks:
            await d.stop()


async def test_daily_cap_of_the_login(ports: tuple[Running, int]) -> None:
    r, port = ports
    account_id, _ = await _login(r, daily_cap=3)

    def session() -> list[int]:
        c = Customer(port)
        c.bind()
        for i in range(5):
            _submit(c, f"861390013{i:04d}", "【企信】daily", rd=False)
        c.until(lambda: len(c.resps) == 5)
        c.close()
        return [p.status for p in c.resps]

    statuses = await asyncio.to_thread(session)
    assert statuses.count(0) == 3 and statuses.count(0x14) == 2, statuses  # ESME_RMSGQFUL
    rows = await r.platform.db.read(lambda tx: tx.all("SELECT id FROM messages WHERE account_id = ?", (account_id,)))
    assert len(rows) == 3


async def test_account_caps_apply_on_the_port(ports: tuple[Running, int]) -> None:
    """The account's flow control (services/flow.py, set by staff) holds for port submits too: beyond the
    account's daily cap the port answers ESME_RMSGQFUL, nothing stored."""
    r, port = ports
    account_id, _ = await _login(r)
    await r.platform.flow.set(Actor.cli(), account_id, daily_cap=2)

    def session() -> list[int]:
        c = Customer(port)
        c.bind()
        for i in range(4):
            _submit(c, f"861370013{i:04d}", f"【企信】account cap {i}", rd=False)
        c.until(lambda: len(c.resps) == 4)
        c.close()
        return [p.status for p in c.resps]

    statuses = await asyncio.to_thread(session)
    assert statuses.count(0) == 2 and statuses.count(0x14) == 2, statuses
    rows = await r.platform.db.read(lambda tx: tx.all("SELECT id FROM messages WHERE account_id = ?", (account_id,)))
    assert len(rows) == 2


def test_every_content_refusal_code_has_the_content_status_on_each_port() -> None:
    """The classifier's and the type check's refusals answer like the lexicon's on every customer port
    (not the generic submit failure)."""
    from qixin.gateway.ports import cmpp, sgip, smgp, smpp

    for code in ("CONTENT_CLASSIFIED", "CONTENT_TYPE_MISMATCH", "VERIFICATION_CODE_MISSING"):
        assert smpp.SUBMIT_STATUS[code] == smpp.SUBMIT_STATUS["CONTENT_FORBIDDEN"] == 0x401
        for mod in (cmpp, sgip, smgp):
            tables = [v for v in vars(mod).values() if isinstance(v, dict) and "CONTENT_FORBIDDEN" in v]
            assert tables and all(t[code] == t["CONTENT_FORBIDDEN"] for t in tables), mod.__name__


@given(st.text(max_size=40))
def test_receipt_excerpt_keeps_exactly_the_printable_ascii_characters(text: str) -> None:
    from qixin.gateway.ports.base import printable_ascii

    assert printable_ascii(text) == "".join(ch for ch in text if ch.isascii() and ch.isprintable())
