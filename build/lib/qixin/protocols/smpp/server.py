"""SMPP 3.4 server (SMSC) role on top of the shared session engine.

Used by the SMSC simulator and, later, by the customer-facing SMPP port (``ProtocolServer``'s rules,
see ``qixin.protocols.server``). The server authenticates binds, hands each submit_sm to a handler
and can push deliver_sm to bound sessions (through the session's window).

* bind_transmitter / bind_receiver / bind_transceiver are checked by ``authenticator(system_id,
  password)``: True accepts, False (or raising) answers ESME_RINVPASWD, an int is the status to answer
  with; a second bind is answered ESME_RALYBND. ``session.info`` holds ``system_id`` and ``bind``
  (transmitter / receiver / transceiver) once bound.
* submit_sm before the bind, or on a receiver bind, is answered ESME_RINVBNDSTS; data_sm goes to
  ``data_sm_handler`` (ESME_RINVCMDID without one); any other request gets a generic_nack
  ESME_RINVCMDID.
* Receiver and transceiver binds are offered deliver_sm (``bound_sessions(receiving=True)``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from qixin.protocols.server import ProtocolServer, password_verdict
from qixin.protocols.session import Session
from qixin.protocols.smpp.codec import (
    BIND_RECEIVER,
    BIND_TRANSCEIVER,
    BIND_TRANSMITTER,
    DATA_SM,
    ESME_RALYBND,
    ESME_RINVBNDSTS,
    ESME_RINVCMDID,
    ESME_RINVPASWD,
    ESME_ROK,
    SUBMIT_SM,
    GenericNack,
    SmppCodec,
    SubmitSm,
    SubmitSmResp,
)

__all__ = ["BIND_KINDS", "Authenticator", "SmppServer", "SubmitHandler"]

log = logging.getLogger(__name__)

# command id -> bind kind
BIND_KINDS = {BIND_TRANSMITTER: "transmitter", BIND_RECEIVER: "receiver", BIND_TRANSCEIVER: "transceiver"}

# (system_id, password) -> True (accept), False (ESME_RINVPASWD) or an SMPP status code to answer with
Authenticator = Callable[[str, str], "bool | int"]
# (session, submit_sm) -> submit_sm_resp, an awaitable of it, or None (handler answers later via session.send)
SubmitHandler = Callable[[Session, SubmitSm], "SubmitSmResp | Awaitable[SubmitSmResp] | None"]


class SmppServer(ProtocolServer):
    """Listens for ESMEs. ``session.info`` holds ``system_id`` and ``bind`` (transmitter / receiver /
    transceiver) once bound."""

    session_prefix = "smpp-server"
    account_key = "system_id"

    def __init__(
        self,
        host: str,
        port: int,
        authenticator: Authenticator,
        handler: SubmitHandler,
        *,
        system_id: str = "qixin",
        window: int = 64,
        request_timeout: float = 10.0,
        enquire_link_interval: float = 30.0,
        on_bind: Callable[[Session], None] | None = None,
        on_unbind: Callable[[Session], None] | None = None,
        data_sm_handler: Callable[[Session, Any], Any] | None = None,
    ) -> None:
        super().__init__(
            host, port, handler, window=window, request_timeout=request_timeout, on_bind=on_bind, on_unbind=on_unbind
        )
        self.authenticator = authenticator
        self.system_id = system_id
        self.heartbeat_interval = enquire_link_interval
        self.data_sm_handler = data_sm_handler
        self.codec = SmppCodec()

    @property
    def enquire_link_interval(self) -> float:
        return self.heartbeat_interval

    @enquire_link_interval.setter
    def enquire_link_interval(self, value: float) -> None:
        self.heartbeat_interval = value

    def bound_sessions(self, system_id: str | None = None, *, receiving: bool = False) -> list[Session]:
        """Bound sessions, optionally of one system_id and/or able to receive deliver_sm."""
        return self._bound_sessions(system_id, receiving)

    # -- internals -----------------------------------------------------------------------------
    def _can_receive(self, session: Session) -> bool:
        return session.info.get("bind") != "transmitter"

    def _handle(self, session: Session, pdu: Any) -> Any:
        cid = pdu.command_id
        if cid == SUBMIT_SM:
            if not session.bound or session.info.get("bind") == "receiver":
                return pdu.response(ESME_RINVBNDSTS)
            return self.handler(session, pdu)
        kind = BIND_KINDS.get(cid)
        if kind is not None:
            return self._bind(session, pdu, kind)
        if cid == DATA_SM:
            if self.data_sm_handler is None:
                return pdu.response(ESME_RINVCMDID)
            if not session.bound:
                return pdu.response(ESME_RINVBNDSTS)
            return self.data_sm_handler(session, pdu)
        return GenericNack(sequence=pdu.sequence, command_status=ESME_RINVCMDID)

    def _bind(self, session: Session, pdu: Any, kind: str) -> Any:
        if session.info.get("system_id") is not None:
            return pdu.response(ESME_RALYBND)
        status = password_verdict(self.authenticator, pdu.system_id, pdu.password, ESME_ROK, ESME_RINVPASWD)
        if status != ESME_ROK:
            log.info("bind %s as %r refused: 0x%X", kind, pdu.system_id, status)
            return pdu.response(status)
        self._accept(session, pdu.system_id, bind=kind)
        return pdu.response(ESME_ROK, system_id=self.system_id)
