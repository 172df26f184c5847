"""The customer SGIP 1.2 port with our own SGIP client as the customer's SP, over real TCP on loopback:
Bind (Login Type 1) with the login's name and password, Submit answered with the customer's own
sequence as the id, and the SGIP way back — the port connects to the customer's own listener (Login
Type 2) and sends one Report per Submit (per segment for long messages) and MO as Deliver (long ones in
UDH parts); Result codes of refusals; the same billing as HTTP; garbage never hurts another session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from _ports import Customer, add_login, billed, fuzz, garbage, mo_to, one_port
from conftest import Running, free_port

from qixin.protocols.cmpp.text import encode_text
from qixin.protocols.sgip import codec as c
from qixin.protocols.sgip.adapter import carrier_id
from qixin.protocols.sgip.client import SgipClient

LOGIN, SECRET = "cust-sgip", "sgip-secret"


@pytest.fixture
async def ports(tmp_path: Path) -> AsyncIterator[tuple[Running, int]]:
    async for out in one_port(tmp_path, "sgip"):
        yield out


async def _login(r: Running, listen_port: int, **kw: Any) -> int:
    return await add_login(r, "sgip", LOGIN, SECRET, deliver_to=f"127.0.0.1:{listen_port}", **kw)


class Sp(Customer):
    """Our SGIP client as the customer's SP, its own listener on ``listen_port`` (the login's deliver_to)."""

    def __init__(self, port: int, listen_port: int, secret: str = SECRET) -> None:
        super().__init__()
        self.client = SgipClient(
            "127.0.0.1", port, LOGIN, secret, node_id=3_0755_00001, listen_port=listen_port, smg_login_name=LOGIN,
            smg_password=SECRET, window=64, reconnect_min=0.05, reconnect_max=0.1, on_deliver=self.got.append,
        )  # fmt: skip

    async def submit(self, to: str, text: str, report: int = 1) -> list[tuple[str, Any]]:
        coding, contents, udhi = encode_text(text, 5)
        sent = []
        for content in contents:
            pdu = c.Submit(sp_number="1069", user_numbers=(c.add_country_code(to),), report_flag=report,
                           tp_udhi=1 if udhi else 0, message_coding=coding, message_content=content)  # fmt: skip
            fut = await self.client.submit(pdu)
            sent.append((carrier_id(pdu), fut))
        return [(cid, await fut) for cid, fut in sent]

    def reports(self) -> list[c.Report]:
        return [p for p in self.got if isinstance(p, c.Report)]

    def mo(self) -> list[c.Deliver]:
        return [p for p in self.got if isinstance(p, c.Deliver)]


async def test_submit_reports_and_mo_on_the_customers_listener(ports: tuple[Running, int]) -> None:
    r, port = ports
    listen = free_port()
    account_id = await _login(r, listen)
    async with Sp(port, listen) as sp:
        short = await sp.submit("13800138000", "【企信】您好，SGIP")
        long = await sp.submit("13800138001", "【企信】" + "您的订单已发货，感谢您的支持。" * 9)
        sent = short + long
        assert [resp.result for _, resp in sent] == [0] * len(sent) and len(long) == 3
        await sp.wait(len(sent))
        reports = sp.reports()
        # one Report per Submit, naming the Submit by the customer's own sequence
        assert sorted(c.format_sequence(rep.submit_sequence) for rep in reports) == sorted(cid for cid, _ in sent)
        # the simulator fails 3 %: State 2 with the carrier's error code, State 0 with none
        assert all((rep.state, rep.error_code == 0) in ((c.STATE_DELIVERED, True), (c.STATE_FAILED, False))
                   for rep in reports)  # fmt: skip
        assert await billed(r, account_id) == [(1, 35), (3, 105)]
        await mo_to(r, account_id, "收到，谢谢")
        await sp.wait(len(sent) + 1)
        (mo,) = sp.mo()
        assert mo.message_content.decode("utf-16-be") == "收到，谢谢" and mo.user_number == "8613900139000"
        long_mo = "这是一条很长的上行回复。" * 14  # 168 characters: 3 UCS-2 parts with UDH
        await mo_to(r, account_id, long_mo)
        await sp.wait(len(sent) + 4)
        parts = sp.mo()[1:]
        assert len(parts) == 3 and all(p.tp_udhi for p in parts)
        assert "".join(p.message_content[6:].decode("utf-16-be") for p in parts) == long_mo


async def test_refusals_map_to_result_codes(ports: tuple[Running, int]) -> None:
    r, port = ports
    listen = free_port()
    account_id = await _login(r, listen, tps=3)
    assert await Sp(port, listen, secret="nope").refused() == c.RESULT_ILLEGAL_LOGIN
    async with Sp(port, listen) as sp:
        forbidden = (await sp.submit("13800138000", "【企信】新开ｃａｓｉｎｏ"))[0][1].result
        bad_number = (await sp.submit("123", "【企信】hello"))[0][1].result
        burst = [(await sp.submit(f"1380013{i:04d}", "【企信】burst", report=2))[0][1].result for i in range(6)]
    assert (forbidden, bad_number) == (91, c.RESULT_ILLEGAL_NUMBER)
    assert c.RESULT_NODE_BUSY in burst  # beyond the login's TPS cap
    assert len(await billed(r, account_id)) == burst.count(0)


async def test_garbage_never_hurts_other_sessions(ports: tuple[Running, int]) -> None:
    r, port = ports
    listen = free_port()
    await _login(r, listen)
    async with Sp(port, listen) as sp:
        before = await sp.submit("13800138000", "【企信】before", report=2)
        frames = garbage(">IIIII", (0x01, 0x02, 0x03, 0x04, 0x05, 0x11, 0x77))
        await asyncio.to_thread(fuzz, port, frames, 40)
        after = await sp.submit("13800138001", "【企信】after", report=2)
    assert before[0][1].result == 0 and after[0][1].result == 0
