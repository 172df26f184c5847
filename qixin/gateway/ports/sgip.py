"""The customer SGIP 1.2 port: a China Unicom customer's own SP client binds with a direct-connection login.

On the protocol layer's ``SgipServer`` (sessions, Unbind, idle closing), this port adds only translations
(docs/protocols.md, "Customer SGIP port", holds the Result table):

* Bind (Login Type 1): Login Name and Password are the login and its secret, ``PortDesk.login`` judges the
  rest; another Login Type is Result 4, a second Bind Result 2.
* Submit: the customer's own 12-byte sequence of the Submit (node id, MMDDhhmmss, counter) is the id its
  Report names, as SGIP has it; MessageCoding 0 / 8 / 15 read as the CMPP port reads Msg_Fmt; long messages
  by TP_udhi + UDH; SPNumber must start with the login's service code + extension when a service code is
  set; up to 100 UserNumbers ("86" prefix or not). ReportFlag 1 (and 3) asks for a Report always, 0 for
  failures only, 2 for none.
* Receipts and MO go the SGIP way: the port connects *back* to the customer's own listener (the login's
  ``deliver_to``, host:port) with a Bind of Login Type 2 (the same Login Name and Password) while one of
  the login's sessions is bound, and sends Report (State 0 delivered, 2 failed, ErrorCode the carrier's
  code when numeric) and Deliver (MO to service code + extension, long ones as UDH parts) there. A login
  with no ``deliver_to`` gets none: they wait, as for any port, until it has one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from qixin.errors import QxError
from qixin.gateway.ports.base import CONN, THROTTLED, CustomerPort, judge_bind, mo_parts, status_table
from qixin.protocols.cmpp.text import decode_content
from qixin.protocols.limits import ListenerLimits
from qixin.protocols.session import Session
from qixin.protocols.sgip import codec as c
from qixin.protocols.sgip.adapter import watch_idle
from qixin.protocols.sgip.server import SgipServer
from qixin.services.connections import Connection
from qixin.services.ports import Event, PortDesk, Segment
from qixin.tasks import cancel

__all__ = ["BIND_RESULT", "SUBMIT_RESULT", "SgipPort"]

log = logging.getLogger("qixin.ports.sgip")

# vendor Result values (SGIP 1.2 leaves the values above its own to the gateway)
RESULT_QX_BALANCE = 90
RESULT_QX_CONTENT = 91
RESULT_QX_RECIPIENT = 92
RESULT_QX_SIGNATURE = 93
RESULT_QX_FROZEN = 94
RESULT_QX_SOURCE = 96  # SPNumber not under the login's service code + extension
RESULT_QX_OTHER = 99

# PortDesk refusal code at Bind -> Bind_Resp Result
BIND_RESULT = status_table(
    login=c.RESULT_ILLEGAL_LOGIN, disabled=c.RESULT_ILLEGAL_LOGIN, ip=c.RESULT_ILLEGAL_LOGIN,
    account_frozen=c.RESULT_ILLEGAL_LOGIN, connections=c.RESULT_TOO_MANY_CONNECTIONS,
)  # fmt: skip

# refusal code at Submit -> Submit_Resp Result (anything else: 99)
SUBMIT_RESULT = status_table(
    throttled=c.RESULT_NODE_BUSY, daily_cap=c.RESULT_SMSC_QUEUE_FULL, destination=c.RESULT_ILLEGAL_NUMBER,
    empty=c.RESULT_BAD_MSG_LENGTH, too_long=c.RESULT_BAD_MSG_LENGTH, balance=RESULT_QX_BALANCE,
    content=RESULT_QX_CONTENT, recipient=RESULT_QX_RECIPIENT, signature=RESULT_QX_SIGNATURE, frozen=RESULT_QX_FROZEN,
    malformed=c.RESULT_BAD_PARAMETER_FORMAT, internal=c.RESULT_SYSTEM_FAILURE,
)  # fmt: skip

RECEIPT_OF_FLAG = {0: 2, 1: 1, 2: 0, 3: 1}  # ReportFlag -> Segment.receipt (0 none, 1 always, 2 failures only)
RETRY_BACK = 5.0  # seconds before connecting back to a listener that could not be reached


def submit_result(code: str | None) -> int:
    return c.RESULT_OK if code is None else SUBMIT_RESULT.get(code, RESULT_QX_OTHER)


def _back_address(conn: Connection) -> tuple[str, int] | None:
    host, _, port = conn.deliver_to.rpartition(":")
    if not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


class _Server(SgipServer):
    """SgipServer whose Binds are judged by the port (asynchronously: a database lookup)."""

    port_of: SgipPort

    def _bind(self, session: Session, pdu: c.Bind) -> Any:
        seq = c.sequence_of(pdu)
        if pdu.login_type != c.LOGIN_SP_TO_SMG:
            return c.BindResp(c.RESULT_BAD_LOGIN_TYPE, "", *seq)
        refused = c.BindResp(c.RESULT_REPEATED_LOGIN, "", *seq)
        return judge_bind(session, self.account_key, lambda: refused, lambda: self.port_of._bind(session, pdu))


class SgipPort(CustomerPort):
    protocol = "sgip"

    def __init__(
        self,
        desk: PortDesk,
        host: str,
        port: int,
        *,
        window: int = 256,
        idle_timeout: float | None = 90.0,
        limits: ListenerLimits | None = None,
        max_buffered: int = 4 << 20,
        node_id: int | None = None,
        request_timeout: float = 10.0,
    ) -> None:
        super().__init__(desk, window=window, max_buffered=max_buffered)
        server = _Server(
            host, port, lambda _n, _p: False, self._on_submit, node_id=3_000_000_000 + (node_id or 0) % 1_000_000_000,
            window=window, request_timeout=request_timeout, idle_timeout=idle_timeout, on_unbind=self._unbound,
            limits=limits,
        )  # fmt: skip
        server.port_of = self
        self.server: _Server = server
        self._back: dict[int, Session] = {}  # connection id -> the session connected back to its listener
        self._connecting: dict[int, asyncio.Task[None]] = {}
        self._failed_at: dict[int, float] = {}

    async def stop(self) -> None:
        for task in list(self._connecting.values()):
            await cancel(task)
        self._connecting.clear()
        await super().stop()
        self._back.clear()

    # -- Bind ----------------------------------------------------------------------------------
    async def _bind(self, session: Session, pdu: c.Bind) -> Any:
        seq = c.sequence_of(pdu)
        conn = await self._login(session, pdu.login_name, lambda x: x.secret == pdu.login_password)
        if isinstance(conn, QxError):
            return c.BindResp(BIND_RESULT.get(conn.code, c.RESULT_ILLEGAL_LOGIN), "", *seq)
        if conn is None:
            return None
        self.server._accept(session, pdu.login_name, login_type=pdu.login_type)
        watch_idle(session, self.server.idle_timeout)
        return c.BindResp(c.RESULT_OK, "", *seq)

    # -- Submit --------------------------------------------------------------------------------
    def _on_submit(self, session: Session, pdu: c.Submit) -> Any:
        seq = c.sequence_of(pdu)
        conn = self._admit(session)
        if isinstance(conn, str):
            return c.SubmitResp(c.RESULT_NODE_BUSY if conn == THROTTLED else c.RESULT_SYSTEM_FAILURE, "", *seq)
        if conn.service_code and pdu.sp_number and not pdu.sp_number.startswith(conn.source_address):
            return c.SubmitResp(RESULT_QX_SOURCE, "", *seq)
        try:
            text, concat = decode_content(pdu.message_coding, pdu.message_content, bool(pdu.tp_udhi))
        except ValueError:
            return c.SubmitResp(c.RESULT_BAD_PARAMETER_FORMAT, "", *seq)
        if not pdu.user_numbers:
            return c.SubmitResp(c.RESULT_ILLEGAL_NUMBER, "", *seq)
        seg = Segment(
            c.format_sequence(seq), pdu.sp_number or conn.source_address, tuple(pdu.user_numbers), text,
            receipt=RECEIPT_OF_FLAG.get(pdu.report_flag, 1),
        )  # fmt: skip
        if concat is not None:
            seg.ref, seg.total, seg.number = concat.ref, concat.total, concat.seq
        return self._submit(session, conn, seg, lambda code: c.SubmitResp(submit_result(code), "", *seq))

    # -- receipts and MO: connected back to the customer's listener -------------------------------
    def receiving(self) -> list[Session]:
        """The sessions connected back to the listeners of the logins bound now (connecting those missing)."""
        out = []
        wanted: dict[int, Connection] = {}
        for s in self.server._bound_sessions(None):
            conn: Connection | None = s.info.get(CONN)
            if conn is not None and conn.deliver_to:
                wanted[conn.id] = conn
        for cid, conn in wanted.items():
            back = self._back.get(cid)
            if back is not None and not back.is_closed:
                out.append(back)
            elif cid not in self._connecting and time.monotonic() - self._failed_at.get(cid, -RETRY_BACK) >= RETRY_BACK:
                task = asyncio.get_running_loop().create_task(self._connect_back(conn), name=f"sgip-back-{cid}")
                self._connecting[cid] = task
        return out

    async def _connect_back(self, conn: Connection) -> None:
        try:
            address = _back_address(conn)
            if address is None:
                raise ValueError(f"deliver_to {conn.deliver_to!r} is not host:port")
            session = await self.server.connect(address[0], address[1], conn.login, conn.secret)
        except Exception as e:
            self._failed_at[conn.id] = time.monotonic()
            log.warning("sgip port: connecting back to %s for login %s failed: %s", conn.deliver_to, conn.login, e)
        else:
            session.info[CONN] = conn
            self._back[conn.id] = session
            self._failed_at.pop(conn.id, None)
        finally:
            self._connecting.pop(conn.id, None)

    def delivery(self, session: Session, event: Event) -> Any:
        if event.kind == "receipt":
            delivered = event.stat == "DELIVRD"
            code = int(event.err) if event.err.isdigit() and int(event.err) < 256 else 0
            return c.Report(
                submit_sequence=c.parse_sequence(event.customer_id), report_type=c.REPORT_TYPE_SUBMIT,
                user_number=event.destination, state=c.STATE_DELIVERED if delivered else c.STATE_FAILED,
                error_code=0 if delivered else (code or RESULT_QX_OTHER),
            )  # fmt: skip
        user_number = c.add_country_code(event.source.removeprefix("+"))
        return mo_parts(session, event, lambda to, coding, content, udhi: c.Deliver(
            user_number=user_number, sp_number=to, tp_udhi=int(udhi), message_coding=coding, message_content=content,
        ))  # fmt: skip

    def acknowledged(self, resp: Any) -> bool:
        return int(resp.result) == c.RESULT_OK
