"""SGIP 1.2 SMG role on top of the shared session engine.

Used by the China Unicom simulator and, later, by a customer-facing SGIP port (``ProtocolServer``'s
rules, see ``qixin.protocols.server``, where SGIP allows). The server

* listens for SPs: Bind with Login Type 1 is authenticated, then every Submit goes to ``handler``
  (which returns the Submit_Resp, an awaitable of it, or None to answer later / never);
* connects back to an SP's own listener (``connect``: Bind with Login Type 2) to push Deliver (MO),
  Report and Userrpt (``deliver``, through that session's window).

A Bind is checked by ``authenticator(login_name, password)``: True accepts, False (or raising) answers
Result 1 (illegal login), an int is the Result to answer with; a Bind with another Login Type is
Result 4, a second one Result 2. ``session.info`` holds ``login_name`` and ``login_type`` once bound.
Sessions carry no heartbeat; with ``idle_timeout`` an idle session (either direction) is unbound and
closed. ``stop`` and ``abort_all`` cover both directions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from qixin.protocols.errors import BindError
from qixin.protocols.server import ProtocolServer, password_verdict
from qixin.protocols.session import Session
from qixin.protocols.sgip import codec as c
from qixin.protocols.sgip.adapter import cancel_idle_watch, new_session, watch_idle

__all__ = ["Authenticator", "SgipServer", "SubmitHandler"]

log = logging.getLogger(__name__)

# (login_name, password) -> True (accept), False (Result 1, illegal login) or an SGIP Result to answer with
Authenticator = Callable[[str, str], "bool | int"]
# (session, submit) -> Submit_Resp, an awaitable of it, or None (the handler answers later via session.send)
SubmitHandler = Callable[[Session, c.Submit], "c.SubmitResp | Awaitable[c.SubmitResp] | None"]


class SgipServer(ProtocolServer):
    session_prefix = "sgip-smg"
    account_key = "login_name"

    def __init__(
        self,
        host: str,
        port: int,
        authenticator: Authenticator,
        handler: SubmitHandler,
        *,
        node_id: int,
        window: int = 64,
        request_timeout: float = 10.0,
        idle_timeout: float | None = None,
        on_bind: Callable[[Session], None] | None = None,
        on_unbind: Callable[[Session], None] | None = None,
    ) -> None:
        super().__init__(
            host, port, handler, window=window, request_timeout=request_timeout, on_bind=on_bind, on_unbind=on_unbind
        )
        self.authenticator = authenticator
        self.node_id = node_id
        self.idle_timeout = idle_timeout
        self.outbound: set[Session] = set()  # connected back (SMG -> SP); ``sessions``: accepted (SP -> SMG)

    def bound_sessions(self, login_name: str | None = None) -> list[Session]:
        return self._bound_sessions(login_name)

    async def connect(
        self,
        host: str,
        port: int,
        login_name: str,
        password: str,
        *,
        on_close: Callable[[Session], None] | None = None,
        timeout: float | None = None,
    ) -> Session:
        """Connect to an SP's listener and bind with Login Type 2; returns the bound session.

        Raises ``OSError`` / ``TimeoutError`` when the SP is unreachable and ``BindError`` when it
        refuses the bind. Incoming requests on that session are refused (an SP sends nothing but
        responses there).
        """
        loop = asyncio.get_running_loop()
        timeout = self.request_timeout if timeout is None else timeout

        def factory() -> Session:
            return new_session(
                self.node_id,
                self._handle_outbound,
                window=self.window,
                request_timeout=self.request_timeout,
                on_close=lambda s: self._on_outbound_close(s, on_close),
                name=f"sgip-smg->{login_name}@{host}:{port}",
            )

        _, session = await asyncio.wait_for(loop.create_connection(factory, host, port), timeout)
        self.outbound.add(session)
        try:
            bind = c.Bind(login_type=c.LOGIN_SMG_TO_SP, login_name=login_name, login_password=password)
            resp = await asyncio.wait_for(await session.request(bind), timeout)
            if resp.result != c.RESULT_OK:
                raise BindError(
                    f"SGIP Bind (Login Type 2) as {login_name!r} to SP {host}:{port} refused: Result {resp.result}",
                    resp.result,
                )
            session.mark_bound()
        except BaseException:
            session.abort()
            raise
        session.info["login_name"] = login_name
        session.info["login_type"] = c.LOGIN_SMG_TO_SP
        watch_idle(session, self.idle_timeout)
        return session

    # -- internals -----------------------------------------------------------------------------
    def _all_sessions(self) -> list[Session]:
        return list(self.sessions) + list(self.outbound)

    def _new_session(self) -> Session:
        return new_session(
            self.node_id,
            self._handle,
            window=self.window,
            request_timeout=self.request_timeout,
            on_close=self._on_close,
            name=self.session_prefix,
        )

    def _on_close(self, session: Session) -> None:
        cancel_idle_watch(session)
        super()._on_close(session)

    def _on_outbound_close(self, session: Session, on_close: Callable[[Session], None] | None) -> None:
        self.outbound.discard(session)
        cancel_idle_watch(session)
        if on_close is not None:
            on_close(session)

    @staticmethod
    def _handle_outbound(session: Session, pdu: Any) -> Any:
        return c.response_for(pdu.command_id, c.RESULT_NO_SUCH_FUNCTION, c.sequence_of(pdu))

    def _handle(self, session: Session, pdu: Any) -> Any:
        cid = pdu.command_id
        if cid == c.SUBMIT:
            if not session.bound:
                return c.response_for(cid, c.RESULT_ILLEGAL_LOGIN, c.sequence_of(pdu))
            return self.handler(session, pdu)
        if cid == c.BIND:
            return self._bind(session, pdu)
        return c.response_for(cid, c.RESULT_NO_SUCH_FUNCTION, c.sequence_of(pdu))

    def _bind(self, session: Session, pdu: c.Bind) -> Any:
        seq = c.sequence_of(pdu)
        if session.info.get("login_name") is not None:
            return c.BindResp(c.RESULT_REPEATED_LOGIN, "", *seq)
        if pdu.login_type != c.LOGIN_SP_TO_SMG:
            log.info("SGIP Bind with Login Type %d refused (this SMG accepts SPs only)", pdu.login_type)
            return c.BindResp(c.RESULT_BAD_LOGIN_TYPE, "", *seq)
        result = password_verdict(
            self.authenticator, pdu.login_name, pdu.login_password, c.RESULT_OK, c.RESULT_ILLEGAL_LOGIN
        )
        if result != c.RESULT_OK:
            log.info("SGIP Bind as %r refused: Result %d", pdu.login_name, result)
            return c.BindResp(result, "", *seq)
        self._accept(session, pdu.login_name, login_type=pdu.login_type)
        watch_idle(session, self.idle_timeout)
        return c.BindResp(c.RESULT_OK, "", *seq)
