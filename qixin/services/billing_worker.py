"""The billing housekeeping worker: periodic expiries (packages, balances), dispute windows, monthly
statements and notice delivery. It only schedules use cases of billing, statements and notify; every
step is idempotent, so several processes may run it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from qixin.services import billing, notify, statements
from qixin.store.db import Database, now_ms

log = logging.getLogger("qixin.billing")


class BillingWorker:
    def __init__(
        self,
        db: Database,
        smtp: notify.Smtp,
        interval: float = 30.0,
        holidays: frozenset[str] = frozenset(),
        auto_statements: bool = True,
    ) -> None:
        self.db = db
        self.smtp = smtp
        self.interval = interval
        self.holidays = holidays
        self.auto_statements = auto_statements
        self.notifier = notify.Notifier(db, smtp)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="qixin-billing")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await notify.cancel_quietly(task)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("billing housekeeping failed; will retry")
            await asyncio.sleep(self.interval)

    async def run_once(self, now: int | None = None) -> dict[str, Any]:
        at = now if now is not None else now_ms()
        expired = await self.db.write(lambda tx: billing.expire_due(tx, at))
        closed = await self.db.write(lambda tx: statements.close_windows(tx, at))
        issued: list[int] = []
        if self.auto_statements:
            issued = await self.db.write(lambda tx: statements.issue_due(tx, at, self.holidays))
            if self.smtp.host:
                for sid in issued:
                    await statements.email_statement(self.db, self.smtp, sid)
        sent = await self.notifier.deliver_once()
        return {"expired": expired, "confirmed": closed, "statements": issued, "notices": sent}
