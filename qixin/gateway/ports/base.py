"""What the customer ports share: the refusal-code tables' shape and the pump that delivers what the
customers are owed (receipts, MO) to their bound receiving sessions.

Rules:
- A port (``CustomerPort``) is a protocol server plus three translations: a ``PortDesk`` refusal code to
  the protocol's status, an ``Event`` to the protocol's delivery PDU, and the delivery's answer to
  "acknowledged or not".
- The pump (``Pump``) runs every ``poll`` seconds: it claims the ready events of the connections and
  accounts that have a receiving session bound in this process, pushes each through a session's window
  and settles them (acknowledged: deleted; anything else: due again). Receipts become ready in the
  transaction that makes their message final (services/receipts.py); every ``finalise_every`` seconds
  (and at its first round) the pump also readies any receipt whose message is final and that still
  waits (``PortDesk.finalise``, a scan of the waiting rows: a safety net, and what drops failures-only
  receipts of delivered messages). Nothing is lost when no session is bound: the rows wait in the
  database for the next bind, in whichever process it lands.
- What every port does the same way lives here, once: the bind guard (one bind per session, none while
  another is being judged: ``judge_bind``), the login through ``PortDesk.login`` (``_login``), the
  admission of a submit (bound, reading its answers, window, TPS: ``_admit``), the submit through
  ``PortDesk.submit`` with the session's outstanding count (``_submit``), the report dates
  (``report_date``), a receipt's text excerpt (``printable_ascii``) and an MO split into the Deliver
  parts of a CMPP-family protocol (``mo_parts``). A port states its codes and PDUs only.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from qixin.errors import QxError
from qixin.protocols.cmpp.text import encode_text
from qixin.protocols.errors import RequestTimeout, SessionClosed
from qixin.protocols.server import ProtocolServer
from qixin.protocols.session import Session
from qixin.services.connections import Connection
from qixin.services.ports import Event, PortDesk, Segment
from qixin.tasks import cancel

__all__ = [
    "CONN", "DROPPED", "REFUSALS", "THROTTLED", "UNBOUND", "CustomerPort", "Pump", "judge_bind", "mo_parts",
    "printable_ascii", "report_date", "status_table",
]  # fmt: skip

log = logging.getLogger("qixin.ports")
SHANGHAI = ZoneInfo("Asia/Shanghai")

CONN = "connection"  # session.info key of the bound Connection
FINALISE_BATCH = 2000  # waiting receipts looked at per transaction of the pump's periodic scan
FINALISE_ROUNDS = 50  # transactions of that scan per round at most
BINDING = "binding"  # session.info key set while a bind is being judged

# why ``_admit`` refused a submit before looking at it (each port maps these to its status)
UNBOUND = "unbound"  # no connection on the session
DROPPED = "dropped"  # the client does not read its answers: the session was aborted
THROTTLED = "throttled"  # the session's window is full or the connection's TPS cap is hit


# the refusal codes of ``PortDesk`` (bind) and of accept (submit), in the groups every protocol's status
# table answers alike; a port names one status per group (``status_table``)
REFUSALS: dict[str, tuple[str, ...]] = {
    "throttled": ("CONNECTION_THROTTLED", "ACCOUNT_THROTTLED"),
    "daily_cap": ("DAILY_CAP_EXCEEDED",),
    "destination": (
        "NUMBER_INVALID",
        "NUMBERS_EMPTY",
        "NUMBER_DUPLICATE",
        "INTERNATIONAL_NOT_ALLOWED",
        "NUMBER_RANGE_FORBIDDEN",
    ),
    "empty": ("CONTENT_EMPTY",),
    "too_long": ("CONTENT_TOO_LONG",),
    "balance": ("INSUFFICIENT_BALANCE", "BALANCE_EXPIRED"),
    "content": (
        "CONTENT_FORBIDDEN",
        "CONTENT_SPECIAL_CHAR",
        "LINK_FORBIDDEN",
        "UNSUBSCRIBE_MISSING",
        "VERIFICATION_KEYWORD_MISSING",
        "VERIFICATION_CODE_MISSING",
        "CONTENT_CLASSIFIED",
        "CONTENT_TYPE_MISMATCH",
        "AUDIENCE_REQUIRED",
        "FREE_TEXT_FORBIDDEN",
    ),
    "recipient": ("OPTED_OUT", "BLACKLISTED", "RATE_LIMITED"),
    "signature": ("SIGNATURE_NOT_APPROVED",),
    "frozen": ("ACCOUNT_FROZEN", "CONNECTION_DISABLED", "LOGIN_INVALID"),
    "malformed": ("INVALID_REQUEST",),
    "internal": ("INTERNAL_ERROR",),
    # bind refusals (PortDesk.login)
    "login": ("LOGIN_INVALID",),
    "disabled": ("CONNECTION_DISABLED",),
    "ip": ("IP_FORBIDDEN",),
    "account_frozen": ("ACCOUNT_FROZEN",),
    "connections": ("CONNECTIONS_EXCEEDED",),
}


def status_table(**statuses: int) -> dict[str, int]:
    """A refusal code -> protocol status table from one status per group of ``REFUSALS`` (groups not
    named fall to the caller's default)."""
    unknown = set(statuses) - set(REFUSALS)
    if unknown:
        raise ValueError(f"not refusal groups: {sorted(unknown)}")
    return {code: status for group, status in statuses.items() for code in REFUSALS[group]}


_DATES: dict[int, str] = {}  # minute since the epoch -> its report date (Beijing has no DST: exact)


def report_date(ms: int) -> str:
    """A receipt date (YYMMDDhhmm) in Beijing time, as Chinese gateways and SMSCs write them."""
    minute = ms // 60_000
    date = _DATES.get(minute)
    if date is None:
        if len(_DATES) >= 4096:
            _DATES.clear()
        date = _DATES[minute] = datetime.fromtimestamp(minute * 60, SHANGHAI).strftime("%y%m%d%H%M")
    return date


_NOT_PRINTABLE_ASCII = re.compile("[^\x20-\x7e]+")  # str.isprintable() of an ASCII character: 0x20–0x7E


def printable_ascii(text: str) -> str:
    """The printable ASCII characters of ``text`` (the ``text:`` excerpt of a receipt), ``text`` itself
    when it has no other (the common case: no new string per receipt)."""
    if text.isascii() and text.isprintable():
        return text
    return _NOT_PRINTABLE_ASCII.sub("", text)


def mo_parts(session: Session, event: Event, make: Callable[[str, int, bytes, bool], Any]) -> Any:
    """An MO as the Deliver PDU(s) of a CMPP-family protocol (CMPP, SGIP, SMGP): the text encoded as
    those protocols code it, a long one in UDH parts; ``make(to, coding, content, udhi)`` builds one
    part, ``to`` the number the MO was sent to (the login's service code + extension when the event has
    none). One PDU, or the list of the parts (acknowledged only when every part is)."""
    conn: Connection = session.info[CONN]
    to = (event.destination or conn.source_address)[:21]
    coding, contents, udhi = encode_text(event.content, event.id & 0xFF)
    parts = [make(to, coding, content, udhi) for content in contents]
    return parts[0] if len(parts) == 1 else parts


def judge_bind(session: Session, account_key: str, refused: Callable[[], Any], judge: Callable[[], Any]) -> Any:
    """A bind on ``session``: ``judge()`` (the port's judgement, a coroutine) when one may be judged — not
    bound yet and no other bind being judged (which it then marks) —, else ``refused()`` (the protocol's
    "already bound" answer). Every port's server hands its bind, CONNECT or Login here."""
    if session.info.get(account_key) is not None or session.info.get(BINDING):
        return refused()
    session.info[BINDING] = True
    return judge()


class CustomerPort:
    """A customer-facing protocol server (see the module docstring)."""

    protocol: str
    server: ProtocolServer

    def __init__(self, desk: PortDesk, *, window: int, max_buffered: int) -> None:
        self.desk = desk
        self.window = window
        self.max_buffered = max_buffered

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

    # -- binds ---------------------------------------------------------------------------------
    async def _login(
        self, session: Session, login: str, verify: Callable[[Connection], bool]
    ) -> Connection | QxError | None:
        """The bind's connection (then recorded on the session), the refusal, or None when the client
        went away while the bind was judged (nothing to answer)."""
        ip = session.peer[0] if isinstance(session.peer, tuple) else None
        try:
            conn = await self.desk.login(self.protocol, login, ip, verify)
        except QxError as e:
            return e
        finally:
            session.info.pop(BINDING, None)
        if session.is_closed:
            self.desk.logout(conn)
            return None
        session.info[CONN] = conn
        session.info["pending"] = 0
        return conn

    # -- submits -------------------------------------------------------------------------------
    def _admit(self, session: Session) -> Connection | str:
        """The session's connection, or why a submit is refused before it is looked at (UNBOUND,
        DROPPED, THROTTLED)."""
        conn: Connection | None = session.info.get(CONN)
        if conn is None:
            return UNBOUND
        transport = session.transport
        if transport is not None and transport.get_write_buffer_size() > self.max_buffered:
            log.warning("%s port: %s does not read its answers (%d bytes buffered), dropping", self.protocol,
                        session.name, transport.get_write_buffer_size())  # fmt: skip
            session.abort()
            return DROPPED
        if session.info["pending"] >= self.window or self.desk.throttled(conn):
            return THROTTLED
        return conn

    def _submit(self, session: Session, conn: Connection, seg: Segment, answer: Callable[[str | None], Any]) -> Any:
        """``PortDesk.submit`` counted in the session's outstanding submits; ``answer(None)`` when
        accepted, ``answer(code)`` with the refusal code otherwise. The common case takes no task and no
        future: the answer is sent when the submit's group is accepted (``PortDesk.submit_soon``)."""
        info = session.info
        protocol = self.protocol

        def done(exc: BaseException | None) -> None:
            info["pending"] -= 1
            if exc is not None and not isinstance(exc, QxError):
                log.error("%s port: submit failed", protocol, exc_info=exc)
                exc = QxError("INTERNAL_ERROR")
            resp = answer(None if exc is None else exc.code)
            if resp is not None and not session.is_closed:
                session.send(resp)

        info["pending"] += 1
        if self.desk.submit_soon(conn, seg, done):
            return None
        info["pending"] -= 1
        return self._submit_async(session, conn, seg, answer)

    async def _submit_async(
        self, session: Session, conn: Connection, seg: Segment, answer: Callable[[str | None], Any]
    ) -> Any:
        session.info["pending"] += 1
        try:
            await self.desk.submit(conn, seg)
        except QxError as e:
            return answer(e.code)
        finally:
            session.info["pending"] -= 1
        return answer(None)


class Pump:
    """Delivers ready receipts and MO to bound receiving sessions (see the module docstring)."""

    def __init__(
        self, desk: PortDesk, ports: list[CustomerPort], poll: float = 0.05, timeout: float = 10.0,
        finalise_every: float = 30.0,
    ) -> None:  # fmt: skip
        self.desk = desk
        self.ports = ports
        self.poll = poll
        self.timeout = timeout
        self.finalise_every = finalise_every
        self._next_finalise = 0.0  # loop time of the next safety-net scan (0: at the first round)
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
        now = asyncio.get_running_loop().time()
        if now >= self._next_finalise:
            self._next_finalise = now + self.finalise_every
            # a backlog (failures-only receipts of delivered messages pile up between scans) goes in one
            # round, FINALISE_BATCH per transaction, at most FINALISE_ROUNDS of them
            for _ in range(FINALISE_ROUNDS):
                if await self.desk.finalise(FINALISE_BATCH) < FINALISE_BATCH:
                    break
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
        plan: dict[Session, tuple[CustomerPort, list[int]]] = {}  # session -> its port and events (indexes)
        for i, e in enumerate(events):
            targets = by_conn.get(e.connection_id or -1) if e.kind == "receipt" else by_account.get(e.account_id)
            if targets:
                port, session = targets[next(self._rr) % len(targets)]
                plan.setdefault(session, (port, []))[1].append(i)
        results = [False] * len(events)  # no target: due again (another process may hold its session)
        done = await asyncio.gather(
            *(self._deliver(port, session, [events[i] for i in idx]) for session, (port, idx) in plan.items())
        )
        for (_, idx), oks in zip(plan.values(), done, strict=True):
            for i, ok in zip(idx, oks, strict=True):
                results[i] = ok
        ok_ids = [e.id for e, r in zip(events, results, strict=True) if r]
        bad = [e.id for e, r in zip(events, results, strict=True) if not r]
        self.stats["delivered"] += len(ok_ids)
        self.stats["failed"] += len(bad)
        await self.desk.settle(ok_ids, bad)
        return len(events)

    async def _deliver(self, port: CustomerPort, session: Session, events: list[Event]) -> list[bool]:
        """Push ``events`` through ``session``'s window in order (one task per session, not per event; a
        free slot is taken without waiting), then collect the answers; True where acknowledged."""
        ok = [False] * len(events)
        sent: list[tuple[int, list[asyncio.Future[Any]]]] = []
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout) as bound:  # moved on by every slot taken
                for i, event in enumerate(events):
                    try:
                        pdus = port.delivery(session, event)
                    except Exception:
                        log.exception("ports: event %d cannot be put in a PDU", event.id)
                        continue
                    futs = []
                    for pdu in pdus if isinstance(pdus, list) else [pdus]:
                        fut = session.try_request(pdu)
                        if fut is None:
                            fut = await port.server.deliver(session, pdu)
                            bound.reschedule(loop.time() + self.timeout)
                        futs.append(fut)
                    sent.append((i, futs))
        except (SessionClosed, RequestTimeout, TimeoutError, ConnectionError):
            pass  # the rest is due again
        except Exception:
            log.exception("ports: delivery to %s failed", session.name)
        pending = [fut for _, futs in sent for fut in futs if not fut.done()]
        if pending:  # one wake-up for the lot, not one per answer; each is bounded by the request timeout
            await asyncio.wait(pending)
        for i, futs in sent:
            good = True
            for fut in futs:
                exc = fut.exception() if not fut.cancelled() else SessionClosed("cancelled")
                if exc is None:
                    try:
                        good = port.acknowledged(fut.result()) and good
                    except Exception:
                        log.exception("ports: the answer of %s cannot be read", session.name)
                        good = False
                    continue
                if not isinstance(exc, (SessionClosed, RequestTimeout, TimeoutError, ConnectionError)):
                    log.error("ports: delivery to %s failed", session.name, exc_info=exc)
                good = False
            ok[i] = good
        return ok
