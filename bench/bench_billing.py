"""What the billing path adds to accepting a 100,000-number batch (in process, SQLite).

Two accounts on one fresh database, accepted alternately with ``AcceptService.accept`` (prepare + the
accept transaction, committed):

- flat: the account's own price (``FlatPricer``), no packages, no billing settings;
- billing: ``PlanPricer`` with price plans per carrier and type (some in the future), two packages that
  pay for part of every batch (oldest expiry first, ``package_uses`` and package-ledger rows, message
  fees rewritten), and a balance-low threshold armed.

    .venv/bin/python bench/bench_billing.py [-n 100000] [--rounds 5]

Target: billing adds <= 10% to the flat accept time (median of the rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import orjson

from qixin.services import billing, pricing
from qixin.services.accept import AcceptService
from qixin.services.accounts import Directory, create_account
from qixin.services.pricing import PlanPricer
from qixin.store.db import Database, now_ms
from qixin.store.migrate import migrate

CONTENT = "尊敬的客户，您本月账单已出，请登录 App 查看。"
PREFIXES = ("135", "139", "186", "133", "177", "150")  # several carriers, so several prices


def numbers(n: int, seed: int) -> list[str]:
    per = -(-n // len(PREFIXES))
    out = [f"{p}{seed:02d}{i:06d}" for p in PREFIXES for i in range(per)]
    return out[:n]


async def main(n: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite:///{Path(d) / 'bench.db'}"
        migrate(url)
        db = Database(url)
        db.start()
        directory = Directory(db, ttl=3600)
        flat_svc = AcceptService(db, directory, max_numbers=n)
        plan_svc = AcceptService(db, directory, max_numbers=n, pricer=PlanPricer(db, ttl=3600))
        big = 10**12
        flat = db.write_sync(lambda tx: create_account(tx, "flat", "企信", big, 35))
        paid = db.write_sync(lambda tx: create_account(tx, "billing", "企信", big, 35))
        acct = paid["account_id"]
        now = now_ms()
        for carrier, t, li in (("", "", 38), ("cmcc", "", 36), ("cucc", "notification", 33), ("", "marketing", 50)):
            db.write_sync(lambda tx, c=carrier, t=t, li=li: pricing.create_plan(
                tx, acct, "sms", li, carrier=c, msg_type=t, effective_at=now))  # fmt: skip
        db.write_sync(lambda tx: pricing.create_plan(tx, acct, "sms", 40, effective_at=now + 86_400_000 * 30))
        half = n * 3 // 10  # before each round, two packages that pay for 60% of the batch
        db.write_sync(lambda tx: billing.update_settings(tx, acct, {"low_balance_li": 1000}))
        fk = await directory.key(flat["app_key"])
        pk = await directory.key(paid["app_key"])
        assert fk is not None and pk is not None
        times: dict[str, list[float]] = {"flat": [], "billing": []}
        in_charge: dict[str, list[float]] = {"flat": [], "billing": []}
        charge_batch = billing.charge_batch
        spent = [0.0]

        def timed_charge(tx, p):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            try:
                return charge_batch(tx, p)
            finally:
                spent[0] = time.perf_counter() - t

        billing.charge_batch = timed_charge  # accept's persist calls billing.charge_batch
        for r in range(rounds + 1):  # round 0 warms up
            db.write_sync(lambda tx, r=r: billing.grant_package(tx, acct, "term", half, f"a{r}", months=6))
            db.write_sync(lambda tx, r=r: billing.grant_package(tx, acct, "year", half, f"b{r}"))
            for name, svc, key in (("flat", flat_svc, fk), ("billing", plan_svc, pk)):
                body = {"to": numbers(n, r * 2 + (name == "billing")), "content": CONTENT, "signature": "企信"}
                raw = orjson.dumps(body)
                t = time.perf_counter()
                resp = await svc.accept(key, body, raw)
                elapsed = time.perf_counter() - t
                assert resp["accepted_count"] == n, resp["accepted_count"]
                extra = f", package parts {resp['package_parts']}" if name == "billing" else ""
                print(f"round {r} {name:8s} {elapsed * 1000:7.0f} ms  fee {resp['total_fee']} 元{extra}")
                if r:
                    times[name].append(elapsed)
                    in_charge[name].append(spent[0])
        billing.charge_batch = charge_batch
        assert db.read_sync(billing.verify)["ok"]
        db.close()
    f, b = statistics.median(times["flat"]), statistics.median(times["billing"])
    cf, cb = statistics.median(in_charge["flat"]), statistics.median(in_charge["billing"])
    print(f"\ncharge_batch inside the accept transaction: flat {cf * 1000:.1f} ms, billing {cb * 1000:.1f} ms"
          f" (the difference is {(cb - cf) / f * 100:.1f}% of the flat accept)")  # fmt: skip
    print(f"median accept of {n:,} numbers: flat {f * 1000:.0f} ms, billing {b * 1000:.0f} ms"
          f" => billing adds {(b / f - 1) * 100:+.1f}% (target <= 10%)")  # fmt: skip


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    asyncio.run(main(a.n, a.rounds))
