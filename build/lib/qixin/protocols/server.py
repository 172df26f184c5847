"""The server role shared by every protocol (SMPP SMSC; CMPP ISMG, SGIP SMG, SMGP SMGW): ``ProtocolServer``.

Used by the carrier simulators and, later, by the customer-facing ports.

Rules:

* ``start`` listens (``port`` 0 picks a free port; ``start`` returns it and sets ``port``). Every
  accepted connection is a ``Session`` in ``sessions`` until it closes.
* The protocol's bind / login request is authenticated by the subclass; on success the session is
  marked bound, ``session.info[account_key]`` names the account (plus protocol details such as the
  bind kind or version), the session is renamed ``"<prefix> <account>@<peer>"``, and ``on_bind(session)``
  runs right after the bind answer is queued, so nothing pushed from it overtakes that answer. A
  second bind on a bound session is refused. ``on_unbind(session)`` runs when a session that was bound
  closes (for whatever reason).
* Every submit on a bound session (and allowed to send) goes to ``handler(session, pdu)``, which
  returns the response, an awaitable of it, or None (it answers later via ``session.send``, or never);
  a submit before the bind is refused without reaching the handler.
* ``deliver(session, pdu)`` pushes a delivery (status report or MO) through the session's window
  (waiting for a slot) and returns the future of its answer.
* Keepalive and unbind are answered by the session engine.
* ``stop`` stops listening, unbinds every session (bounded by ``timeout``) and closes; ``abort_all``
  drops every connection at once (fault injection).

A protocol's server subclasses ``ProtocolServer`` and states only what differs: its codec, its request
dispatch (``_handle``) and how a bind is judged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, ClassVar

from qixin.protocols.session import Codec, Session

__all__ = ["ProtocolServer", "password_verdict"]

log = logging.getLogger(__name__)


def password_verdict(
    authenticator: Callable[[str, str], bool | int], name: str, password: str, ok: int, refused: int
) -> int:
    """The status answering a bind checked by ``authenticator(name, password)``: ``ok`` when it returns
    True, ``refused`` when it returns False or raises, otherwise the status it returned."""
    try:
        verdict = authenticator(name, password)
    except Exception:
        log.exception("authenticator failed")
        verdict = False
    if verdict is True:
        return ok
    if verdict is False:
        return refused
    return int(verdict)


class ProtocolServer:
    """The protocol-independent half of a server (see the module docstring)."""

    session_prefix: ClassVar[str]  # "smpp-server": the name of a session before (and after) its bind
    account_key: ClassVar[str]  # the ``session.info`` key naming the account once bound
    heartbeat_interval: float = 30.0
    heartbeat_retries: int = 3

    codec: Codec

    def __init__(
        self,
        host: str,
        port: int,
        handler: Callable[[Session, Any], Any],
        *,
        window: int,
        request_timeout: float,
        on_bind: Callable[[Session], None] | None,
        on_unbind: Callable[[Session], None] | None,
    ) -> None:
        self.host = host
        self.port = port
        self.handler = handler
        self.window = window
        self.request_timeout = request_timeout
        self.on_bind = on_bind
        self.on_unbind = on_unbind
        self.sessions: set[Session] = set()
        self._server: asyncio.AbstractServer | None = None

    # -- public API ----------------------------------------------------------------------------
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
        sessions = self._all_sessions()
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
        for s in self._all_sessions():
            s.abort()

    async def deliver(self, session: Session, pdu: Any) -> asyncio.Future[Any]:
        """Push a delivery (waits for a window slot); returns the future of its answer."""
        return await session.request(pdu)

    # -- what a protocol states ----------------------------------------------------------------
    def _handle(self, session: Session, pdu: Any) -> Any:
        """The session's request handler: dispatch binds and submits, refuse the rest."""
        raise NotImplementedError

    def _can_receive(self, session: Session) -> bool:
        """Whether a bound session may be offered deliveries (not a send-only bind)."""
        return True

    # -- internals -----------------------------------------------------------------------------
    def _all_sessions(self) -> list[Session]:
        return list(self.sessions)

    def _bound_sessions(self, account: str | None, receiving: bool = False) -> list[Session]:
        out = []
        for s in self.sessions:
            if not s.bound:
                continue
            if account is not None and s.info.get(self.account_key) != account:
                continue
            if receiving and not self._can_receive(s):
                continue
            out.append(s)
        return out

    def _new_session(self) -> Session:
        return Session(
            self.codec,
            self._handle,
            window=self.window,
            request_timeout=self.request_timeout,
            heartbeat_interval=self.heartbeat_interval,
            heartbeat_retries=self.heartbeat_retries,
            on_close=self._on_close,
            name=self.session_prefix,
        )

    def _make_session(self) -> Session:
        s = self._new_session()
        self.sessions.add(s)
        return s

    def _on_close(self, session: Session) -> None:
        self.sessions.discard(session)
        if session.info.get(self.account_key) is not None and self.on_unbind is not None:
            self.on_unbind(session)

    def _accept(self, session: Session, account: str, **info: Any) -> None:
        """The bind of ``account`` succeeded: record it, mark the session bound, schedule ``on_bind``."""
        session.info[self.account_key] = account
        session.info.update(info)
        session.name = f"{self.session_prefix} {account}@{session.peer}"
        session.mark_bound()
        if self.on_bind is not None:
            # after the bind answer is queued, so nothing we push overtakes it
            asyncio.get_running_loop().call_soon(self.on_bind, session)
