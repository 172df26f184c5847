"""A "TD" (退订) reply from the real number behind a privacy token: the opt-out is stored against the real
number, so a later marketing send to the token (or to the number) is refused OPTED_OUT, reported as the token; the
customer's own opt-out list (API and console, page and CSV) shows the token, never the real number."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
from conftest import Running
from console_helpers import PASSWORD
from test_console_pages import login

from qixin.services.actor import Actor
from qixin.services.channels import extension_of

REAL = "13912340000"


async def _until(cond: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_td_from_a_tokenised_number_opts_out_the_real_number(running: Running) -> None:
    api = running.account()
    other = running.account(name="别家")
    db = running.platform.db
    tk = (await api.request("POST", "/v1/tokens", {"number": REAL, "ttl_seconds": 3600})).json()["token"]
    first = (await api.send(to=[tk], content="您的订单已发货")).json()
    assert first["accepted_count"] == 1, first
    await running.wait_final(1)

    ext = db.write_sync(lambda tx: extension_of(tx, api.account_id))
    sim = running.runtime.simulator
    assert sim is not None
    await sim.send_mo("86" + REAL, "10690000" + ext, "TD")

    def stored() -> list[tuple[str, str]]:
        rows = db.read_sync(
            lambda tx: tx.all("SELECT number, source FROM optouts WHERE account_id = ?", (api.account_id,))
        )
        return [(str(n), str(s)) for n, s in rows]

    await _until(lambda: bool(stored()))
    assert stored() == [(REAL, "mo")]  # against the real number, not the token

    ad = {"content": "新品上市，回T退订", "type": "marketing", "audience": "会员"}
    again = (await api.send(to=[tk], **ad)).json()
    assert again["code"] == "NO_VALID_NUMBERS"
    assert again["rejected"] == [{"to": tk, "code": "OPTED_OUT", "message": "该号码已退订"}]
    by_number = (await api.send(to=[REAL], **ad)).json()
    assert [r["code"] for r in by_number["rejected"]] == ["OPTED_OUT"]

    mine = await api.request("GET", "/v1/optouts")
    listed = mine.json()["optouts"]
    assert [o["number"] for o in listed] == [tk] and listed[0]["source"] == "mo"
    csv = await api.request("GET", "/v1/optouts?format=csv")
    assert tk in csv.text
    for text in (mine.text, csv.text, orjson.dumps(again).decode()):
        assert REAL not in text and REAL[:3] + "****" + REAL[-4:] not in text
    # the console's 退订管理 page and its CSV export show the token too
    await running.platform.console_users.create_user(
        Actor.cli(), api.account_id, "所有者", "13900003101", "owner", PASSWORD
    )
    owner = await login(running, "13900003101")
    try:
        page = await owner.get("/optouts")
        export = await owner.get("/optouts.csv")
    finally:
        await owner.aclose()
    assert page.status_code == 200 and export.status_code == 200
    assert tk in export.text and tk[:3] in page.text
    for text in (page.text, export.text):
        assert REAL not in text and REAL[:3] + "****" + REAL[-4:] not in text
    # another account's opt-out list and sends are untouched
    assert (await other.request("GET", "/v1/optouts")).json()["optouts"] == []
    assert (await other.send(to=[REAL], **ad)).json()["accepted_count"] == 1
    # an opt-out blocks marketing only: a notice to the token still goes
    assert (await api.send(to=[tk], content="您的订单已签收")).json()["accepted_count"] == 1
