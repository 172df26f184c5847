"""SGIP 1.2 SMG role on top of the shared session engine.

Used by the China Unicom simulator and, later, by a customer-facing SGIP port. The server

* listens for SPs: Bind with Login Type 1 is authenticated, then every Submit goes to ``handler``
  (which returns the Submit_Resp, an awaitable of it, or None to answer later / never);
* connects back to an SP's own listener (``connect``: Bind with Login Type 2) to push Deliver (MO),
  Report and Userrpt (``deliver``, through that session's window).

``session.info`` holds ``login_name`` and ``login_type`` once bound. Sessions carry no heartbeat; with
``idle_timeout`` an idle session (either direction) is unbound and closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from qixin.protocols.errors import BindError
from qixin.protocols.session import Session
from qixin.protocols.sgip import codec as c
from qixin.protocols.sgip.adapter import IdleWatch, new_session

__all__ = ["Authenticator", "SgipServer", "SubmitHandler"]

log = logging.getLogger(__name__)

# (login_name, password) -> True (accept), False (Result 1, illegal login) or an SGIP Result to answer with
Authenticator = Callable[[str, str], "bool | int"]
# (session, submit) -> Submit_Resp, an awaitable of it, or None (the handler answers later via session.send)
SubmitHandler = Callable[[Session, c.Submit], "c.SubmitResp | Awaitable[c.SubmitResp] | None"]


class SgipServer:
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
        self.host = host
        self.port = port
        self.authenticator = authenticator
        self.handler = handler
        self.node_id = node_id
        self.window = window
        self.request_timeout = request_timeout
        self.idle_timeout = idle_timeout
        self.on_bind = on_bind
        self.on_unbind = on_unbind
        self.sessions: set[Session] = set()  # accepted (SP -> SMG)
        self.outbound: set[Session] = set()  # connected back (SMG -> SP)
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> int:
        """Start listening; returns the bound port (useful with port 0)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._make_session, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self, timeout: float = 2.0) -> None:
        """Stop listening, unbind every session both ways (bounded by ``timeout``) and close."""
        if self._server is not None:
            self._server.close()
        sessions = list(self.sessions) + list(self.outbound)
        if sessions:
            await asyncio.gather(*(s.close(timeout) for s in sessions), return_exceptions=True)
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), timeout)
            except TimeoutError:
                pass
            self._server = None

    def abort_all(self) -> None:
        """Drop every connection, accepted and connected back, at once (fault injection)."""
        for s in list(self.sessions) + list(self.outbound):
            s.abort()

    def bound_sessions(self, login_name: str | None = None) -> list[Session]:
        return [s for s in self.sessions if s.bound and (login_name is None or s.info.get("login_name") == login_name)]

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
        if self.idle_timeout:
            session.info["idle"] = IdleWatch(session, self.idle_timeout)
        return session

    async def deliver(self, session: Session, pdu: c.Deliver | c.Report | c.Userrpt) -> asyncio.Future[Any]:
        """Push a Deliver / Report / Userrpt (waits for a window slot); returns the future of its response."""
        return await session.request(pdu)

    # -- internals -----------------------------------------------------------------------------
    def _make_session(self) -> Session:
        s = new_session(
            self.node_id,
            self._handle,
            window=self.window,
            request_timeout=self.request_timeout,
            on_close=self._on_close,
            name="sgip-smg",
        )
        self.sessions.add(s)
        return s

    def _on_close(self, session: Session) -> None:
        self.sessions.discard(session)
        watch = session.info.get("idle")
        if watch is not None:
            watch.cancel()
        if session.info.get("login_name") is not None and self.on_unbind is not None:
            self.on_unbind(session)

    def _on_outbound_close(self, session: Session, on_close: Callable[[Session], None] | None) -> None:
        self.outbound.discard(session)
        watch = session.info.get("idle")
        if watch is not None:
            watch.cancel()
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
        try:
            verdict = self.authenticator(pdu.login_name, pdu.login_password)
        except Exception:
            log.exception("authenticator failed")
            verdict = False
        if verdict is True:
            result = c.RESULT_OK
        elif verdict is False:
            result = c.RESULT_ILLEGAL_LOGIN
        else:
            result = int(verdict)
        if result != c.RESULT_OK:
            log.info("SGIP Bind as %r refused: Result %d", pdu.login_name, result)
            return c.BindResp(result, "", *seq)
        session.info["login_name"] = pdu.login_name
        session.info["login_type"] = pdu.login_type
        session.name = f"sgip-smg {pdu.login_name}@{session.peer}"
        session.mark_bound()
        if self.idle_timeout:
            session.info["idle"] = IdleWatch(session, self.idle_timeout)
        if self.on_bind is not None:
            asyncio.get_running_loop().call_soon(self.on_bind, session)
        return c.BindResp(c.RESULT_OK, "", *seq)
