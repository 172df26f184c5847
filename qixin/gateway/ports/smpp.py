"""The customer SMPP 3.4 port: a customer's own ESME binds with a direct-connection login.

On the protocol layer's ``SmppServer`` (binds, sessions, enquire_link both ways, unbind, generic_nack
for garbage and absurd lengths), this port adds only translations (docs/protocols.md, "Customer SMPP
port", holds the status table):

* bind_transmitter / receiver / transceiver: ``PortDesk.login`` judges the system_id, password and
  source IP; its refusal code maps to the bind status (``BIND_STATUS``).
* submit_sm and data_sm: the text is decoded (data_coding 0 GSM-7, 1 ASCII, 3 Latin-1, 8 UCS-2, 15 GBK;
  a UDH with an 8- or 16-bit concatenation reference, or the SAR TLVs, make it a segment) and given to
  ``PortDesk.submit``. The answer carries a message_id per submit_sm; a refusal maps to a command_status
  (``SUBMIT_STATUS``). More than ``window`` submits outstanding on one session are answered
  ESME_RTHROTTLED; a session whose unread output passes ``max_buffered`` bytes is dropped.
* Receipts go out as deliver_sm (esm_class 0x04) with the standard text ``id:… sub:001 dlvrd:… submit
  date:… done date:… stat:… err:… text:…`` and the receipted_message_id / message_state TLVs; MO as
  deliver_sm (esm_class 0) to the connection's service code + extension.
"""

from __future__ import annotations

import logging
from typing import Any

from qixin.domain.text import decode_payload
from qixin.errors import QxError
from qixin.gateway.ports.base import (
    CONN,
    THROTTLED,
    CustomerPort,
    judge_bind,
    printable_ascii,
    report_date,
    status_table,
)
from qixin.ids import ids
from qixin.protocols.limits import ListenerLimits
from qixin.protocols.session import Session
from qixin.protocols.smpp.codec import (
    ESM_CLASS_RECEIPT,
    ESM_CLASS_UDHI,
    ESME_RALYBND,
    ESME_RBINDFAIL,
    ESME_RINVDSTADR,
    ESME_RINVESMCLASS,
    ESME_RINVMSGLEN,
    ESME_RINVPASWD,
    ESME_RINVSYSID,
    ESME_RMSGQFUL,
    ESME_ROK,
    ESME_RSUBMITFAIL,
    ESME_RSYSERR,
    ESME_RTHROTTLED,
    STAT_TO_STATE,
    DataSm,
    DataSmResp,
    DeliverSm,
    SubmitSm,
    SubmitSmResp,
    format_receipt,
)
from qixin.protocols.smpp.server import SmppServer
from qixin.services.connections import Connection
from qixin.services.ports import Event, PortDesk, Segment

__all__ = ["BIND_STATUS", "SUBMIT_STATUS", "SmppPort"]

log = logging.getLogger("qixin.ports.smpp")

# vendor-specific command_status values (SMPP 3.4 §5.1.3 reserves 0x400–0x4FF for the SMSC vendor)
ESME_QX_BALANCE = 0x400
ESME_QX_CONTENT = 0x401
ESME_QX_RECIPIENT = 0x402
ESME_QX_SIGNATURE = 0x403
ESME_QX_FROZEN = 0x404

# PortDesk refusal code at bind -> bind_*_resp command_status (unknown system_id: ESME_RINVSYSID)
BIND_STATUS = status_table(
    login=ESME_RINVPASWD, disabled=ESME_RBINDFAIL, ip=ESME_RBINDFAIL, account_frozen=ESME_RBINDFAIL,
    connections=ESME_RBINDFAIL,
)  # fmt: skip

# refusal code at submit -> submit_sm_resp command_status (anything else: ESME_RSUBMITFAIL)
SUBMIT_STATUS = status_table(
    throttled=ESME_RTHROTTLED, daily_cap=ESME_RMSGQFUL, destination=ESME_RINVDSTADR, empty=ESME_RINVMSGLEN,
    too_long=ESME_RINVMSGLEN, balance=ESME_QX_BALANCE, content=ESME_QX_CONTENT, recipient=ESME_QX_RECIPIENT,
    signature=ESME_QX_SIGNATURE, frozen=ESME_QX_FROZEN, malformed=ESME_RSUBMITFAIL, internal=ESME_RSYSERR,
)  # fmt: skip


def submit_status(code: str) -> int:
    return SUBMIT_STATUS.get(code, ESME_RSUBMITFAIL)


class _Server(SmppServer):
    """SmppServer whose binds are judged by the port (asynchronously: a database lookup)."""

    port_of: SmppPort

    def _bind(self, session: Session, pdu: Any, kind: str) -> Any:
        return judge_bind(
            session,
            self.account_key,
            lambda: pdu.response(ESME_RALYBND),
            lambda: self.port_of._bind(session, pdu, kind),
        )


class SmppPort(CustomerPort):
    protocol = "smpp"

    def __init__(
        self,
        desk: PortDesk,
        host: str,
        port: int,
        *,
        window: int = 256,
        enquire_link_interval: float = 30.0,
        limits: ListenerLimits | None = None,
        max_buffered: int = 4 << 20,
        system_id: str = "qixin",
    ) -> None:
        super().__init__(desk, window=window, max_buffered=max_buffered)
        self._ids: list[int] = []
        server = _Server(
            host, port, lambda _u, _p: False, self._on_submit, system_id=system_id, window=window,
            enquire_link_interval=enquire_link_interval, on_unbind=self._unbound, data_sm_handler=self._on_data_sm,
            limits=limits,
        )  # fmt: skip
        server.port_of = self
        self.server: _Server = server

    # -- binds ---------------------------------------------------------------------------------
    async def _bind(self, session: Session, pdu: Any, kind: str) -> Any:
        conn = await self._login(session, pdu.system_id, lambda c: c.secret == pdu.password)
        if isinstance(conn, QxError):
            status = ESME_RINVSYSID if conn.detail.get("unknown") else BIND_STATUS.get(conn.code, ESME_RBINDFAIL)
            return pdu.response(status)
        if conn is None:
            return None
        self.server._accept(session, pdu.system_id, bind=kind)
        return pdu.response(ESME_ROK, system_id=self.server.system_id)

    # -- submits -------------------------------------------------------------------------------
    def _message_id(self) -> str:
        """A platform-wide unique id (``qixin.ids``), taken in blocks: one lock round per 256 submits."""
        if not self._ids:
            self._ids = ids.take(256)[::-1]
        return str(self._ids.pop())

    def _segment(self, pdu: SubmitSm | DataSm) -> Segment | int:
        payload = pdu.message_payload if pdu.message_payload is not None else getattr(pdu, "short_message", b"")
        try:
            text, concat = decode_payload(pdu.data_coding, payload, bool(pdu.esm_class & ESM_CLASS_UDHI))
        except (ValueError, UnicodeDecodeError):
            return ESME_RINVESMCLASS if pdu.esm_class & ESM_CLASS_UDHI else ESME_RSUBMITFAIL
        seg = Segment(
            self._message_id(), pdu.source_addr, (pdu.destination_addr,), text, receipt=pdu.registered_delivery & 3
        )
        if concat is not None:
            seg.ref, seg.total, seg.number = concat.ref, concat.total, concat.seq
        elif pdu.sar_msg_ref_num is not None and pdu.sar_total_segments:
            seg.ref, seg.total = pdu.sar_msg_ref_num, pdu.sar_total_segments
            seg.number = pdu.sar_segment_seqnum or 1
        return seg

    def _on_submit(self, session: Session, pdu: SubmitSm) -> Any:
        return self._take(session, pdu, SubmitSmResp)

    def _on_data_sm(self, session: Session, pdu: DataSm) -> Any:
        if session.info.get("bind") == "receiver":
            return DataSmResp(sequence=pdu.sequence, command_status=0x04)  # ESME_RINVBNDSTS
        return self._take(session, pdu, DataSmResp)

    def _take(self, session: Session, pdu: SubmitSm | DataSm, resp: Any) -> Any:
        sequence = pdu.sequence
        got = self._admit(session)
        if isinstance(got, str):
            return resp(sequence=sequence, command_status=ESME_RTHROTTLED if got == THROTTLED else ESME_RSYSERR)
        seg = self._segment(pdu)
        if isinstance(seg, int):
            return resp(sequence=sequence, command_status=seg)

        def answer(code: str | None) -> Any:
            if code is None:
                return resp(sequence=sequence, message_id=seg.customer_id)
            return resp(sequence=sequence, command_status=submit_status(code))

        return self._submit(session, got, seg, answer)

    # -- deliveries ------------------------------------------------------------------------------
    def delivery(self, session: Session, event: Event) -> DeliverSm:
        conn: Connection = session.info[CONN]
        if event.kind == "receipt":
            text = format_receipt(
                event.customer_id, event.stat, event.err, report_date(event.submitted_at), report_date(event.done_at),
                printable_ascii(event.content),
            )  # fmt: skip
            return DeliverSm(
                source_addr_ton=1 if event.destination.startswith("86") else 0,
                source_addr=event.destination,
                destination_addr=event.source,
                esm_class=ESM_CLASS_RECEIPT,
                short_message=text.encode("latin-1"),
                receipted_message_id=event.customer_id,
                message_state=STAT_TO_STATE.get(event.stat, 7),
            )
        try:
            body, dcs = event.content.encode("ascii"), 1
        except UnicodeEncodeError:
            body, dcs = event.content.encode("utf-16-be"), 8
        pdu = DeliverSm(
            source_addr=event.source, destination_addr=event.destination or conn.source_address, data_coding=dcs
        )
        if len(body) > 254:
            pdu.message_payload = body
        else:
            pdu.short_message = body
        return pdu

    def acknowledged(self, resp: Any) -> bool:
        return int(resp.command_status) == ESME_ROK
