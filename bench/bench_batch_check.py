"""Compliance screening of one 100,000-number batch: all checks on vs off, and the content checked ONCE.

Runs ``ComplianceService.screen`` (the screener the accept path calls) on a real database holding a
100,000-number blacklist and a 20,000-number opt-out list, for a marketing batch of 100,000 random
mobile numbers with one content:

- ``off``: ``NoScreening`` (what accept costs without compliance);
- ``on (memory)``: every check: content, audience, window, international, number runs, blacklist and
  opt-outs (one query), frequency limits (3 counters per number, in-memory ``limits`` storage);
- ``on (redis)``: the same with the counters in Redis (``--redis``, default redis://127.0.0.1:6379/0).

It prints how many times the content checker ran per batch (1) and the time per batch.

    .venv/bin/python bench/bench_batch_check.py [--numbers 100000] [--rounds 3] [--pg URL] [--no-redis]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qixin.services.accounts import ApiKey, create_account
from qixin.services.compliance import store
from qixin.services.compliance.service import ComplianceService
from qixin.services.screening import NoScreening, ScreenRequest
from qixin.settings import ComplianceSettings
from qixin.store.db import Database
from qixin.store.migrate import migrate

CONTENT = "【企信】会员日全场八折，详情见门店公告，回T退订"


def numbers(rng: random.Random, n: int) -> list[str]:
    out: set[str] = set()
    while len(out) < n:
        out.add(str(13_000_000_000 + rng.randrange(7 * 10**9)))
    return list(out)


async def run(args: argparse.Namespace) -> None:
    rng = random.Random(7)
    url = args.pg or f"sqlite:///{Path(tempfile.mkdtemp(prefix='qixin-bench-')) / 'c.db'}"
    migrate(url)
    db = Database(url)
    db.start()
    acct = db.write_sync(lambda tx: create_account(tx, "压测", "企信", 0, 35))
    key = ApiKey(0, acct["account_id"], acct["app_key"], "", None, (), "active", 35, True)
    black = numbers(rng, 100_000)
    db.write_sync(lambda tx: store.add_blacklist(tx, black, "staff"))
    opted = numbers(rng, 20_000)
    db.write_sync(lambda tx: store.add_optouts(tx, acct["account_id"], opted, "import"))
    batch = numbers(rng, args.numbers - 2000) + black[:1000] + opted[:1000]  # 1% of it blocked
    carriers = [(n, "cmcc") for n in batch]
    print(f"database: {'PostgreSQL' if db.is_pg else 'SQLite'}; blacklist 100,000, opt-outs 20,000")
    print(f"batch: {len(batch):,} numbers, one marketing content; {args.rounds} rounds each (median)")

    def request() -> ScreenRequest:
        return ScreenRequest(key, "marketing", CONTENT, "企信", None, carriers, None, {"audience": "会员"})

    async def timed(name: str, screener: Any) -> None:
        times = []
        refused = 0
        for _ in range(args.rounds):
            t = time.perf_counter()
            result = await screener.screen(request())
            times.append(time.perf_counter() - t)
            refused = len(result.rejected)
            if getattr(result, "release", None):
                await result.release()  # as accept does when a batch is not committed: rounds stay equal
        calls = getattr(screener, "content_calls", None)
        per_batch = f"; content checked {calls // args.rounds}× per batch" if calls is not None else ""
        med = statistics.median(times)
        rate = f"{len(batch) / med:>10,.0f} numbers/s" if med > 0.001 else f"{'—':>10}"
        print(f"{name:<14} {med * 1000:8.1f} ms/batch  {rate}  refused {refused:,}{per_batch}")

    await timed("off", NoScreening())
    cfg = ComplianceSettings(sending_windows=False)  # the window does not depend on the batch size
    for label, redis_url in (("on (memory)", ""), ("on (redis)", "" if args.no_redis else args.redis)):
        if label == "on (redis)" and not redis_url:
            continue
        svc = ComplianceService(db, cfg.__class__(**{**cfg.__dict__, "limits_prefix": f"bench-{secrets.token_hex(3)}"}),
                                redis_url=redis_url)  # fmt: skip
        await svc.start()
        counting = _CountingChecker(svc)
        await timed(label, counting)
        svc.gate.clear()
    db.close()


class _CountingChecker:
    """Wraps the service so the bench can count content checks per batch."""

    def __init__(self, svc: ComplianceService) -> None:
        self.svc = svc
        self.content_calls = 0
        inner = svc.checker
        outer = self

        class Proxy:
            lexicon = inner.lexicon

            def check_content(self, *a: Any, **kw: Any) -> Any:
                outer.content_calls += 1
                return inner.check_content(*a, **kw)

        svc.checker = Proxy()  # type: ignore[assignment]

    async def screen(self, req: ScreenRequest) -> Any:
        return await self.svc.screen(req)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--numbers", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pg", default="", help="PostgreSQL URL (default: a temporary SQLite database)")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--no-redis", action="store_true")
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
