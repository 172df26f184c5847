"""What the customer ports share: the refusal-code tables' shape and the pump that delivers what the
customers are owed (receipts, MO) to their bound receiving sessions.

Rules:
- A port (``CustomerPort``) is a protocol server plus three translations: a ``PortDesk`` refusal code to
  the protocol's status, an ``Event`` to the protocol's delivery PDU, and the delivery's answer to
  "acknowledged or not".
- The pump (``Pump``) runs every ``poll`` seconds: it turns receipts of final messages ``ready``
  (``PortDesk.finalise``), claims the ready events of the connections and accounts that have a
  receiving session bound in this process, pushes each through a session's window and settles them
  (acknowledged: deleted; anything else: due again). Nothing is lost when no session is bound: the
  rows wait in the database for the next bind, in whichever process it lands.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

from qixin.protocols.errors import RequestTimeout, SessionClosed
from qixin.protocols.server import ProtocolServer
from qixin.protocols.session import Session
from qixin.services.connections import Connection
from qixin.services.ports import Event, PortDesk
from qixin.tasks import cancel

__all__ = ["CONN", "CustomerPort", "Pump"]

log = logging.getLogger("qixin.ports")

CONN = "connection"  # session.info key of the bound Connection


class CustomerPort:
    """A customer-facing protocol server (see the module docstring)."""

    protocol: str
    server: ProtocolServer

    def __init__(self, desk: PortDesk) -> None:
        self.desk = desk

    async def start(self) -> int:
        return await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()

    @property
    def port(self) -> int:
        return self.server.port

    def receiving(self) -> list[Session]:
        """Bound sessions that may be offered deliveries."""
        return [s for s in self.server._bound_sessions(None, receiving=True) if CONN in s.info]

    def delivery(self, session: Session, event: Event) -> Any:
        """The protocol's PDU carrying ``event`` to ``session`` (or a list of them: the parts of a long MO,
        acknowledged only when every part is)."""
        raise NotImplementedError

    def acknowledged(self, resp: Any) -> bool:
        raise NotImplementedError

    def _unbound(self, session: Session) -> None:
        conn: Connection | None = session.info.get(CONN)
        if conn is not None:
            self.desk.logout(conn)


class Pump:
    """Delivers ready receipts and MO to bound receiving sessions (see the module docstring)."""

    def __init__(self, desk: PortDesk, ports: list[CustomerPort], poll: float = 0.05, timeout: float = 10.0) -> None:
        self.desk = desk
        self.ports = ports
        self.poll = poll
        self.timeout = timeout
        self._task: asyncio.Task[None] | None = None
        self._rr = itertools.count()
        self.stats = {"delivered": 0, "failed": 0}

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="ports-pump")

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                n = await self.run_once()
            except Exception:
                log.exception("ports: delivery round failed")
                n = 0
            if n == 0:
                await asyncio.sleep(self.poll)

    async def run_once(self) -> int:
        """One round; returns how many events it delivered or tried to."""
        await self.desk.finalise()
        by_conn: dict[int, list[tuple[CustomerPort, Session]]] = {}
        by_account: dict[int, list[tuple[CustomerPort, Session]]] = {}
        for port in self.ports:
            for s in port.receiving():
                conn: Connection = s.info[CONN]
                by_conn.setdefault(conn.id, []).append((port, s))
                by_account.setdefault(conn.account_id, []).append((port, s))
        if not by_account:
            return 0
        events = await self.desk.claim(sorted(by_conn), sorted(by_account))
        if not events:
            return 0
        jobs = []
        for e in events:
            targets = by_conn.get(e.connection_id or -1) if e.kind == "receipt" else by_account.get(e.account_id)
            if not targets:
                jobs.append(self._none(e))
                continue
            port, session = targets[next(self._rr) % len(targets)]
            jobs.append(self._deliver(port, session, e))
        results = await asyncio.gather(*jobs)
        ok = [e.id for e, r in zip(events, results, strict=True) if r]
        bad = [e.id for e, r in zip(events, results, strict=True) if not r]
        self.stats["delivered"] += len(ok)
        self.stats["failed"] += len(bad)
        await self.desk.settle(ok, bad)
        return len(events)

    async def _none(self, event: Event) -> bool:
        return False

    async def _deliver(self, port: CustomerPort, session: Session, event: Event) -> bool:
        try:
            pdus = port.delivery(session, event)
            for pdu in pdus if isinstance(pdus, list) else [pdus]:
                fut = await asyncio.wait_for(port.server.deliver(session, pdu), self.timeout)
                if not port.acknowledged(await fut):
                    return False
        except (SessionClosed, RequestTimeout, TimeoutError, ConnectionError):
            return False
        except Exception:
            log.exception("ports: delivery to %s failed", session.name)
            return False
        return True
