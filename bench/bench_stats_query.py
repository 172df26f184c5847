"""The statistics query over the rollups of 10,000,000 stored messages: ``GET /v1/statistics`` for one
account, the last 30 days, grouped by day and carrier (issue 10: ≤ 100 ms), through the use case
(``services/stats.Statistics.query``, what the route calls), on SQLite and PostgreSQL.

Usage (from the repository root):

    .venv/bin/python bench/bench_stats_query.py [--messages 10000000] [--db sqlite|postgresql] [--pg URL]
        [--repeat 20]

The rollups are generated in SQL as the platform stores them: N messages, each with its dimensions (a
deterministic spread, below), summed per bucket (hour of acceptance × account × signature × template ×
type × carrier × province × channel × status × reason) with the platform's own upsert
(``ON CONFLICT … DO UPDATE SET messages = messages + excluded.messages``), in chunks of 1,000,000
messages. No message rows: a statistics query never reads them. Then ``store.stats.refresh_core``
fills the lean rollup from them the way the migration does (the platform keeps it in the same
transactions as ``stats_hourly``).

The spread: 60 days of traffic (the 30-day query sees half), 50 accounts, account 1 (the one queried)
sending 40 % of it (about 67,000 messages a day); two signatures, a free text and five templates
(verification, notification, marketing), four carriers (55 / 25 / 18 / 2 %), 31 provinces, one channel
per carrier (3 % failed over to a backup channel), 93 % delivered, the rest undelivered (空号, 关机/停机,
other), failed (carrier refused, platform error), rejected (blacklisted), expired (no receipt) or still
submitted; one message in ten of two parts. Each query's answer is checked against the total messages
the generator gave the account in that range.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import PostgresDb, machine

from qixin.services.actor import Actor
from qixin.services.stats import DAY_MS, HOUR_MS, Statistics
from qixin.store import stats as stats_store
from qixin.store.db import Database, Tx, now_ms
from qixin.store.migrate import migrate

PROVINCES = [
    "北京", "天津", "河北", "山西", "内蒙古", "辽宁", "吉林", "黑龙江", "上海", "江苏", "浙江",
    "安徽", "福建", "江西", "山东", "河南", "湖北", "湖南", "广东", "广西", "海南", "重庆",
    "四川", "贵州", "云南", "西藏", "陕西", "甘肃", "青海", "宁夏", "新疆",
]  # fmt: skip
DAYS = 60
CHUNK = 1_000_000


def _dims(series: str, n: int, start: int) -> str:
    """One row per generated message g: its bucket's dimensions, parts and fee."""
    span = DAYS * DAY_MS
    return (
        "SELECT ((" + str(start) + f" + g * {span} / {n}) / {HOUR_MS}) * {HOUR_MS} AS hour,"
        " CASE WHEN g % 10 < 4 THEN 1 ELSE 2 + (g / 10) % 49 END AS account_id,"
        " CASE WHEN (g / 7) % 3 = 0 THEN '企信通知' ELSE '企信' END AS signature,"
        " (g / 3) % 6 AS t, (g * 13) % 100 AS c, (g * 7 + g / 100) % 31 AS p, (g * 31) % 100 AS f,"
        " (g * 37) % 1000 AS s, CASE WHEN g % 10 = 5 THEN 2 ELSE 1 END AS parts"
        f" FROM {series}"
    )


def _bucket_sql(n: int, start: int, lo: int, hi: int, is_pg: bool) -> str:
    if is_pg:
        series = f"generate_series({lo}::bigint, {hi - 1}) AS s(g)"
        head = ""
    else:
        head = f"WITH RECURSIVE s(g) AS (SELECT {lo} UNION ALL SELECT g + 1 FROM s WHERE g < {hi - 1}) "
        series = "s"
    carrier = "CASE WHEN c < 55 THEN 'cmcc' WHEN c < 80 THEN 'cucc' WHEN c < 98 THEN 'ctcc' ELSE 'cbn' END"
    channel = (
        "CASE WHEN f < 3 THEN 'backup-smpp' WHEN c < 55 THEN 'sim-cmpp' WHEN c < 80 THEN 'sim-sgip'"
        " WHEN c < 98 THEN 'sim-smgp' ELSE 'sim-smpp' END"
    )
    status = (
        "CASE WHEN s < 930 THEN 'delivered' WHEN s < 970 THEN 'undelivered' WHEN s < 978 THEN 'failed'"
        " WHEN s < 981 THEN 'rejected' WHEN s < 995 THEN 'expired' ELSE 'submitted' END"
    )
    reason = (
        "CASE WHEN s < 930 THEN '' WHEN s < 950 THEN 'invalid_number' WHEN s < 965 THEN 'unreachable'"
        " WHEN s < 970 THEN 'other' WHEN s < 975 THEN 'carrier_refused' WHEN s < 978 THEN 'platform_error'"
        " WHEN s < 981 THEN 'blacklisted' WHEN s < 995 THEN 'no_receipt' ELSE '' END"
    )
    tpl = "CASE WHEN t = 0 THEN 0 ELSE account_id * 10 + t END"
    mtype = "CASE WHEN t = 0 THEN 'marketing' WHEN t <= 2 THEN 'verification' ELSE 'notification' END"
    dims = ", ".join(
        ["hour", "account_id", "signature", tpl, mtype, carrier, "pr.name", channel, status, reason]
    )  # in stats_store.DIMS order
    return (
        f"{head}INSERT INTO stats_hourly ({', '.join(stats_store.DIMS)}, messages, parts, fee_li)"
        f" SELECT {dims}, COUNT(*), SUM(parts), SUM(parts) * 35"
        f" FROM ({_dims(series, n, start)}) m JOIN bench_provinces pr ON pr.i = m.p"
        f" WHERE true GROUP BY {dims}"
        f" ON CONFLICT ({', '.join(stats_store.DIMS)}) DO UPDATE SET messages = stats_hourly.messages"
        " + excluded.messages, parts = stats_hourly.parts + excluded.parts, fee_li = stats_hourly.fee_li"
        " + excluded.fee_li"
    )


def generate(db: Database, n: int, start: int) -> dict[str, float]:
    t0 = time.perf_counter()

    def provinces(tx: Tx) -> None:
        tx.execute("CREATE TABLE bench_provinces (i INTEGER PRIMARY KEY, name VARCHAR(16) NOT NULL)")
        tx.executemany("INSERT INTO bench_provinces (i, name) VALUES (?, ?)", list(enumerate(PROVINCES)))

    db.write_sync(provinces)
    for lo in range(0, n, CHUNK):
        hi = min(n, lo + CHUNK)
        db.write_sync(lambda tx, lo=lo, hi=hi: tx.execute(_bucket_sql(n, start, lo, hi, db.is_pg)))  # type: ignore[misc]
        print(f"  {hi:,} messages rolled up ({time.perf_counter() - t0:.0f} s)", flush=True)
    t1 = time.perf_counter()
    if hasattr(stats_store, "refresh_core"):  # absent before the lean rollup (a run against an older tree)
        db.write_sync(lambda tx: stats_store.refresh_core(tx, 0))
    t2 = time.perf_counter()
    db.write_sync(lambda tx: tx.execute("ANALYZE"))
    return {"rollup_s": round(t1 - t0, 1), "core_s": round(t2 - t1, 1)}


def _expected(n: int, start: int, since: int, until: int) -> int:
    """Messages of account 1 accepted in [since, until) by the generator's own arithmetic."""
    first, last = _first_g(n, start, since), _first_g(n, start, until)  # g -> hour is monotonic
    return sum(1 for g in range(first, last) if g % 10 < 4)


def _first_g(n: int, start: int, t: int) -> int:
    """The first g whose hour is ≥ t (binary search over the generator's monotonic hour)."""
    span = DAYS * DAY_MS
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if (start + mid * span // n) // HOUR_MS * HOUR_MS >= t:
            hi = mid
        else:
            lo = mid + 1
    return lo


async def measure(url: str, n: int, repeat: int) -> dict[str, object]:
    migrate(url)
    db = Database(url)
    db.start()
    now = now_ms()
    start = now - DAYS * DAY_MS
    gen = generate(db, n, start)
    rows = db.read_sync(lambda tx: tx.one("SELECT COUNT(*), SUM(messages) FROM stats_hourly"))
    core_table = getattr(stats_store, "CORE_TABLE", None)
    core = db.read_sync(lambda tx: tx.one(f"SELECT COUNT(*) FROM {core_table}"))[0] if core_table else 0
    acct = db.read_sync(
        lambda tx: tx.one("SELECT COUNT(*) FROM stats_hourly WHERE account_id = 1 AND hour >= ?", (now - 31 * DAY_MS,))
    )[0]
    assert int(rows[1]) == n, rows
    stats = Statistics(db)
    actor = Actor.customer(1, "bench")
    walls, cpus = [], []
    answer: dict[str, object] = {}
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.thread_time()
        answer = await stats.query(actor, group_by=["carrier"], bucket="day", until=now // 1000)
        walls.append((time.perf_counter() - t0) * 1000)
        cpus.append((time.thread_time() - c0) * 1000)
    groups = answer["groups"]
    assert isinstance(groups, list)
    got = sum(g["messages"] for g in groups)
    since, until = int(answer["since"]), int(answer["until"])  # type: ignore[call-overload]
    want = _expected(n, start, since // HOUR_MS * HOUR_MS, until)
    db.close()
    assert got == want, (got, want)
    return {
        "messages": n,
        **gen,
        "stats_hourly_rows": int(rows[0]),
        "core_rows": int(core),
        "account_1_hourly_rows_31d": int(acct),
        "groups": len(groups),
        "answer_messages": got,
        "query_ms_median": round(statistics.median(walls), 1),
        "query_ms_min": round(min(walls), 1),
        "query_ms_max": round(max(walls), 1),
        "event_loop_thread_cpu_ms_median": round(statistics.median(cpus), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--messages", type=int, default=10_000_000)
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    n = min(args.messages, 20_000_000)
    print(f"# bench_stats_query: {n:,} messages, {args.db}; {machine()}", flush=True)
    with tempfile.TemporaryDirectory() as d:
        if args.db == "sqlite":
            print(asyncio.run(measure(f"sqlite:///{d}/qixin.db", n, args.repeat)))
        else:
            with PostgresDb(args.pg) as pg:
                print(asyncio.run(measure(pg.url, n, args.repeat)))


if __name__ == "__main__":
    main()
