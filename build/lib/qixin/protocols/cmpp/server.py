"""CMPP 2.0 / 3.0 server (ISMG) role on top of the shared session engine.

Used by the China Mobile simulator and, later, by the customer-facing CMPP port (``ProtocolServer``'s
rules, see ``qixin.protocols.server``).

* CONNECT: the SP id is looked up with ``secrets`` (SP id -> shared secret, or None when unknown:
  Status 2). ``AuthenticatorSource`` is checked against ``MD5(SP id + 9 zero bytes + secret +
  Timestamp)`` (Status 3 when it does not match). A client version above the highest one served is
  answered Status 4. On success the answer carries ``AuthenticatorISMG = MD5(Status +
  AuthenticatorSource + secret)``; on failure AuthenticatorISMG is empty (zeros), as the
  specification asks, and ``on_bind_failure(sp_id, status)`` is told.
* One port serves both versions: the session speaks the version the client asked for (its codec is
  switched before the CONNECT_RESP is encoded), when that version is in ``versions``.
* Every SUBMIT goes to ``handler``; a SUBMIT before CONNECT is answered Result 2 (bad command). QUERY
  and CANCEL are not supported (Result 1); anything else is answered Result 2.
* ``deliver`` pushes a DELIVER (MO or status report) through the session's window.
* ``session.info`` holds ``sp_id`` and ``version`` once bound.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from qixin.protocols.cmpp.codec import (
    CANCEL,
    CONNECT,
    CONNECT_AUTH_FAILED,
    CONNECT_BAD_SOURCE_ADDR,
    CONNECT_OK,
    CONNECT_OTHER_ERROR,
    CONNECT_VERSION_TOO_HIGH,
    QUERY,
    RESULT_BAD_COMMAND,
    SUBMIT,
    VERSION_20,
    VERSION_30,
    CmppCodec,
    Connect,
    ConnectResp,
    Submit,
    SubmitResp,
    cmpp_authenticator_ismg,
    cmpp_authenticator_source,
)
from qixin.protocols.server import ProtocolServer
from qixin.protocols.session import Codec, Session

__all__ = ["CmppServer", "SecretLookup", "SubmitHandler"]

log = logging.getLogger(__name__)

# SP id -> shared secret, or None when the SP id is unknown
SecretLookup = Callable[[str], "str | bytes | None"]
# (session, submit) -> submit_resp, an awaitable of it, or None (handler answers later via session.send)
SubmitHandler = Callable[[Session, Submit], "SubmitResp | Awaitable[SubmitResp] | None"]

_CODECS = {VERSION_20: CmppCodec(VERSION_20), VERSION_30: CmppCodec(VERSION_30)}


class CmppServer(ProtocolServer):
    session_prefix = "cmpp-server"
    account_key = "sp_id"

    def __init__(
        self,
        host: str,
        port: int,
        secrets: SecretLookup,
        handler: SubmitHandler,
        *,
        versions: tuple[int, ...] = (VERSION_30, VERSION_20),
        window: int = 16,
        request_timeout: float = 10.0,
        heartbeat_interval: float = 30.0,
        heartbeat_retries: int = 3,
        on_bind: Callable[[Session], None] | None = None,
        on_unbind: Callable[[Session], None] | None = None,
        on_bind_failure: Callable[[str, int], None] | None = None,
    ) -> None:
        if not versions or any(v not in _CODECS for v in versions):
            raise ValueError("versions must be a non-empty subset of (0x30, 0x20)")
        super().__init__(
            host, port, handler, window=window, request_timeout=request_timeout, on_bind=on_bind, on_unbind=on_unbind
        )
        self.secrets = secrets
        self.versions = tuple(versions)
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_retries = heartbeat_retries
        self.on_bind_failure = on_bind_failure

    def bound_sessions(self, sp_id: str | None = None) -> list[Session]:
        return self._bound_sessions(sp_id)

    @property
    def codec(self) -> Codec:  # type: ignore[override]  # read-only here: it follows ``versions``
        """A new session's codec, until its CONNECT says which version the client speaks."""
        return _CODECS[self.versions[0]]

    # -- internals -----------------------------------------------------------------------------
    def _handle(self, session: Session, pdu: Any) -> Any:
        cid = pdu.command_id
        if cid == SUBMIT:
            if not session.bound:
                return SubmitResp(0, RESULT_BAD_COMMAND, pdu.sequence)
            return self.handler(session, pdu)
        if cid == CONNECT:
            return self._connect(session, pdu)
        if cid in (QUERY, CANCEL):
            return session.codec.error_response(pdu, 1)  # not supported: zero counters / cancel failed
        return session.codec.error_response(pdu, RESULT_BAD_COMMAND)

    def _refuse(self, session: Session, pdu: Connect, status: int, why: str) -> ConnectResp:
        log.info("CMPP CONNECT as %r from %s refused: %s", pdu.source_addr, session.peer, why)
        if self.on_bind_failure is not None:
            try:
                self.on_bind_failure(pdu.source_addr, status)
            except Exception:
                log.exception("on_bind_failure callback failed")
        version = pdu.version if pdu.version in self.versions else self.versions[0]
        session.codec = _CODECS[version]  # answer in the layout the client can read
        return ConnectResp(status, b"\0" * 16, version, pdu.sequence)

    def _connect(self, session: Session, pdu: Connect) -> ConnectResp:
        if session.info.get("sp_id") is not None:
            return self._refuse(session, pdu, CONNECT_OTHER_ERROR, "already connected")
        top = max(self.versions)
        if pdu.version > top:
            return self._refuse(session, pdu, CONNECT_VERSION_TOO_HIGH, f"version 0x{pdu.version:02X}")
        if pdu.version not in self.versions:
            return self._refuse(session, pdu, CONNECT_OTHER_ERROR, f"version 0x{pdu.version:02X} not served")
        try:
            secret = self.secrets(pdu.source_addr)
        except Exception:
            log.exception("secret lookup failed")
            secret = None
        if secret is None:
            return self._refuse(session, pdu, CONNECT_BAD_SOURCE_ADDR, "unknown SP id")
        expected = cmpp_authenticator_source(pdu.source_addr, secret, f"{pdu.timestamp:010d}")
        if expected != pdu.authenticator:
            return self._refuse(session, pdu, CONNECT_AUTH_FAILED, "AuthenticatorSource mismatch")
        session.codec = _CODECS[pdu.version]  # the CONNECT_RESP and all that follows in the client's version
        self._accept(session, pdu.source_addr, version=pdu.version)
        auth = cmpp_authenticator_ismg(CONNECT_OK, pdu.authenticator, secret, pdu.version)
        return ConnectResp(CONNECT_OK, auth, pdu.version, pdu.sequence)
