"""SMPP 3.4 server (SMSC) role on top of the shared session engine.

Used by the SMSC simulator and, later, by the customer-facing SMPP port. The server authenticates
binds, hands each submit_sm to a handler and can push deliver_sm to bound sessions (through the
session's window).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

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
    DeliverSm,
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


class SmppServer:
    """Listens for ESMEs. ``session.info`` holds ``system_id`` and ``bind`` (transmitter / receiver /
    transceiver) once bound."""

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
        self.host = host
        self.port = port
        self.authenticator = authenticator
        self.handler = handler
        self.system_id = system_id
        self.window = window
        self.request_timeout = request_timeout
        self.enquire_link_interval = enquire_link_interval
        self.on_bind = on_bind
        self.on_unbind = on_unbind
        self.data_sm_handler = data_sm_handler
        self.codec = SmppCodec()
        self.sessions: set[Session] = set()
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> int:
        """Start listening; returns the bound port (useful with port 0)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._make_session, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self, timeout: float = 2.0) -> None:
        """Stop listening, unbind every session (bounded by ``timeout``) and close."""
        if self._server is not None:
            self._server.close()
        sessions = list(self.sessions)
        if sessions:
            await asyncio.gather(*(s.close(timeout) for s in sessions), return_exceptions=True)
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), timeout)
            except TimeoutError:
                pass
            self._server = None

    def abort_all(self) -> None:
        """Drop every connection at once (fault injection)."""
        for s in list(self.sessions):
            s.abort()

    def bound_sessions(self, system_id: str | None = None, *, receiving: bool = False) -> list[Session]:
        """Bound sessions, optionally of one system_id and/or able to receive deliver_sm."""
        out = []
        for s in self.sessions:
            if not s.bound:
                continue
            if system_id is not None and s.info.get("system_id") != system_id:
                continue
            if receiving and s.info.get("bind") == "transmitter":
                continue
            out.append(s)
        return out

    async def deliver(self, session: Session, pdu: DeliverSm) -> asyncio.Future[Any]:
        """Push a deliver_sm (waits for a window slot); returns the future of its deliver_sm_resp."""
        return await session.request(pdu)

    # -- internals -----------------------------------------------------------------------------
    def _make_session(self) -> Session:
        s = Session(
            self.codec,
            self._handle,
            window=self.window,
            request_timeout=self.request_timeout,
            heartbeat_interval=self.enquire_link_interval,
            on_close=self._on_close,
            name="smpp-server",
        )
        self.sessions.add(s)
        return s

    def _on_close(self, session: Session) -> None:
        self.sessions.discard(session)
        if session.info.get("system_id") is not None and self.on_unbind is not None:
            self.on_unbind(session)

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
        try:
            verdict = self.authenticator(pdu.system_id, pdu.password)
        except Exception:
            log.exception("authenticator failed")
            verdict = False
        if verdict is True:
            status = ESME_ROK
        elif verdict is False:
            status = ESME_RINVPASWD
        else:
            status = int(verdict)
        if status != ESME_ROK:
            log.info("bind %s as %r refused: 0x%X", kind, pdu.system_id, status)
            return pdu.response(status)
        session.info["system_id"] = pdu.system_id
        session.info["bind"] = kind
        session.name = f"smpp-server {pdu.system_id}@{session.peer}"
        session.mark_bound()
        if self.on_bind is not None:
            # after the bind_resp is queued, so nothing we push overtakes it
            asyncio.get_running_loop().call_soon(self.on_bind, session)
        return pdu.response(ESME_ROK, system_id=self.system_id)
