"""Receipt codes → status and reason group (qixin.domain.delivery): the tables, their documentation, and
each protocol's receipts through its real simulator over loopback TCP into a real database.

docs/status-codes.md holds the tables as the code renders them (it cannot drift). After changing a table:

    .venv/bin/python tests/test_delivery_codes.py
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qixin.domain import delivery
from qixin.domain.delivery import Outcome, classify, classify_platform, normalize_err, status_of_stat
from qixin.errors import CATALOGUE
from qixin.services.receipts import Receipt, Submitted, apply_receipts, park_receipts, record_submits, retry_parked
from qixin.store.db import Tx

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "status-codes.md"
API_MD = ROOT / "docs" / "api.md"
TITLES = {
    "smpp": "SMPP 3.4 (stat word of the receipt text; err kept as received)",
    "cmpp": "CMPP 2.0 and 3.0 (the 7-character Stat; no err field)",
    "sgip": "SGIP 1.2 (Report State and ErrorCode)",
    "smgp": "SMGP 3.0 (stat word of the report text; err kept as received)",
    "platform": "Platform codes (`error_code` of a message, or a number's refusal)",
}


# --- the documentation ------------------------------------------------------------------------------


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- table:{name}:start -->", f"<!-- table:{name}:end -->"


def render(name: str) -> str:
    table = delivery.PLATFORM if name == "platform" else delivery.TABLES[name]
    lines = [f"**{TITLES[name]}**", "", "| code | status | reason | meaning |", "|---|---|---|---|"]
    for code, e in table.items():
        reason = f"`{e.reason}`" if e.reason else "—"
        lines.append(f"| `{code}` | `{e.status}` | {reason} | {e.meaning} |")
    return "\n".join(lines)


def render_reasons() -> str:
    lines = ["| reason | 运营商口径 |", "|---|---|"]
    lines += [f"| `{k}` | {v} |" for k, v in delivery.REASONS.items()]
    return "\n".join(lines)


SECTIONS: dict[str, Callable[[], str]] = {
    "reasons": render_reasons,
    **{name: (lambda n=name: render(n)) for name in (*delivery.TABLES, "platform")},
}


def _between(text: str, name: str) -> str:
    start, end = _markers(name)
    assert text.count(start) == 1 and text.count(end) == 1, f"markers of {name} must appear once"
    return text.split(start, 1)[1].split(end, 1)[0].strip()


def regenerate() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name, fn in SECTIONS.items():
        start, end = _markers(name)
        head, rest = text.split(start, 1)
        text = f"{head}{start}\n{fn()}\n{end}{rest.split(end, 1)[1]}"
    DOC.write_text(text, encoding="utf-8")


@pytest.mark.parametrize("name", list(SECTIONS))
def test_the_doc_shows_the_tables_of_the_code(name: str) -> None:
    assert _between(DOC.read_text(encoding="utf-8"), name) == SECTIONS[name](), (
        "docs/status-codes.md is stale: run .venv/bin/python tests/test_delivery_codes.py"
    )


def test_api_doc_states_the_same_status_of_each_stat_word() -> None:
    """docs/api.md's status table names stat words; each is listed under the status the code gives it."""
    text = API_MD.read_text(encoding="utf-8")
    section = text.split("## Message status", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    seen = set()
    for row in rows:
        status = row.split("`")[1]
        for word in delivery.SMPP:
            if f"`{word}`" in row:
                assert status_of_stat(word) == status, (word, status)
                seen.add(word)
    assert {"DELIVRD", "UNDELIV", "REJECTD", "EXPIRED", "DELETED", "UNKNOWN"} <= seen
    assert "status-codes.md" in section


# --- the tables -------------------------------------------------------------------------------------


def test_every_entry_uses_the_vocabulary_and_a_known_reason() -> None:
    statuses = {"delivered", "undelivered", "expired", "failed", "rejected", "submitted"}
    for table in (*delivery.TABLES.values(), delivery.PLATFORM):
        for code, e in table.items():
            assert e.status in statuses, code
            assert (e.reason == "") == (e.status in ("delivered", "submitted")), code
            assert e.reason == "" or e.reason in delivery.REASONS, code
            assert e.meaning, code
    assert set(delivery.PLATFORM) <= set(CATALOGUE) | {"RECEIPT_TIMEOUT"}


@pytest.mark.parametrize("protocol", ["smpp", "smgp", "cmpp", "cmpp2", "cmpp3"])
def test_the_stat_words(protocol: str) -> None:
    assert classify(protocol, "DELIVRD", "") == Outcome("delivered", "")
    assert classify(protocol, "delivrd") == Outcome("delivered", "")
    assert classify(protocol, "ACCEPTD") == Outcome("delivered", "")
    assert classify(protocol, "EXPIRED", "003") == Outcome("expired", "unreachable")
    assert classify(protocol, "UNDELIV", "001") == Outcome("undelivered", "unreachable")
    # the issue: REJECTD is the carrier's refusal, `undelivered` as docs/api.md says (not `rejected`)
    assert classify(protocol, "REJECTD", "004") == Outcome("undelivered", "carrier_refused")
    assert classify(protocol, "DELETED") == Outcome("undelivered", "carrier_refused")
    assert classify(protocol, "UNKNOWN", "999") == Outcome("undelivered", "other")
    assert classify(protocol, "NOSUCH1") == Outcome("undelivered", "other")
    assert classify(protocol, "") == Outcome("undelivered", "other")
    assert classify(protocol, "PT:CTCC") == Outcome("undelivered", "carrier_refused")


def test_cmpp_gateway_codes() -> None:
    assert classify("cmpp", "MK:0001") == Outcome("undelivered", "invalid_number")  # MAP unknownSubscriber
    assert classify("cmpp", "MI:0006") == Outcome("undelivered", "unreachable")  # MAP absentSubscriberSM
    assert classify("cmpp", "MN:0013") == Outcome("undelivered", "unreachable")  # MAP callBarred
    assert classify("cmpp", "MB:0034") == Outcome("undelivered", "carrier_refused")  # MAP systemFailure
    assert classify("cmpp", "MK:0999") == Outcome("undelivered", "other")  # no such MAP error
    assert classify("cmpp", "MA:0001") == Outcome("undelivered", "blacklisted")
    assert classify("cmpp", "MA:0022") == Outcome("undelivered", "rate_limited")
    assert classify("cmpp", "MA:0005") == Outcome("undelivered", "invalid_number")
    assert classify("cmpp", "MA:0099") == Outcome("undelivered", "carrier_refused")  # the MA: default
    assert classify("cmpp", "HD:0001") == Outcome("undelivered", "blacklisted")
    assert classify("cmpp", "CB:0053") == Outcome("undelivered", "invalid_number")
    assert classify("cmpp", "DB:0008") == Outcome("undelivered", "other")  # prefix not known
    # SMPP / SMGP do not read CMPP's codes: only their stat words
    assert classify("smpp", "MK:0001") == Outcome("undelivered", "other")


def test_every_documented_cmpp_code_classifies_as_its_row() -> None:
    for code, e in delivery.CMPP.items():
        prefixes, _, number = code.partition(":")
        if number.isdigit():
            for p in prefixes.split("/"):
                assert classify("cmpp", f"{p}:{number}") == e.outcome, code
        elif code.endswith("…"):
            assert classify("cmpp", code[:-1] + "9876") == e.outcome, code
        else:
            assert classify("cmpp", code) == e.outcome, code


def test_sgip_error_codes() -> None:
    assert classify("sgip", "DELIVRD", "") == Outcome("delivered", "")
    assert classify("sgip", "UNDELIV", "029") == Outcome("undelivered", "invalid_number")
    assert classify("sgip", "UNDELIV", "006") == Outcome("undelivered", "invalid_number")
    assert classify("sgip", "UNDELIV", "025") == Outcome("undelivered", "unreachable")
    assert classify("sgip", "UNDELIV", "021") == Outcome("undelivered", "unreachable")
    assert classify("sgip", "UNDELIV", "032") == Outcome("undelivered", "carrier_refused")
    assert classify("sgip", "UNDELIV", "011") == Outcome("undelivered", "rate_limited")
    assert classify("sgip", "UNDELIV", "099") == Outcome("undelivered", "other")
    assert classify("sgip", "UNDELIV", "") == Outcome("undelivered", "other")
    assert classify("sgip", "UNDELIV", "x") == Outcome("undelivered", "other")


def test_platform_codes() -> None:
    assert classify_platform("SUBMIT_REJECTED") == Outcome("failed", "carrier_refused")
    assert classify_platform("NO_ROUTE") == Outcome("failed", "platform_error")
    assert classify_platform("BLACKLISTED") == Outcome("rejected", "blacklisted")
    assert classify_platform("OPTED_OUT") == Outcome("rejected", "blacklisted")
    assert classify_platform("RATE_LIMITED") == Outcome("rejected", "rate_limited")
    assert classify_platform("RECEIPT_TIMEOUT") == Outcome("expired", "no_receipt")
    with pytest.raises(KeyError):
        classify_platform("NOT_FOUND")


def test_enroute_is_not_final() -> None:
    assert not delivery.is_final("ENROUTE") and not classify("smpp", "ENROUTE").final
    assert delivery.is_final("DELIVRD") and delivery.is_final("MK:0005") and delivery.is_final("X")


@pytest.mark.parametrize("protocol", sorted(delivery.FAMILIES))
def test_status_of_stat_is_what_every_table_says(protocol: str) -> None:
    """The services layer takes the status from the stat alone; it must agree with every table."""
    fam = delivery.family(protocol)
    stats: list[tuple[str, str]] = []
    if fam == "sgip":
        stats = [("DELIVRD", "")] + [("UNDELIV", f"{n:03d}") for n in range(0, 40)]
    else:
        for code in delivery.TABLES[fam]:
            if "/" in code:  # "MK/MI/MN/MB:0001": one row for several prefixes
                prefixes, number = code.split(":")
                stats += [(f"{p}:{number}", "") for p in prefixes.split("/")]
            else:
                stats.append((code.replace("…", "XYZ"), "001"))
    for stat, err in stats:
        assert classify(protocol, stat, err).status == status_of_stat(stat), (protocol, stat, err)


def test_normalize_err() -> None:
    for p in ("smpp", "smgp", "sgip"):
        assert normalize_err(p, "000") == "" and normalize_err(p, 0) == "" and normalize_err(p, "") == ""
        assert normalize_err(p, None) == "" and normalize_err(p, " 0 ") == ""
        assert normalize_err(p, 25) == "025" and normalize_err(p, "25") == "025" and normalize_err(p, "0025") == "025"
        assert normalize_err(p, "1234") == "1234"
        assert normalize_err(p, " ab:12 ") == "ab:12"
        assert normalize_err(p, "x" * 40) == "x" * 16
    assert normalize_err("cmpp", "013") == "" and normalize_err("cmpp3", 5) == ""
    with pytest.raises(ValueError):
        normalize_err("http", "1")


@given(st.one_of(st.integers(min_value=0, max_value=10**20), st.text(max_size=30)))
def test_normalize_err_is_stable(raw: int | str) -> None:
    for p in ("smpp", "sgip", "smgp"):
        once = normalize_err(p, raw)
        assert len(once) <= delivery.ERR_MAX
        assert normalize_err(p, once) == once  # the normal form is a fixed point


# --- through each protocol's simulator over TCP, into the database ----------------------------------------


class StoringSink:
    """The dispatcher's part: submits and receipts go through the real services into a real database."""

    def __init__(self, bill: Any) -> None:
        self.bill = bill
        self.n_receipts = 0
        self.n_submitted = 0
        self.errors: list[Any] = []

    def submitted(self, item: Submitted) -> None:
        self.bill.w(lambda tx: record_submits(tx, [item]))
        self.n_submitted += 1

    def failed(self, item: Any) -> None:
        self.errors.append(item)

    def abandoned(self, message_id: int) -> None:
        self.errors.append(message_id)

    def receipt(self, item: Receipt) -> asyncio.Future[None]:
        def job(tx: Tx) -> None:
            _finals, unmatched = apply_receipts(tx, [item])
            park_receipts(tx, unmatched)  # it overtook its submit's answer: matched later, as dispatchers do

        self.bill.w(job)
        self.n_receipts += 1
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


async def _until(cond: Callable[[], bool], timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0.01)


async def _smpp(outcomes: dict[str, float], sink: Any) -> tuple[Any, Any]:
    from qixin.gateway.simulators.smpp import SimulatorConfig, SmppSimulator
    from qixin.gateway.smpp_connector import SmppConnector

    sim = SmppSimulator(config=SimulatorConfig(outcomes=outcomes, receipt_delay=(0.0, 0.02)), seed=11)
    port = await sim.start()
    conn = SmppConnector("ch-smpp", "127.0.0.1", port, "qixin", "pw")
    await conn.start(sink)
    return sim, conn


async def _cmpp(outcomes: dict[str, float], sink: Any) -> tuple[Any, Any]:
    from qixin.gateway.cmpp_connector import CmppConnector
    from qixin.gateway.simulators.cmpp import CmppSimulator, SimulatorConfig

    cfg = SimulatorConfig(outcomes=outcomes, receipt_delay=(0.0, 0.02), accounts={"901234": "secret"})
    sim = CmppSimulator(config=cfg, seed=11)
    port = await sim.start()
    conn = CmppConnector("ch-cmpp", "127.0.0.1", port, "901234", "secret", service_id="MJS0019905", src_id="1065800")
    await conn.start(sink)
    return sim, conn


async def _smgp(outcomes: dict[str, float], sink: Any) -> tuple[Any, Any]:
    from qixin.gateway.simulators.smgp import SimulatorConfig, SmgpSimulator
    from qixin.gateway.smgp_connector import SmgpConnector

    sim = SmgpSimulator(config=SimulatorConfig(outcomes=outcomes, receipt_delay=(0.0, 0.02)), seed=11)
    port = await sim.start()
    conn = SmgpConnector("ch-smgp", "127.0.0.1", port, "ct000001", "pw", service_id="QXTZ", src_term_id="1069000188")
    await conn.start(sink)
    return sim, conn


async def _sgip(outcomes: dict[str, float], sink: Any) -> tuple[Any, Any]:
    from qixin.gateway.sgip_connector import SgipConnector
    from qixin.gateway.simulators.sgip import SgipSimulator, SgipSimulatorConfig

    sim = SgipSimulator(config=SgipSimulatorConfig(outcomes=outcomes, receipt_delay=(0.0, 0.02)), seed=11)
    port = await sim.start()
    conn = SgipConnector(
        "ch-sgip", "127.0.0.1", port, "sp1", "pw", node_id=3010012345, sp_number="1065500001", corp_id="12345",
        service_type="QXTZ",
    )  # fmt: skip
    await conn.start(sink)
    sim.register_sp("sp1", "127.0.0.1", conn.listen_port)
    return sim, conn


Starter = Callable[[dict[str, float], Any], Awaitable[tuple[Any, Any]]]
# protocol -> (start, the outcomes its simulator draws from, equally weighted)
CASES: dict[str, tuple[Starter, list[str]]] = {
    "smpp": (_smpp, ["DELIVRD", "UNDELIV", "EXPIRED", "REJECTD", "DELETED", "UNKNOWN"]),
    "smgp": (_smgp, ["DELIVRD", "UNDELIV", "EXPIRED", "REJECTD", "DELETED", "UNKNOWN"]),
    "cmpp": (_cmpp, ["DELIVRD", "UNDELIV", "EXPIRED", "REJECTD", "MK:0001", "MI:0006", "MA:0001", "MA:0022"]),
    "sgip": (_sgip, ["DELIVRD", "UNDELIV", "REJECTD", "EXPIRED", "UNKNOWN"]),
}
# what each drawn outcome must end as: (status, reason); SGIP's come back as DELIVRD / UNDELIV + ErrorCode
EXPECTED: dict[str, dict[str, tuple[str, str]]] = {
    "smpp": {
        "DELIVRD": ("delivered", ""),
        "UNDELIV": ("undelivered", "unreachable"),
        "EXPIRED": ("expired", "unreachable"),
        "REJECTD": ("undelivered", "carrier_refused"),
        "DELETED": ("undelivered", "carrier_refused"),
        "UNKNOWN": ("undelivered", "other"),
    },
    "cmpp": {
        "DELIVRD": ("delivered", ""),
        "UNDELIV": ("undelivered", "unreachable"),
        "EXPIRED": ("expired", "unreachable"),
        "REJECTD": ("undelivered", "carrier_refused"),
        "MK:0001": ("undelivered", "invalid_number"),
        "MI:0006": ("undelivered", "unreachable"),
        "MA:0001": ("undelivered", "blacklisted"),
        "MA:0022": ("undelivered", "rate_limited"),
    },
    # the simulator's ErrorCodes per outcome (simulators/sgip.REPORT_ERRORS) all fall in one group each
    "sgip": {
        "DELIVRD": ("delivered", ""),
        "UNDELIV": ("undelivered", "unreachable"),  # 25-28
        "REJECTD": ("undelivered", "invalid_number"),  # 29 unknown user, 6 illegal number
        "EXPIRED": ("undelivered", "unreachable"),  # 21 destination unreachable
        "UNKNOWN": ("undelivered", "carrier_refused"),  # 32 system failure
    },
}
EXPECTED["smgp"] = EXPECTED["smpp"]


@pytest.mark.parametrize("protocol", list(CASES))
async def test_receipts_of_each_kind_end_in_the_documented_status(protocol: str, db_url: str) -> None:
    from _billing import Bill

    from qixin.gateway.simulators.sgip import REPORT_ERRORS
    from qixin.services.dispatch import Outgoing

    start, outcomes = CASES[protocol]
    n = 12 * len(outcomes)
    bill = Bill(db_url)
    sim = conn = None
    try:
        key = await bill.account(balance_li=10_000_000)
        numbers = [f"138{i:08d}" for i in range(n)]
        answer = await bill.send(key, numbers, content="状态码测试")
        msgs = [(int(m["id"]), m["to"]) for m in answer["accepted"]]
        assert len(msgs) == n
        sink = StoringSink(bill)
        sim, conn = await start({o: 1.0 for o in outcomes}, sink)
        for mid, number in msgs:
            conn.submit(Outgoing(mid, number, "cmcc", "状态码测试", "notification", key.account_id))
        await _until(lambda: sink.n_receipts == n and sink.n_submitted == n)
        assert sink.errors == []
        while bill.w(lambda tx: retry_parked(tx, 1000, 0))[1]:
            pass
        rows = bill.r(lambda tx: tx.all("SELECT id, status, carrier_stat, carrier_err, receipts_pending FROM messages"))
    finally:
        if conn is not None:
            await conn.stop()
        if sim is not None:
            await sim.stop()
        bill.close()
    drawn = sim.stats.receipts_by_stat
    assert set(drawn) == set(outcomes), drawn  # every kind was sent (fixed seed)
    expected = EXPECTED[protocol]
    got_groups: dict[tuple[str, str], int] = {}
    for _mid, status, stat, err, pending in rows:
        assert pending == 0
        outcome = classify(protocol, stat, err or "")
        assert outcome.status == status, (stat, err, status)
        got_groups[(status, outcome.reason)] = got_groups.get((status, outcome.reason), 0) + 1
        # carrier_err: one form — "" when there is no error, else 3 digits (CMPP: always "")
        if protocol == "cmpp" or stat == "DELIVRD":
            assert err == "", (stat, err)
        else:
            assert len(err) == 3 and err.isdigit() and err != "000", (stat, err)
        if protocol == "sgip":
            assert stat in ("DELIVRD", "UNDELIV")
            if stat == "UNDELIV":
                drawn_as = [o for o, (_s, codes) in REPORT_ERRORS.items() if o != "DELIVRD" and int(err) in codes]
                assert drawn_as and all(expected[o] == (status, outcome.reason) for o in drawn_as), (err, drawn_as)
        else:
            assert stat in expected and expected[stat] == (status, outcome.reason), (stat, status, outcome)
    merged: dict[tuple[str, str], int] = {}
    for o in outcomes:
        merged[expected[o]] = merged.get(expected[o], 0) + drawn[o]
    assert got_groups == merged, (got_groups, merged)


LONG_CASES = [  # (first part's stat, second part's stat, the message's status)
    ("ACCEPTD", "UNDELIV", "undelivered"),
    ("DELIVRD", "REJECTD", "undelivered"),
    ("EXPIRED", "DELIVRD", "expired"),
    ("DELIVRD", "ACCEPTD", "delivered"),
]


async def test_a_long_message_takes_the_status_of_its_first_failed_part(db_url: str) -> None:
    from _billing import Bill

    from qixin.store.db import now_ms

    bill = Bill(db_url)
    try:
        key = await bill.account()
        answer = await bill.send(key, [f"1380013800{i}" for i in range(len(LONG_CASES))], content="长短信" * 40)
        ids_ = [int(m["id"]) for m in answer["accepted"]]
        assert len(ids_) == len(LONG_CASES) and all(m["parts"] == 2 for m in answer["accepted"])
        for mid, (first, second, status) in zip(ids_, LONG_CASES, strict=True):

            def job(tx: Tx, mid: int = mid, first: str = first, second: str = second) -> int:
                record_submits(tx, [Submitted(mid, "ch", [f"{mid}-1", f"{mid}-2"], now_ms())])
                done = apply_receipts(tx, [Receipt("ch", f"{mid}-1", first, "", now_ms())])[0]
                return done + apply_receipts(tx, [Receipt("ch", f"{mid}-2", second, "", now_ms())])[0]

            assert bill.w(job) == 1
            got = bill.r(lambda tx, mid=mid: tx.one("SELECT status, carrier_stat FROM messages WHERE id = ?", (mid,)))
            failed = [s for s in (first, second) if status_of_stat(s) != "delivered"]
            assert tuple(got) == (status, failed[0] if failed else first), (first, second)
    finally:
        bill.close()


class RecordingSink:
    def __init__(self) -> None:
        self.submits: list[Submitted] = []
        self.receipts: list[Receipt] = []

    def submitted(self, item: Submitted) -> None:
        self.submits.append(item)

    def failed(self, item: Any) -> None:
        raise AssertionError(item)

    def abandoned(self, message_id: int) -> None:
        raise AssertionError(message_id)

    def receipt(self, item: Receipt) -> None:
        self.receipts.append(item)


async def test_smpp_enroute_is_acknowledged_and_dropped() -> None:
    from qixin.services.dispatch import Outgoing

    sink = RecordingSink()
    sim, conn = await _smpp({"ENROUTE": 1.0, "DELIVRD": 1.0}, sink)
    try:
        for i in range(40):
            conn.submit(Outgoing(i, f"1380000{i:04d}", "cmcc", "hi", "notification", 1))
        await _until(lambda: sim.stats.receipts_pending == 0 and sim.stats.receipts_sent == 40)
        enroute = sim.stats.receipts_by_stat["ENROUTE"]
        assert 0 < enroute < 40
        assert len(sink.receipts) == 40 - enroute and {r.stat for r in sink.receipts} == {"DELIVRD"}
        assert {r.err for r in sink.receipts} == {""} and conn.stats["receipts"] == 40 - enroute
    finally:
        await conn.stop()
        await sim.stop()


if __name__ == "__main__":
    regenerate()
    print(f"regenerated {DOC.relative_to(ROOT)}", file=sys.stderr)
