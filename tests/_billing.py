"""Helpers for the billing tests: an in-process accept path (no HTTP) on a fresh database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from qixin.ids import ids
from qixin.services import billing
from qixin.services.accept import AcceptService
from qixin.services.accounts import ApiKey, Directory, create_account
from qixin.services.pricing import PlanPricer
from qixin.services.receipts import Receipt, Submitted, apply_receipts, record_submits
from qixin.store.db import Database, Tx, now_ms
from qixin.store.migrate import migrate

T = TypeVar("T")


class Bill:
    def __init__(self, url: str, writers: int | None = None) -> None:
        migrate(url)
        self.db = Database(url, writers=writers)
        self.db.start()
        self.directory = Directory(self.db, ttl=0)
        self.pricer = PlanPricer(self.db, ttl=0)
        self.accept = AcceptService(self.db, self.directory, pricer=self.pricer)

    def close(self) -> None:
        self.db.close()

    def w(self, fn: Callable[[Tx], T]) -> T:
        return self.db.write_sync(fn)

    def r(self, fn: Callable[[Tx], T]) -> T:
        return self.db.read_sync(fn)

    def one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self.r(lambda tx: tx.one(sql, params))

    async def account(self, balance_li: int = 100_000, price_li: int = 35) -> ApiKey:
        out = self.w(lambda tx: create_account(tx, "计费测试", "企信", balance_li, price_li))
        key = await self.directory.key(out["app_key"])
        assert key is not None
        return key

    async def send(self, key: ApiKey, to: list[str] | str, content: str = "您的验证码是 123456", **kw: Any) -> Any:
        body = {"to": to, "content": content, "signature": "企信", **kw}
        return await self.accept.accept(key, body, orjson.dumps(body))

    def balance(self, account_id: int) -> int:
        return int(self.one("SELECT balance_li FROM accounts WHERE id = ?", (account_id,))[0])

    def remaining(self, package_id: int) -> int:
        return int(self.one("SELECT remaining_parts FROM packages WHERE id = ?", (package_id,))[0])

    def verify(self) -> dict[str, Any]:
        return self.r(billing.verify)

    def receipt(self, message_id: int, stat: str, err: str = "000", submit: bool = True) -> int:
        """Mark a message submitted (once) and apply a receipt for it; returns messages made final."""
        cid = f"c{message_id}"

        def job(tx: Tx) -> int:
            if submit:
                record_submits(tx, [Submitted(message_id, "test-ch", [cid], now_ms())])
            return apply_receipts(tx, [Receipt("test-ch", cid, stat, err, now_ms())])[0]

        return self.w(job)


def numbers(n: int, start: int = 0) -> list[str]:
    return [f"138{i:08d}" for i in range(start, start + n)]


def new_id() -> int:
    return ids.take(1)[0]
