"""The customer CMPP port with our own CMPP client (2.0 and 3.0) and raw frames (version 0x21,
garbage): CONNECT with the MD5 authenticator, SUBMIT with a CMPP Msg_Id, one status report per SUBMIT
(per segment for long messages), MO DELIVER, Result codes of refusals, the same billing as HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from _ports import Customer, add_login, fuzz, garbage, one_port
from conftest import Running

from qixin.protocols.cmpp.client import CmppClient
from qixin.protocols.cmpp.codec import (
    VERSION_20,
    VERSION_30,
    CmppCodec,
    Connect,
    Submit,
    cmpp_authenticator_source,
    decode_report,
    unpack_msg_id,
)
from qixin.protocols.cmpp.text import encode_text

SP, SECRET = "912345", "cmpp-secret"


@pytest.fixture
async def ports(tmp_path: Path) -> AsyncIterator[tuple[Running, int]]:
    async for out in one_port(tmp_path, "cmpp"):
        yield out


async def _login(r: Running, **kw: Any) -> int:
    return await add_login(r, "cmpp", kw.pop("login", SP), SECRET, **kw)


class Sp(Customer):
    """Our CMPP client as the customer's SP, collecting DELIVERs."""

    def __init__(self, port: int, version: int = VERSION_30, secret: str = SECRET, sp: str = SP) -> None:
        super().__init__()
        self.delivers = self.got
        self.version = version
        self.client = CmppClient("127.0.0.1", port, sp, secret, version=version, reconnect_min=0.05,
                                 reconnect_max=0.1, on_deliver=self.got.append)  # fmt: skip

    async def submit(self, to: str, text: str, rd: int = 1) -> list[Any]:
        fmt, contents, udhi = encode_text(text, 7)
        futs = []
        for i, content in enumerate(contents, 1):
            pdu = Submit(
                pk_total=len(contents), pk_number=i, registered_delivery=rd, tp_udhi=1 if udhi else 0,
                msg_fmt=fmt, src_id="1069", dest_terminal_ids=(to,), msg_content=content, msg_src=SP,
            )  # fmt: skip
            futs.append(await self.client.submit(pdu))
        return [await f for f in futs]

    def reports(self) -> list[Any]:
        return [decode_report(d.msg_content, self.version) for d in self.delivers if d.registered_delivery]


@pytest.mark.parametrize("version", [VERSION_30, VERSION_20])
async def test_submit_reports_and_mo(ports: tuple[Running, int], version: int) -> None:
    r, port = ports
    account_id = await _login(r)
    async with Sp(port, version) as sp:
        short = await sp.submit("13800138000", "【企信】您好，CMPP")
        long = await sp.submit("13800138001", "【企信】" + "您的订单已发货，感谢您的支持。" * 9)
        resps = short + long
        assert [x.result for x in resps] == [0] * len(resps) and len(long) == 3
        ids = [x.msg_id for x in resps]
        assert len(set(ids)) == len(ids)
        assert all(1 <= unpack_msg_id(i).month <= 12 for i in ids)  # the CMPP Msg_Id layout
        await sp.wait(len(resps))
        assert sorted(rep.msg_id for rep in sp.reports()) == sorted(ids)  # one report per SUBMIT
        rows = await r.platform.db.read(
            lambda tx: tx.all("SELECT parts, fee_li FROM messages WHERE account_id = ? ORDER BY parts", (account_id,))
        )
        assert [(int(a), int(b)) for a, b in rows] == [(1, 35), (3, 105)]
        ext = await r.platform.db.read(
            lambda tx: tx.one("SELECT code FROM extensions WHERE account_id = ?", (account_id,))
        )
        await r.runtime.simulator.send_mo("8613900139000", "10690000" + ext[0], "收到，谢谢")
        await sp.wait(len(resps) + 1)
        (mo,) = [d for d in sp.delivers if not d.registered_delivery]
        assert mo.msg_content.decode("utf-16-be") == "收到，谢谢" and mo.src_terminal_id.endswith("13900139000")
        long_mo = "这是一条很长的上行回复。" * 14  # 168 characters: 3 UCS-2 parts with UDH
        await r.runtime.simulator.send_mo("8613900139000", "10690000" + ext[0], long_mo)
        await sp.wait(len(resps) + 4)
        parts = [d for d in sp.delivers if not d.registered_delivery][1:]
        assert len(parts) == 3 and all(p.tp_udhi for p in parts)
        assert "".join(p.msg_content[6:].decode("utf-16-be") for p in parts) == long_mo


async def _connect(port: int, sp: str = SP, secret: str = SECRET, version: int = 0x21) -> Any:
    """A raw CONNECT; the CONNECT_RESP decoded in the layout of ``version``."""
    ts = time.strftime("%m%d%H%M%S")
    auth = cmpp_authenticator_source(sp, secret, ts)
    codec = CmppCodec(VERSION_30 if version >= VERSION_30 else VERSION_20)
    frame = Connect(source_addr=sp, authenticator=auth, version=version, timestamp=int(ts), sequence=1)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(codec.encode(frame))
        head = await asyncio.wait_for(reader.readexactly(4), 5)
        body = await asyncio.wait_for(reader.readexactly(int.from_bytes(head, "big") - 4), 5)
        return codec.decode(head + body)
    finally:
        writer.close()


async def test_version_0x21_is_answered_in_the_2_0_layout(ports: tuple[Running, int]) -> None:
    r, port = ports
    await _login(r)
    resp = await _connect(port)
    assert resp.status == 0 and resp.version == 0x21


async def test_refusals_map_to_result_codes(ports: tuple[Running, int]) -> None:
    r, port = ports
    account_id = await _login(r, tps=3)
    assert (await _connect(port, secret="nope", version=VERSION_30)).status == 3
    assert (await _connect(port, sp="999999", version=VERSION_30)).status == 2
    assert (await _connect(port, version=0x31)).status == 4
    async with Sp(port) as sp:
        results = [
            (await sp.submit("13800138000", "【企信】新开ｃａｓｉｎｏ"))[0].result,
            (await sp.submit("123", "【企信】hello"))[0].result,
        ]
        burst = [(await sp.submit(f"1380013{i:04d}", "【企信】burst", rd=0))[0].result for i in range(6)]
    assert results == [21, 13]
    assert 8 in burst  # flow control beyond the login's TPS cap
    rows = await r.platform.db.read(lambda tx: tx.all("SELECT id FROM messages WHERE account_id = ?", (account_id,)))
    assert len(rows) == burst.count(0)


async def test_garbage_never_hurts_other_sessions(ports: tuple[Running, int]) -> None:
    r, port = ports
    await _login(r)

    async with Sp(port) as sp:
        before = await sp.submit("13800138000", "【企信】before", rd=0)
        await asyncio.to_thread(fuzz, port, garbage(">III", (0x01, 0x02, 0x04, 0x05, 0x06, 0x08, 0x77)), 60)
        after = await sp.submit("13800138001", "【企信】after", rd=0)
    assert before[0].result == 0 and after[0].result == 0


async def test_multi_destination_submit_one_report_per_destination(ports: tuple[Running, int]) -> None:
    r, port = ports
    await _login(r)
    async with Sp(port) as sp:
        fmt, contents, _ = encode_text("【企信】多个号码", 3)
        pdu = Submit(registered_delivery=1, msg_fmt=fmt, src_id="1069", msg_src=SP, msg_content=contents[0],
                     dest_terminal_ids=("13800138000", "13800138001", "123"))  # fmt: skip
        resp = await (await sp.client.submit(pdu))
        assert resp.result == 0  # accepted for the valid destinations
        await sp.wait(3)
        reports = sp.reports()
        assert {rep.msg_id for rep in reports} == {resp.msg_id}
        by_dest = {rep.dest_terminal_id: rep.stat for rep in reports}
        assert by_dest["123"] == "REJECTD" and set(by_dest) == {"13800138000", "13800138001", "123"}
