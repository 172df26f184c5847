"""SMGP 3.0 server (SMGW / ISMG) role on top of the shared session engine.

Used by the China Telecom simulator and, later, by a customer-facing SMGP port.

Rules (``ProtocolServer``'s, see ``qixin.protocols.server``, in SMGP terms: Login and Exit;
``on_login`` / ``on_logout`` are its ``on_bind`` / ``on_unbind``):

* Login is checked by an ``Authenticator``: ``(login) -> (status, secret)``. On status 0 the answer
  carries ``AuthenticatorServer = MD5(Status + AuthenticatorClient + secret)``; when the secret is
  unknown (an authenticator that accepts anyone) it is 16 zero bytes. ``accounts_authenticator``
  builds the usual one from a ``{client_id: secret}`` table (``None`` = accept anyone).
* A second Login on a logged-in session is refused; Submit before Login, or on a receive-only
  session (LoginMode 1), is answered with status 11 (bad command) without reaching the handler.
* ``session.info`` holds ``client_id`` and ``login_mode`` once logged in.
* ``deliver`` pushes a Deliver through the session's window (MO or status report); sessions logged
  in with LoginMode 0 (send only) are not offered any (``logged_in_sessions(receiving=True)``).
* Active_Test and Exit are answered by the engine.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from qixin.protocols.server import ProtocolServer
from qixin.protocols.session import Session
from qixin.protocols.smgp.codec import (
    LOGIN,
    LOGIN_MODE_RECEIVE,
    LOGIN_MODE_SEND,
    LOGIN_MODE_TRANSMIT,
    STATUS_AUTH_FAILED,
    STATUS_BAD_COMMAND,
    STATUS_OK,
    STATUS_VERSION_TOO_HIGH,
    SUBMIT,
    VERSION_30,
    Login,
    LoginResp,
    SmgpCodec,
    Submit,
    SubmitResp,
    response_for,
    smgp_authenticator_client,
    smgp_authenticator_server,
    status_name,
)

__all__ = ["Authenticator", "SmgpServer", "SubmitHandler", "accounts_authenticator"]

log = logging.getLogger(__name__)

# login -> (status, shared secret or None when unknown)
Authenticator = Callable[[Login], "tuple[int, str | bytes | None]"]
# (session, submit) -> Submit_Resp, an awaitable of it, or None (answered later via session.send, or never)
SubmitHandler = Callable[[Session, Submit], "SubmitResp | Awaitable[SubmitResp] | None"]

_ZERO16 = b"\0" * 16


def accounts_authenticator(accounts: dict[str, str] | None) -> Authenticator:
    """Check AuthenticatorClient against ``accounts`` (client_id -> shared secret); ``None`` accepts
    any client without checking (and cannot sign its answer)."""

    def authenticate(login: Login) -> tuple[int, str | bytes | None]:
        if accounts is None:
            return STATUS_OK, None
        secret = accounts.get(login.client_id)
        if secret is None:
            return STATUS_AUTH_FAILED, None
        expected = smgp_authenticator_client(login.client_id, secret, login.timestamp)
        if not hmac.compare_digest(expected, login.authenticator):
            return STATUS_AUTH_FAILED, None
        return STATUS_OK, secret

    return authenticate


class SmgpServer(ProtocolServer):
    """Listens for SMGP clients (SPs)."""

    session_prefix = "smgp-server"
    account_key = "client_id"

    def __init__(
        self,
        host: str,
        port: int,
        authenticator: Authenticator,
        handler: SubmitHandler,
        *,
        window: int = 64,
        request_timeout: float = 10.0,
        heartbeat_interval: float = 30.0,
        heartbeat_retries: int = 3,
        on_login: Callable[[Session], None] | None = None,
        on_logout: Callable[[Session], None] | None = None,
    ) -> None:
        super().__init__(
            host, port, handler, window=window, request_timeout=request_timeout, on_bind=on_login, on_unbind=on_logout
        )
        self.authenticator = authenticator
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_retries = heartbeat_retries
        self.codec = SmgpCodec()

    @property
    def on_login(self) -> Callable[[Session], None] | None:
        return self.on_bind

    @on_login.setter
    def on_login(self, value: Callable[[Session], None] | None) -> None:
        self.on_bind = value

    @property
    def on_logout(self) -> Callable[[Session], None] | None:
        return self.on_unbind

    @on_logout.setter
    def on_logout(self, value: Callable[[Session], None] | None) -> None:
        self.on_unbind = value

    def logged_in_sessions(self, client_id: str | None = None, *, receiving: bool = False) -> list[Session]:
        """Logged-in sessions, optionally of one client_id and/or able to receive Deliver."""
        return self._bound_sessions(client_id, receiving)

    # -- internals -----------------------------------------------------------------------------
    def _can_receive(self, session: Session) -> bool:
        return session.info.get("login_mode") != LOGIN_MODE_SEND

    def _handle(self, session: Session, pdu: Any) -> Any:
        cid = pdu.command_id
        if cid == SUBMIT:
            if not session.bound or session.info.get("login_mode") == LOGIN_MODE_RECEIVE:
                return response_for(pdu, STATUS_BAD_COMMAND)
            return self.handler(session, pdu)
        if cid == LOGIN:
            return self._login(session, pdu)
        return response_for(pdu, STATUS_BAD_COMMAND)

    def _login(self, session: Session, pdu: Login) -> LoginResp:
        if session.info.get("client_id") is not None:
            return LoginResp(status=STATUS_BAD_COMMAND, sequence=pdu.sequence)
        if pdu.login_mode not in (LOGIN_MODE_SEND, LOGIN_MODE_RECEIVE, LOGIN_MODE_TRANSMIT):
            return LoginResp(status=STATUS_BAD_COMMAND, sequence=pdu.sequence)
        if pdu.client_version > VERSION_30:
            return LoginResp(status=STATUS_VERSION_TOO_HIGH, sequence=pdu.sequence)
        try:
            status, secret = self.authenticator(pdu)
        except Exception:
            log.exception("authenticator failed")
            status, secret = STATUS_AUTH_FAILED, None
        if status != STATUS_OK:
            log.info("login as %r refused: %s", pdu.client_id, status_name(status))
            return LoginResp(status=status, sequence=pdu.sequence)
        auth = _ZERO16 if secret is None else smgp_authenticator_server(STATUS_OK, pdu.authenticator, secret)
        self._accept(session, pdu.client_id, login_mode=pdu.login_mode)
        return LoginResp(status=STATUS_OK, authenticator=auth, server_version=VERSION_30, sequence=pdu.sequence)
