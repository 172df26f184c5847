"""The customer CMPP 2.0 / 3.0 port: a customer's own SP client connects with a direct-connection login.

On the protocol layer's ``CmppServer`` (sessions, ACTIVE_TEST both ways with its interval and retry
count, TERMINATE), this port adds only translations (docs/protocols.md, "Customer CMPP port", holds the
Result table):

* CONNECT: the SP id (Source_Addr) names the login; AuthenticatorSource = MD5(SP id + 9 zero bytes +
  secret + Timestamp) is checked with the login's secret (sealed at rest, opened by the directory);
  ``PortDesk.login`` judges the rest (IP, frozen account, too many connections). Versions 0x20, 0x21
  (which many real 2.0 clients send) and 0x30 are served, each answered — and spoken afterwards — in the
  layout of its version (0x21 is the 2.0 layout); a higher version is Status 4.
* SUBMIT: one 64-bit Msg_Id in the CMPP layout (month, day, hour, minute, second (Asia/Shanghai),
  gateway id, sequence) per SUBMIT; Msg_Fmt 0 / 8 / 15 (and 3, 4 as Latin-1 / binary); long messages by
  TP_udhi + UDH, or by Pk_total / Pk_number alone; Src_Id must start with the login's service code +
  extension when a service code is set (Result 10); up to 100 Dest_terminal_Id.
* DELIVER: a status report (Registered_Delivery 1, Msg_Id of the SUBMIT) per SUBMIT and destination that
  asked for one, and MO (Registered_Delivery 0) with Dest_Id = service code + extension.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from qixin.errors import QxError
from qixin.gateway.ports.base import THROTTLED, CustomerPort, judge_bind, mo_parts, report_date, status_table
from qixin.protocols.cmpp.codec import (
    CONNECT_AUTH_FAILED,
    CONNECT_BAD_SOURCE_ADDR,
    CONNECT_OK,
    CONNECT_OTHER_ERROR,
    CONNECT_VERSION_TOO_HIGH,
    RESULT_BAD_DEST_TERMINAL_ID,
    RESULT_BAD_MSG_LENGTH,
    RESULT_BAD_SRC_ID,
    RESULT_BAD_STRUCTURE,
    RESULT_FLOW_CONTROL,
    RESULT_MSG_TOO_LONG,
    RESULT_OK,
    RESULT_OTHER_ERROR,
    VERSION_20,
    VERSION_30,
    CmppCodec,
    Connect,
    ConnectResp,
    Deliver,
    Report,
    Submit,
    SubmitResp,
    cmpp_authenticator_ismg,
    cmpp_authenticator_source,
    encode_report,
    pack_msg_id,
)
from qixin.protocols.cmpp.server import CmppServer
from qixin.protocols.cmpp.text import decode_content
from qixin.protocols.limits import ListenerLimits
from qixin.protocols.session import Session
from qixin.services.connections import Connection
from qixin.services.ports import Event, PortDesk, Segment

__all__ = ["CONNECT_STATUS", "SUBMIT_RESULT", "CmppPort"]

log = logging.getLogger("qixin.ports.cmpp")
SHANGHAI = ZoneInfo("Asia/Shanghai")
VERSION_21 = 0x21

# vendor Result values (CMPP leaves "9~ other errors" to the gateway)
RESULT_QX_BALANCE = 20
RESULT_QX_CONTENT = 21
RESULT_QX_RECIPIENT = 22
RESULT_QX_SIGNATURE = 23
RESULT_QX_FROZEN = 24

# PortDesk refusal code at CONNECT -> CONNECT_RESP Status (unknown SP id: Status 1, bad Source_Addr)
CONNECT_STATUS = status_table(
    login=CONNECT_AUTH_FAILED, disabled=CONNECT_OTHER_ERROR, ip=CONNECT_OTHER_ERROR, account_frozen=CONNECT_OTHER_ERROR,
    connections=CONNECT_OTHER_ERROR,
)  # fmt: skip

# refusal code at SUBMIT -> SUBMIT_RESP Result (anything else: 9, other error)
SUBMIT_RESULT = status_table(
    throttled=RESULT_FLOW_CONTROL, daily_cap=RESULT_FLOW_CONTROL, destination=RESULT_BAD_DEST_TERMINAL_ID,
    empty=RESULT_BAD_MSG_LENGTH, too_long=RESULT_MSG_TOO_LONG, balance=RESULT_QX_BALANCE, content=RESULT_QX_CONTENT,
    recipient=RESULT_QX_RECIPIENT, signature=RESULT_QX_SIGNATURE, frozen=RESULT_QX_FROZEN,
    malformed=RESULT_BAD_STRUCTURE,
)  # fmt: skip

_CODECS = {VERSION_20: CmppCodec(VERSION_20), VERSION_30: CmppCodec(VERSION_30)}


def submit_result(code: str | None) -> int:
    return RESULT_OK if code is None else SUBMIT_RESULT.get(code, RESULT_OTHER_ERROR)


def _layout(version: int) -> int:
    """The byte layout a client version speaks: 0x30 (3.0) or 0x20 (2.0, also for 0x21)."""
    return VERSION_30 if version >= VERSION_30 else VERSION_20


class MsgIds:
    """CMPP Msg_Ids: time fields (Asia/Shanghai) | gateway id (22 bits) | sequence (16 bits)."""

    def __init__(self, gateway_id: int | None = None) -> None:
        self.gateway_id = secrets.randbits(22) if gateway_id is None else gateway_id & 0x3FFFFF
        self._sec = -1
        self._base = 0
        self._seq = itertools.count(1)

    def next(self) -> int:
        sec = int(time.time())
        if sec != self._sec:
            t = datetime.fromtimestamp(sec, SHANGHAI)
            self._sec = sec
            self._base = pack_msg_id(t.month, t.day, t.hour, t.minute, min(t.second, 59), self.gateway_id, 0)
        return self._base | (next(self._seq) & 0xFFFF)


class _Server(CmppServer):
    """CmppServer whose CONNECT is judged by the port (asynchronously: a database lookup)."""

    port_of: CmppPort

    def _connect(self, session: Session, pdu: Connect) -> Any:
        if pdu.version > VERSION_30:
            return self._refuse(session, pdu, CONNECT_VERSION_TOO_HIGH, f"version 0x{pdu.version:02X}")
        if pdu.version not in (VERSION_20, VERSION_21, VERSION_30):
            return self._refuse(session, pdu, CONNECT_OTHER_ERROR, f"version 0x{pdu.version:02X} not served")
        return judge_bind(
            session, self.account_key, lambda: self._refuse(session, pdu, CONNECT_OTHER_ERROR, "already connected"),
            lambda: self.port_of._connect(session, pdu),
        )  # fmt: skip

    def _refuse(self, session: Session, pdu: Connect, status: int, why: str) -> ConnectResp:
        log.info("CMPP CONNECT as %r from %s refused: %s", pdu.source_addr, session.peer, why)
        session.codec = _CODECS[_layout(pdu.version)]
        return ConnectResp(status, b"\0" * 16, pdu.version if pdu.version <= VERSION_30 else VERSION_30, pdu.sequence)


class CmppPort(CustomerPort):
    protocol = "cmpp"

    def __init__(
        self,
        desk: PortDesk,
        host: str,
        port: int,
        *,
        window: int = 256,
        heartbeat_interval: float = 30.0,
        heartbeat_retries: int = 3,
        limits: ListenerLimits | None = None,
        max_buffered: int = 4 << 20,
        gateway_id: int | None = None,
    ) -> None:
        super().__init__(desk, window=window, max_buffered=max_buffered)
        self.msg_ids = MsgIds(gateway_id)
        server = _Server(
            host, port, lambda _sp: None, self._on_submit, window=window, heartbeat_interval=heartbeat_interval,
            heartbeat_retries=heartbeat_retries, on_unbind=self._unbound, limits=limits,
        )  # fmt: skip
        server.port_of = self
        self.server: _Server = server

    # -- CONNECT -------------------------------------------------------------------------------
    async def _connect(self, session: Session, pdu: Connect) -> Any:
        stamp = f"{pdu.timestamp:010d}"

        def verify(c: Connection) -> bool:
            return cmpp_authenticator_source(pdu.source_addr, c.secret, stamp) == pdu.authenticator

        server = self.server
        conn = await self._login(session, pdu.source_addr, verify)
        if isinstance(conn, QxError):
            status = CONNECT_BAD_SOURCE_ADDR if conn.detail.get("unknown") else CONNECT_STATUS.get(conn.code, 5)
            return server._refuse(session, pdu, status, conn.code)
        if conn is None:
            return None
        layout = _layout(pdu.version)
        session.codec = _CODECS[layout]
        server._accept(session, pdu.source_addr, version=layout, client_version=pdu.version)
        auth = cmpp_authenticator_ismg(CONNECT_OK, pdu.authenticator, conn.secret, layout)
        return ConnectResp(CONNECT_OK, auth, pdu.version, pdu.sequence)

    # -- SUBMIT --------------------------------------------------------------------------------
    def _on_submit(self, session: Session, pdu: Submit) -> Any:
        conn = self._admit(session)
        if isinstance(conn, str):
            return SubmitResp(0, RESULT_FLOW_CONTROL if conn == THROTTLED else RESULT_OTHER_ERROR, pdu.sequence)
        if conn.service_code and pdu.src_id and not pdu.src_id.startswith(conn.source_address):
            return SubmitResp(0, RESULT_BAD_SRC_ID, pdu.sequence)
        try:
            text, concat = decode_content(pdu.msg_fmt, pdu.msg_content, bool(pdu.tp_udhi))
        except ValueError:
            return SubmitResp(0, RESULT_BAD_STRUCTURE, pdu.sequence)
        if not pdu.dest_terminal_ids:
            return SubmitResp(0, RESULT_BAD_DEST_TERMINAL_ID, pdu.sequence)
        msg_id = self.msg_ids.next()
        seg = Segment(
            str(msg_id), pdu.src_id or conn.source_address, tuple(pdu.dest_terminal_ids), text,
            receipt=1 if pdu.registered_delivery else 0,
        )  # fmt: skip
        if concat is not None:
            seg.ref, seg.total, seg.number = concat.ref, concat.total, concat.seq
        elif pdu.pk_total > 1:
            seg.ref, seg.total, seg.number = -1, pdu.pk_total, pdu.pk_number
        seq = pdu.sequence
        return self._submit(session, conn, seg, lambda code: SubmitResp(msg_id, submit_result(code), seq))

    # -- DELIVER -------------------------------------------------------------------------------
    def delivery(self, session: Session, event: Event) -> Deliver | list[Deliver]:
        version = session.info.get("version", VERSION_30)
        if event.kind == "receipt":
            report = Report(
                int(event.customer_id), event.stat[:7], report_date(event.submitted_at), report_date(event.done_at),
                event.destination, event.id & 0xFFFFFFFF,
            )  # fmt: skip
            return Deliver(
                msg_id=self.msg_ids.next(), dest_id=event.source[:21], src_terminal_id=event.destination,
                registered_delivery=1, msg_content=encode_report(report, version),
            )  # fmt: skip
        return mo_parts(session, event, lambda to, fmt, content, udhi: Deliver(
            msg_id=self.msg_ids.next(), dest_id=to, src_terminal_id=event.source, tp_udhi=int(udhi), msg_fmt=fmt,
            registered_delivery=0, msg_content=content,
        ))  # fmt: skip

    def acknowledged(self, resp: Any) -> bool:
        return int(resp.result) == RESULT_OK
