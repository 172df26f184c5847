"""The customer SMGP 3.0 port: a China Telecom customer's own SP client logs in with a direct-connection login.

On the protocol layer's ``SmgpServer`` (sessions, Active_Test both ways, Exit), this port adds only
translations (docs/protocols.md, "Customer SMGP port", holds the status table):

* Login: the ClientID names the login; AuthenticatorClient = MD5(ClientID + 7 zero bytes + secret +
  TimeStamp) is checked with the login's secret, ``PortDesk.login`` judges the rest; the answer carries
  AuthenticatorServer. LoginMode 0 (send only) sessions are offered no Deliver, LoginMode 1 (receive
  only) may not Submit (the server's rule), 2 does both.
* Submit: one 10-byte MsgID (SMGW code, month, day, hour, minute, sequence, BCD) per Submit; MsgFormat
  0 / 8 / 15 as the CMPP port reads Msg_Fmt; long messages by TP_udhi (TLV) + UDH, or by the
  Pk_total / Pk_number TLVs alone; SrcTermID must start with the login's service code + extension when
  a service code is set; up to 100 DestTermIDs.
* Deliver: a status report (IsReport 1, ``id:<MsgID> … stat:… err:…``) per Submit and destination that
  asked for one (NeedReport 1), and MO (IsReport 0) with DestTermID = service code + extension, long ones
  as UDH parts.
"""

from __future__ import annotations

import hmac
import itertools
import time
from datetime import datetime
from typing import Any

from qixin.errors import QxError
from qixin.gateway.ports.base import (
    SHANGHAI,
    THROTTLED,
    CustomerPort,
    judge_bind,
    mo_parts,
    printable_ascii,
    report_date,
    status_table,
)
from qixin.protocols.cmpp.text import decode_content
from qixin.protocols.limits import ListenerLimits
from qixin.protocols.session import Session
from qixin.protocols.smgp.codec import (
    LOGIN_MODE_RECEIVE,
    LOGIN_MODE_SEND,
    LOGIN_MODE_TRANSMIT,
    MSG_FORMAT_ASCII,
    STATUS_AUTH_FAILED,
    STATUS_BAD_COMMAND,
    STATUS_BAD_IP,
    STATUS_BAD_MSG_FORMAT,
    STATUS_BAD_MSG_LENGTH,
    STATUS_BAD_STRUCTURE,
    STATUS_OK,
    STATUS_SYSTEM_BUSY,
    STATUS_TOO_MANY_CONNECTIONS,
    STATUS_VERSION_TOO_HIGH,
    TAG_PK_NUMBER,
    TAG_PK_TOTAL,
    TAG_TP_UDHI,
    VERSION_30,
    Deliver,
    Login,
    LoginResp,
    Report,
    Submit,
    SubmitResp,
    encode_report,
    get_tlv_int,
    pack_msg_id,
    smgp_authenticator_client,
    smgp_authenticator_server,
    tlv_u8,
)
from qixin.protocols.smgp.server import SmgpServer
from qixin.services.connections import Connection
from qixin.services.ports import Event, PortDesk, Segment

__all__ = ["LOGIN_STATUS", "SUBMIT_STATUS", "SmgpPort"]

# vendor Status values (SMGP 3.0 leaves the values above the standard ones to the gateway)
STATUS_QX_BALANCE = 90
STATUS_QX_CONTENT = 91
STATUS_QX_RECIPIENT = 92
STATUS_QX_SIGNATURE = 93
STATUS_QX_FROZEN = 94
STATUS_QX_DESTINATION = 95
STATUS_QX_SOURCE = 96  # SrcTermID not under the login's service code + extension
STATUS_QX_OTHER = 99

# PortDesk refusal code at Login -> Login_Resp Status
LOGIN_STATUS = status_table(
    login=STATUS_AUTH_FAILED, disabled=STATUS_AUTH_FAILED, ip=STATUS_BAD_IP, account_frozen=STATUS_AUTH_FAILED,
    connections=STATUS_TOO_MANY_CONNECTIONS,
)  # fmt: skip

# refusal code at Submit -> Submit_Resp Status (anything else: 99, other error)
SUBMIT_STATUS = status_table(
    throttled=STATUS_SYSTEM_BUSY, daily_cap=STATUS_SYSTEM_BUSY, destination=STATUS_QX_DESTINATION,
    empty=STATUS_BAD_MSG_LENGTH, too_long=STATUS_BAD_MSG_LENGTH, balance=STATUS_QX_BALANCE,
    content=STATUS_QX_CONTENT, recipient=STATUS_QX_RECIPIENT, signature=STATUS_QX_SIGNATURE, frozen=STATUS_QX_FROZEN,
    malformed=STATUS_BAD_STRUCTURE,
)  # fmt: skip


def submit_status(code: str | None) -> int:
    return STATUS_OK if code is None else SUBMIT_STATUS.get(code, STATUS_QX_OTHER)


class MsgIds:
    """SMGP MsgIDs: SMGW code (6 digits) | month day hour minute (Asia/Shanghai) | sequence (6 digits)."""

    def __init__(self, smgw_code: int = 0) -> None:
        self.smgw_code = smgw_code % 1_000_000
        self._minute = -1
        self._stamp: tuple[int, int, int, int] = (1, 1, 0, 0)
        self._seq = itertools.count(1)

    def next(self) -> bytes:
        minute = int(time.time()) // 60
        if minute != self._minute:
            t = datetime.fromtimestamp(minute * 60, SHANGHAI)
            self._minute, self._stamp = minute, (t.month, t.day, t.hour, t.minute)
        return pack_msg_id(self.smgw_code, *self._stamp, next(self._seq) % 1_000_000)


class _Server(SmgpServer):
    """SmgpServer whose Login is judged by the port (asynchronously: a database lookup)."""

    port_of: SmgpPort

    def _login(self, session: Session, pdu: Login) -> Any:
        if pdu.login_mode not in (LOGIN_MODE_SEND, LOGIN_MODE_RECEIVE, LOGIN_MODE_TRANSMIT):
            return LoginResp(status=STATUS_BAD_COMMAND, sequence=pdu.sequence)
        if pdu.client_version > VERSION_30:
            return LoginResp(status=STATUS_VERSION_TOO_HIGH, sequence=pdu.sequence)
        refused = LoginResp(status=STATUS_BAD_COMMAND, sequence=pdu.sequence)
        return judge_bind(session, self.account_key, lambda: refused, lambda: self.port_of._login_pdu(session, pdu))


class SmgpPort(CustomerPort):
    protocol = "smgp"

    def __init__(
        self,
        desk: PortDesk,
        host: str,
        port: int,
        *,
        window: int = 256,
        heartbeat_interval: float = 30.0,
        limits: ListenerLimits | None = None,
        max_buffered: int = 4 << 20,
        smgw_code: int = 0,
    ) -> None:
        super().__init__(desk, window=window, max_buffered=max_buffered)
        self.msg_ids = MsgIds(smgw_code)
        server = _Server(
            host, port, lambda _login: (STATUS_AUTH_FAILED, None), self._on_submit, window=window,
            heartbeat_interval=heartbeat_interval, on_logout=self._unbound, limits=limits,
        )  # fmt: skip
        server.port_of = self
        self.server: _Server = server

    # -- Login ---------------------------------------------------------------------------------
    async def _login_pdu(self, session: Session, pdu: Login) -> Any:
        def verify(c: Connection) -> bool:
            expected = smgp_authenticator_client(pdu.client_id, c.secret, pdu.timestamp)
            return hmac.compare_digest(expected, pdu.authenticator)

        conn = await self._login(session, pdu.client_id, verify)
        if isinstance(conn, QxError):
            return LoginResp(status=LOGIN_STATUS.get(conn.code, STATUS_AUTH_FAILED), sequence=pdu.sequence)
        if conn is None:
            return None
        self.server._accept(session, pdu.client_id, login_mode=pdu.login_mode)
        auth = smgp_authenticator_server(STATUS_OK, pdu.authenticator, conn.secret)
        return LoginResp(status=STATUS_OK, authenticator=auth, server_version=VERSION_30, sequence=pdu.sequence)

    # -- Submit --------------------------------------------------------------------------------
    def _on_submit(self, session: Session, pdu: Submit) -> Any:
        conn = self._admit(session)
        seq = pdu.sequence
        if isinstance(conn, str):
            return SubmitResp(status=STATUS_SYSTEM_BUSY if conn == THROTTLED else STATUS_QX_OTHER, sequence=seq)
        if conn.service_code and pdu.src_term_id and not pdu.src_term_id.startswith(conn.source_address):
            return SubmitResp(status=STATUS_QX_SOURCE, sequence=seq)
        udhi = bool(get_tlv_int(pdu.tlvs, TAG_TP_UDHI, 0))
        try:
            text, concat = decode_content(pdu.msg_format, pdu.msg_content, udhi)
        except ValueError:
            return SubmitResp(status=STATUS_BAD_MSG_FORMAT, sequence=seq)
        if not pdu.dest_term_ids:
            return SubmitResp(status=STATUS_QX_DESTINATION, sequence=seq)
        msg_id = self.msg_ids.next()
        seg = Segment(
            msg_id.hex(), pdu.src_term_id or conn.source_address, tuple(pdu.dest_term_ids), text,
            receipt=1 if pdu.need_report else 0,
        )  # fmt: skip
        total = get_tlv_int(pdu.tlvs, TAG_PK_TOTAL, 1) or 1
        if concat is not None:
            seg.ref, seg.total, seg.number = concat.ref, concat.total, concat.seq
        elif total > 1:
            seg.ref, seg.total, seg.number = -1, total, get_tlv_int(pdu.tlvs, TAG_PK_NUMBER, 1) or 1
        return self._submit(session, conn, seg, lambda code: SubmitResp(msg_id, submit_status(code), seq))

    # -- Deliver -------------------------------------------------------------------------------
    def delivery(self, session: Session, event: Event) -> Deliver | list[Deliver]:
        now = datetime.now(SHANGHAI).strftime("%Y%m%d%H%M%S")
        if event.kind == "receipt":
            report = Report(
                bytes.fromhex(event.customer_id), submit_date=report_date(event.submitted_at),
                done_date=report_date(event.done_at), stat=event.stat[:7], err=event.err[:3],
                txt=printable_ascii(event.content)[:20].encode("ascii"),
            )  # fmt: skip
            return Deliver(
                msg_id=self.msg_ids.next(), is_report=1, msg_format=MSG_FORMAT_ASCII, recv_time=now,
                src_term_id=event.destination, dest_term_id=event.source[:21], msg_content=encode_report(report),
            )  # fmt: skip
        return mo_parts(session, event, lambda to, fmt, content, udhi: Deliver(
            msg_id=self.msg_ids.next(), is_report=0, msg_format=fmt, recv_time=now, src_term_id=event.source,
            dest_term_id=to, msg_content=content, tlvs=(tlv_u8(TAG_TP_UDHI, 1),) if udhi else (),
        ))  # fmt: skip

    def acknowledged(self, resp: Any) -> bool:
        return int(resp.status) == STATUS_OK
