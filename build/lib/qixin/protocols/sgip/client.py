"""SGIP 1.2 SP client: one connection to the SMG for Submit, plus the SP's own listener for the SMG.

Rules (``ProtocolClient``'s, see ``qixin.protocols.client``, except where SGIP differs):

* One outgoing connection per ``SgipClient`` (Bind with Login Type 1); the channel connector runs
  several clients for several connections. The SMG connects *back* to the listener this client runs
  (``listen_host``/``listen_port``; ``listen_port`` after ``start`` gives the bound port) and binds
  with Login Type 2; those binds are checked against ``smg_login_name`` / ``smg_password`` (None
  accepts any). Deliver (MO), Report and Userrpt arriving there go to ``on_deliver``. ``listen=False``
  runs the outgoing side only (another process owns the listener). Anything but responses arriving on
  the outgoing connection is answered Result 30 (no such function).
* There is no heartbeat. The outgoing connection is opened on demand (at ``start``, and whenever
  ``submit`` or ``wait_bound`` wants it), unbound and closed after ``idle_timeout`` seconds without
  traffic, and opened again by the next ``submit``. A connection lost while there is demand is
  reopened with exponential backoff (``reconnect_min`` … ``reconnect_max``, jittered); a connection
  the SMG closed with Unbind, or that we closed for idleness, is reopened at once when needed. (Unlike
  the other protocols, a successful bind does not reset the backoff: only a graceful end does.)
* ``submit`` waits for a bound session, for the throttle pause and for a window slot, writes the PDU
  and returns the future of its Submit_Resp without creating a task. After it returned,
  ``carrier_id(pdu)`` / ``sequence_of(pdu)`` is the Submit's 12-byte sequence, which the SMG's
  Reports will name. A submit not yet written when the session dropped is written on the next one;
  one that was written fails with ``SessionClosed`` (the caller decides whether to resubmit).
* Result 11 (node busy) and 33 (queue full) resolve the future normally and also pause all sending
  for a short, doubling delay (50 ms … 1 s), reset by the next accepted submit.
* Deliver / Report / Userrpt are answered Result 0 after ``on_deliver`` returned; when it returns an
  ``asyncio.Future`` (the receiver's promise to store it durably) the answer waits for it: Result 0 when
  it succeeds, Result 32 (system failure) when it fails, no answer when the session closed meanwhile
  (the SMG sends it again). ``on_deliver`` raising is answered Result 32 too. Before the SMG's Bind
  they are answered Result 1 (illegal login).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from qixin.protocols.client import CONNECT_ERRORS, ProtocolClient
from qixin.protocols.errors import BindError
from qixin.protocols.session import Session
from qixin.protocols.sgip import codec as c
from qixin.protocols.sgip.adapter import SgipSessionCodec, cancel_idle_watch, new_session, watch_idle

__all__ = ["THROTTLE_RESULTS", "DeliverHandler", "SgipClient"]

log = logging.getLogger(__name__)

THROTTLE_RESULTS = frozenset({c.RESULT_NODE_BUSY, c.RESULT_SMSC_QUEUE_FULL})

DeliverHandler = Callable[[c.Deliver | c.Report | c.Userrpt], "asyncio.Future[Any] | None"]


class SgipClient(ProtocolClient[c.Submit, c.SubmitResp, c.Deliver | c.Report | c.Userrpt]):
    protocol = "SGIP"
    session_prefix = "sgip-sp"
    ok_status = c.RESULT_OK
    throttle_statuses = THROTTLE_RESULTS
    deliver_commands = frozenset({c.DELIVER, c.REPORT, c.USERRPT})  # on the listener
    deliver_retry_text = f"Result {c.RESULT_SYSTEM_FAILURE}"
    refuse_status = c.RESULT_NO_SUCH_FUNCTION

    def __init__(
        self,
        host: str,
        port: int,
        login_name: str,
        password: str,
        *,
        node_id: int,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        smg_login_name: str | None = None,
        smg_password: str | None = None,
        window: int = 16,
        request_timeout: float = 10.0,
        idle_timeout: float | None = 60.0,
        reconnect_min: float = 0.5,
        reconnect_max: float = 30.0,
        on_deliver: DeliverHandler | None = None,
        on_state: Callable[[bool], None] | None = None,
        listen: bool = True,
    ) -> None:
        super().__init__(
            host,
            port,
            window=window,
            request_timeout=request_timeout,
            reconnect_min=reconnect_min,
            reconnect_max=reconnect_max,
            on_deliver=on_deliver,
            on_state=on_state,
        )
        self.login_name = login_name
        self.password = password
        self.node_id = node_id
        self.listen_host = listen_host
        self._listen_port = listen_port
        self.smg_login_name = smg_login_name
        self.smg_password = smg_password
        self.idle_timeout = idle_timeout
        self.listen = listen
        self.idle_closes = 0  # outgoing sessions closed for idleness
        self.smg_binds = 0  # Login Type 2 binds accepted on the listener
        self.smg_bind_failures = 0
        self.listener_sessions: set[Session] = set()
        self._want = asyncio.Event()  # somebody needs a bound session
        self._waiting = 0  # submit/wait_bound callers waiting for a session
        self._graceful = False  # the current session ended by Unbind (ours for idleness, or the SMG's)
        self._server: asyncio.AbstractServer | None = None

    # -- public API ----------------------------------------------------------------------------
    @property
    def listen_port(self) -> int:
        """The listener's port (the bound one after ``start`` when 0 was asked)."""
        return self._listen_port

    async def stop(self, timeout: float | None = None) -> None:
        """Wait (bounded) for outstanding responses, unbind, close both directions, end the supervisor."""
        timeout = self.request_timeout if timeout is None else timeout
        self._want.set()  # (with _stopping, set by ProtocolClient.stop before it first waits)
        await super().stop(timeout)
        if self._server is not None:
            self._server.close()
            listeners = list(self.listener_sessions)
            if listeners:
                await asyncio.gather(*(ls.close(min(timeout, 2.0)) for ls in listeners), return_exceptions=True)
            try:
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            except TimeoutError:
                pass
            self._server = None

    # -- outgoing session ----------------------------------------------------------------------
    @property
    def _account(self) -> str:
        return self.login_name

    async def _on_start(self) -> None:
        """Start the SP listener; the supervisor connects and binds right away."""
        if self.listen and self._server is None:
            self._server = await asyncio.get_running_loop().create_server(
                self._make_listener_session, self.listen_host, self._listen_port, reuse_address=True
            )
            self._listen_port = self._server.sockets[0].getsockname()[1]
        self._want.set()

    async def _wait_for_session(self) -> None:
        # opens a connection if there is none (the supervisor waits for demand)
        self._waiting += 1
        self._want.set()
        try:
            await self._bound_evt.wait()
        finally:
            self._waiting -= 1

    def _submit_status(self, resp: Any) -> int | None:
        return resp.result

    def _deliver_response(self, pdu: Any, ok: bool) -> Any:
        return c.response_for(pdu.command_id, c.RESULT_OK if ok else c.RESULT_SYSTEM_FAILURE, c.sequence_of(pdu))

    def _make_session(self) -> Session:
        # the SMG sends nothing but responses on the SP's outgoing connection: refuse any request
        return new_session(
            self.node_id,
            self._refuse,
            window=self.window,
            request_timeout=self.request_timeout,
            on_close=self._on_session_closed,
            name=f"{self.session_prefix} {self.login_name}@{self.host}:{self.port}",
        )

    def _on_session_closed(self, session: Session) -> None:
        cancel_idle_watch(session)
        super()._on_session_closed(session)

    def _on_idle(self, session: Session) -> None:
        self.idle_closes += 1
        self._graceful = True
        if self._waiting == 0:
            self._want.clear()

    def _bind_request(self) -> c.Bind:
        return c.Bind(login_type=c.LOGIN_SP_TO_SMG, login_name=self.login_name, login_password=self.password)

    def _check_bind_response(self, session: Session, request: c.Bind, resp: Any) -> None:
        if resp.result != c.RESULT_OK:
            why = " (illegal login: wrong login name or password)" if resp.result == c.RESULT_ILLEGAL_LOGIN else ""
            raise BindError(
                f"SGIP Bind as {self.login_name!r} to {self.host}:{self.port} refused: Result {resp.result}{why}",
                resp.result,
            )

    async def _connect_and_bind(self) -> Session:
        session = await super()._connect_and_bind()
        watch_idle(session, self.idle_timeout, self._on_idle)
        return session

    async def _supervise(self) -> None:
        delay = self.reconnect_min
        while not self._stopping:
            await self._want.wait()
            if self._stopping:
                break
            try:
                session = await self._connect_and_bind()
            except asyncio.CancelledError:
                raise
            except CONNECT_ERRORS as exc:
                self.last_error = exc
                log.warning("%s: %s; retry in %.1fs", self.name, exc, delay)
                await self._backoff(delay)
                delay = min(delay * 2, self.reconnect_max)
                continue
            self._graceful = False
            self._adopt(session)
            await asyncio.shield(session.closed)
            if self._stopping:
                break
            codec = session.codec
            if self._graceful or (isinstance(codec, SgipSessionCodec) and codec.peer_unbound):
                # idle close (ours) or Unbind from the SMG: reopen only when there is demand again
                delay = self.reconnect_min
                if self._waiting == 0:
                    self._want.clear()
                continue
            log.warning("%s: session lost; reconnecting", self.name)
            await self._backoff(delay)
            delay = min(delay * 2, self.reconnect_max)

    # -- the SP listener (SMG -> SP) -----------------------------------------------------------
    def _make_listener_session(self) -> Session:
        s = new_session(
            self.node_id,
            self._handle_incoming,
            window=self.window,
            request_timeout=self.request_timeout,
            on_close=self._on_listener_closed,
            name=f"sgip-sp-listener {self.login_name}",
        )
        self.listener_sessions.add(s)
        return s

    def _on_listener_closed(self, session: Session) -> None:
        self.listener_sessions.discard(session)
        cancel_idle_watch(session)

    def _handle_incoming(self, session: Session, pdu: Any) -> Any:
        cid = pdu.command_id
        if cid in self.deliver_commands:
            if not session.bound:
                return c.response_for(cid, c.RESULT_ILLEGAL_LOGIN, c.sequence_of(pdu))
            return self._deliver(session, pdu)
        if cid == c.BIND:
            return self._bind_incoming(session, pdu)
        return self._refuse(session, pdu)

    def _bind_incoming(self, session: Session, pdu: c.Bind) -> Any:
        seq = c.sequence_of(pdu)
        if session.bound:
            return c.BindResp(c.RESULT_REPEATED_LOGIN, "", *seq)
        if pdu.login_type != c.LOGIN_SMG_TO_SP:
            self.smg_bind_failures += 1
            return c.BindResp(c.RESULT_BAD_LOGIN_TYPE, "", *seq)
        if (self.smg_login_name is not None and pdu.login_name != self.smg_login_name) or (
            self.smg_password is not None and pdu.login_password != self.smg_password
        ):
            self.smg_bind_failures += 1
            log.warning("SGIP listener %s: SMG Bind as %r refused (illegal login)", self.login_name, pdu.login_name)
            return c.BindResp(c.RESULT_ILLEGAL_LOGIN, "", *seq)
        self.smg_binds += 1
        session.info["login_name"] = pdu.login_name
        session.info["login_type"] = pdu.login_type
        session.mark_bound()
        watch_idle(session, self.idle_timeout)
        return c.BindResp(c.RESULT_OK, "", *seq)
