"""SMGP 3.0 server (SMGW / ISMG) role on top of the shared session engine.

Used by the China Telecom simulator and, later, by a customer-facing SMGP port.

Rules:

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

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

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
    Deliver,
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


class SmgpServer:
    """Listens for SMGP clients (SPs)."""

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
        self.host = host
        self.port = port
        self.authenticator = authenticator
        self.handler = handler
        self.window = window
        self.request_timeout = request_timeout
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_retries = heartbeat_retries
        self.on_login = on_login
        self.on_logout = on_logout
        self.codec = SmgpCodec()
        self.sessions: set[Session] = set()
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> int:
        """Start listening; returns the bound port (useful with port 0)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._make_session, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self, timeout: float = 2.0) -> None:
        """Stop listening, send Exit on every session (bounded by ``timeout``) and close."""
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

    def logged_in_sessions(self, client_id: str | None = None, *, receiving: bool = False) -> list[Session]:
        """Logged-in sessions, optionally of one client_id and/or able to receive Deliver."""
        out = []
        for s in self.sessions:
            if not s.bound:
                continue
            if client_id is not None and s.info.get("client_id") != client_id:
                continue
            if receiving and s.info.get("login_mode") == LOGIN_MODE_SEND:
                continue
            out.append(s)
        return out

    async def deliver(self, session: Session, pdu: Deliver) -> asyncio.Future[Any]:
        """Push a Deliver (waits for a window slot); returns the future of its Deliver_Resp."""
        return await session.request(pdu)

    # -- internals -----------------------------------------------------------------------------
    def _make_session(self) -> Session:
        s = Session(
            self.codec,
            self._handle,
            window=self.window,
            request_timeout=self.request_timeout,
            heartbeat_interval=self.heartbeat_interval,
            heartbeat_retries=self.heartbeat_retries,
            on_close=self._on_close,
            name="smgp-server",
        )
        self.sessions.add(s)
        return s

    def _on_close(self, session: Session) -> None:
        self.sessions.discard(session)
        if session.info.get("client_id") is not None and self.on_logout is not None:
            self.on_logout(session)

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
        session.info["client_id"] = pdu.client_id
        session.info["login_mode"] = pdu.login_mode
        session.name = f"smgp-server {pdu.client_id}@{session.peer}"
        session.mark_bound()
        if self.on_login is not None:
            # after the Login_Resp is queued, so nothing we push overtakes it
            asyncio.get_running_loop().call_soon(self.on_login, session)
        return LoginResp(status=STATUS_OK, authenticator=auth, server_version=VERSION_30, sequence=pdu.sequence)
