"""Statistics rollups: kept in the transactions that change a message, equal to the message rows
(``qixin stats verify``), queried by dimension and day/hour; tenant isolation; rebuild."""

from __future__ import annotations

import httpx
from conftest import Running

from qixin.services import stats
from qixin.services.actor import Actor
from qixin.store import reads


async def _final_counts(running: Running, account_id: int) -> dict[str, int]:
    page = await running.platform.message_search.search(Actor.cli(), _f(account_id), limit=1000)
    out: dict[str, int] = {}
    for it in page["items"]:
        out[it["status"]] = out.get(it["status"], 0) + 1
    return out


def _f(account_id: int):  # type: ignore[no-untyped-def]
    from qixin.services.queries import MessageFilter

    return MessageFilter(account_id=account_id)


async def test_rollups_follow_every_status_change_and_equal_the_rows(running: Running) -> None:
    a, b = running.account(), running.account(name="乙")
    numbers = [f"1390000{i:04d}" for i in range(30)] + ["13100001111", "13300002222"]  # cmcc, cucc, ctcc
    assert (await a.send(to=numbers, content="您的订单已发货")).status_code == 200
    assert (await b.send(to=["13700137000"], content="您的订单已发货")).status_code == 200
    await running.wait_final(33)
    check = await running.platform.db.read(stats.verify)
    assert check["ok"], check["mismatches"]

    by_carrier = (await a.get("/v1/statistics?group_by=carrier&bucket=none")).json()
    groups = {g["carrier"]: g for g in by_carrier["groups"]}
    assert sum(g["messages"] for g in groups.values()) == 32  # b's message is not a's
    assert groups["cmcc"]["messages"] == 30 and set(groups) == {"cmcc", "cucc", "ctcc"}
    counts = await _final_counts(running, a.account_id)
    total_by_status: dict[str, int] = {}
    for g in groups.values():
        for s, n in g["by_status"].items():
            total_by_status[s] = total_by_status.get(s, 0) + n
    assert total_by_status == counts
    delivered = counts.get("delivered", 0)
    done = sum(counts.get(s, 0) for s in ("delivered", "undelivered", "failed", "expired"))
    rate = sum(g["by_status"].get("delivered", 0) for g in groups.values()) / done
    assert abs(rate - delivered / done) < 1e-9
    by_day = (await a.get("/v1/statistics")).json()["groups"]
    assert len(by_day) == 1 and by_day[0]["messages"] == 32 and by_day[0]["fee_li"] == 32 * 35

    admin = await running.platform.staff_users.create(Actor.cli(), "stat-admin", "admin")
    async with httpx.AsyncClient(base_url=running.base) as http:
        r = await http.get("/admin/statistics?group_by=account_id&bucket=none",
                           headers={"Authorization": f"Bearer {admin['token']}"})  # fmt: skip
    per_account = {g["account_id"]: g["messages"] for g in r.json()["groups"]}
    assert per_account == {a.account_id: 32, b.account_id: 1}


async def test_rebuild_recomputes_the_same_rollups(running: Running) -> None:
    api = running.account()
    assert (await api.send(to=[f"1391000{i:04d}" for i in range(10)], content="您的订单已发货")).status_code == 200
    await running.wait_final(10)
    before = (await api.get("/v1/statistics?group_by=carrier,status,reason&bucket=hour")).json()["groups"]
    n = await running.platform.db.write(stats.rebuild)
    assert n == await running.platform.db.read(reads.count_final)
    after = (await api.get("/v1/statistics?group_by=carrier,status,reason&bucket=hour")).json()["groups"]
    assert after == before
    assert (await running.platform.db.read(stats.verify))["ok"]


async def test_bad_statistics_queries_are_refused(running: Running) -> None:
    api = running.account()
    assert (await api.get("/v1/statistics?group_by=password")).json()["code"] == "INVALID_REQUEST"
    assert (await api.get("/v1/statistics?since=2020-01-01&until=2026-01-01")).json()["code"] == "INVALID_REQUEST"


async def test_the_lean_rollup_answers_as_the_full_one_and_verify_watches_it(running: Running) -> None:
    """A query whose groups and filters are all lean dimensions reads stats_hourly_core; the same query
    grouped also by province (which only stats_hourly holds) and summed over it gives the same groups; a
    lean rollup that drifts from the rows fails ``verify``."""
    a, b = running.account(), running.account(name="乙")
    numbers = [f"1390200{i:04d}" for i in range(20)] + ["13100002111", "13300003222", "18900004333"]
    assert (await a.send(to=numbers, content="您的订单已发货")).status_code == 200
    assert (await b.send(to=["13700137001"], content="您的订单已发货")).status_code == 200
    await running.wait_final(24)
    assert (await running.platform.db.read(stats.verify))["ok"]

    def strip(groups: list[dict]) -> dict:  # type: ignore[type-arg]
        out: dict[tuple[str, str, str], list[int]] = {}
        for g in groups:
            v = out.setdefault((g["hour"], g["carrier"], g["type"]), [0, 0, 0])
            v[0] += g["messages"]
            v[1] += g["parts"]
            v[2] += g["fee_li"]
        return out

    lean = (await a.get("/v1/statistics?group_by=carrier,type&bucket=hour")).json()["groups"]
    full = (await a.get("/v1/statistics?group_by=carrier,type,province&bucket=hour")).json()["groups"]
    assert strip(lean) == strip(full) and sum(g["messages"] for g in lean) == 23
    assert {g["carrier"] for g in lean} == {"cmcc", "cucc", "ctcc"}
    rows = await running.platform.db.read(
        lambda tx: tx.all("SELECT account_id, SUM(messages) FROM stats_hourly_core GROUP BY account_id")
    )
    assert {int(r[0]): int(r[1]) for r in rows} == {a.account_id: 23, b.account_id: 1}

    await running.platform.db.write(
        lambda tx: tx.execute(
            # the one row holding b's message (its other buckets, left by the status moves, hold 0)
            "UPDATE stats_hourly_core SET messages = messages + 1 WHERE account_id = ? AND messages > 0",
            (b.account_id,),
        )
    )
    check = await running.platform.db.read(stats.verify)
    assert not check["ok"] and check["mismatches"][0]["rollup_core"][0] == 2
    await running.platform.db.write(stats.rebuild)
    assert (await running.platform.db.read(stats.verify))["ok"]
