"""The customer SMGP 3.0 port with our own SMGP client as the customer's SP, over real TCP on loopback:
Login with the MD5 authenticator, Submit with an SMGP MsgID, one status report per Submit (per segment
for long messages, UDH or Pk_total / Pk_number alone), MO Deliver (long ones in UDH parts), Status codes
of refusals, the same billing as HTTP, and garbage that never hurts another session."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from _ports import Customer, add_login, billed, fuzz, garbage, mo_to, one_port
from conftest import Running

from qixin.protocols.cmpp.text import encode_text
from qixin.protocols.smgp.client import SmgpClient
from qixin.protocols.smgp.codec import (
    LOGIN_MODE_SEND,
    LOGIN_MODE_TRANSMIT,
    TAG_PK_NUMBER,
    TAG_PK_TOTAL,
    TAG_TP_UDHI,
    Submit,
    decode_report,
    get_tlv_int,
    tlv_u8,
    unpack_msg_id,
)

CLIENT, SECRET = "cust0001", "smgp-secret"


@pytest.fixture
async def ports(tmp_path: Path) -> AsyncIterator[tuple[Running, int]]:
    async for out in one_port(tmp_path, "smgp"):
        yield out


class Sp(Customer):
    def __init__(self, port: int, secret: str = SECRET, login_mode: int = LOGIN_MODE_TRANSMIT) -> None:
        super().__init__()
        self.client = SmgpClient("127.0.0.1", port, CLIENT, secret, login_mode=login_mode, window=64,
                                 reconnect_min=0.05, reconnect_max=0.1, on_deliver=self.got.append)  # fmt: skip

    async def submit(self, to: str, text: str, report: int = 1, pk: bool = False) -> list[Any]:
        fmt, contents, udhi = encode_text(text, 9)
        futs = []
        for i, content in enumerate(contents, 1):
            tlvs = [tlv_u8(TAG_PK_TOTAL, len(contents)), tlv_u8(TAG_PK_NUMBER, i)]
            if udhi and not pk:
                tlvs.insert(0, tlv_u8(TAG_TP_UDHI, 1))
            elif udhi:
                content = content[content[0] + 1 :]  # Pk_total / Pk_number alone, no UDH
            pdu = Submit(need_report=report, msg_format=fmt, src_term_id="1069", dest_term_ids=(to,),
                         msg_content=content, tlvs=tuple(tlvs))  # fmt: skip
            futs.append(await self.client.submit(pdu))
        return [await f for f in futs]

    def reports(self) -> list[Any]:
        return [decode_report(d.msg_content) for d in self.got if d.is_report]

    def mo(self) -> list[Any]:
        return [d for d in self.got if not d.is_report]


async def test_submit_reports_and_mo(ports: tuple[Running, int]) -> None:
    r, port = ports
    account_id = await add_login(r, "smgp", CLIENT, SECRET)
    async with Sp(port) as sp:
        short = await sp.submit("13800138000", "【企信】您好，SMGP")
        long = await sp.submit("13800138001", "【企信】" + "您的订单已发货，感谢您的支持。" * 9)
        by_pk = await sp.submit("13800138002", "【企信】" + "分段只用 Pk_total 与 Pk_number。" * 8, pk=True)
        resps = short + long + by_pk
        assert [x.status for x in resps] == [0] * len(resps) and len(long) == 3 and len(by_pk) > 1
        ids = [x.msg_id for x in resps]
        assert len(set(ids)) == len(ids)
        assert all(1 <= unpack_msg_id(i).month <= 12 for i in ids)  # the SMGP MsgID layout (BCD)
        await sp.wait(len(resps))
        reports = sp.reports()
        assert sorted(rep.msg_id for rep in reports) == sorted(ids)  # one report per Submit
        assert {rep.stat for rep in reports} <= {"DELIVRD", "UNDELIV", "EXPIRED"}  # the simulator fails 3 %
        assert await billed(r, account_id) == [(1, 35), (3, 105), (len(by_pk), 35 * len(by_pk))]
        await mo_to(r, account_id, "收到，谢谢")
        await sp.wait(len(resps) + 1)
        (mo,) = sp.mo()
        assert mo.msg_content.decode("utf-16-be") == "收到，谢谢" and mo.src_term_id.endswith("13900139000")
        long_mo = "这是一条很长的上行回复。" * 14  # 168 characters: 3 UCS-2 parts with UDH
        await mo_to(r, account_id, long_mo)
        await sp.wait(len(resps) + 4)
        parts = sp.mo()[1:]
        assert len(parts) == 3 and all(get_tlv_int(p.tlvs, TAG_TP_UDHI, 0) == 1 for p in parts)
        assert "".join(p.msg_content[6:].decode("utf-16-be") for p in parts) == long_mo


async def test_refusals_map_to_status_codes(ports: tuple[Running, int]) -> None:
    r, port = ports
    account_id = await add_login(r, "smgp", CLIENT, SECRET, tps=3)
    assert await Sp(port, secret="nope").refused() == 21
    async with Sp(port) as sp:
        forbidden = (await sp.submit("13800138000", "【企信】新开ｃａｓｉｎｏ"))[0].status
        bad_number = (await sp.submit("123", "【企信】hello"))[0].status
        burst = [(await sp.submit(f"1380013{i:04d}", "【企信】burst", report=0))[0].status for i in range(6)]
    assert (forbidden, bad_number) == (91, 95)
    assert 1 in burst  # system busy (flow control) beyond the login's TPS cap
    assert len(await billed(r, account_id)) == burst.count(0)


async def test_send_only_login_gets_no_deliver_until_a_receiving_one(ports: tuple[Running, int]) -> None:
    r, port = ports
    await add_login(r, "smgp", CLIENT, SECRET)
    async with Sp(port, login_mode=LOGIN_MODE_SEND) as sender:
        (resp,) = await sender.submit("13800138000", "【企信】只发不收")
        assert resp.status == 0
        deadline = time.monotonic() + 1.0  # the receipt is final within this; nobody may take it yet
        while time.monotonic() < deadline:
            assert not sender.got
            await asyncio.sleep(0.05)
    async with Sp(port) as receiver:  # the report waited for a session that may receive it
        await receiver.wait(1)
        assert [rep.msg_id for rep in receiver.reports()] == [resp.msg_id]


async def test_garbage_never_hurts_other_sessions(ports: tuple[Running, int]) -> None:
    r, port = ports
    await add_login(r, "smgp", CLIENT, SECRET)
    async with Sp(port) as sp:
        before = await sp.submit("13800138000", "【企信】before", report=0)
        await asyncio.to_thread(fuzz, port, garbage(">III", (0x01, 0x02, 0x03, 0x04, 0x06, 0x77)), 40)
        after = await sp.submit("13800138001", "【企信】after", report=0)
    assert before[0].status == 0 and after[0].status == 0
