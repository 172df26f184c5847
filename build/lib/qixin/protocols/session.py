"""One session engine for every protocol and both roles (client/ESME and server/SMSC).

Rules of this module:

* It knows nothing of any particular protocol. Everything protocol-specific comes from a ``Codec``
  object: how to decode and encode a frame, which command is a response, which is the keepalive, which
  is the unbind, and how to answer a request with an error.
* It does not know which role it plays. Client and server differ only in who sends the bind (done by
  the layer above through ``request``) and in the request handler they install.
* Framing: every supported protocol (SMPP, CMPP, SGIP, SMGP) starts a frame with a 4-byte big-endian
  total length that includes itself. A length below ``codec.header_size`` or above
  ``codec.max_frame_size`` cannot be resynchronised: the connection is closed.
* A frame whose length is sane but whose body does not decode gets an error response
  (``codec.error_response``) when the header could be read; the session stays up.
* Sequence numbers are allocated here (1 … 0x7FFFFFFF, wrapping, skipping any still outstanding)
  and written into ``pdu.sequence``. Outgoing requests go through the ``Window``; responses are
  matched to requests by sequence number only.
* Keepalive and unbind are answered by the engine itself, never by the handler. A keepalive request
  is sent when nothing was received for ``heartbeat_interval`` seconds; it bypasses the window's
  capacity. ``heartbeat_retries`` consecutive unanswered keepalives close the session.
* Every other incoming request goes to ``handler(session, pdu)``, which returns the response PDU,
  ``None`` (it will answer later with ``send``) or an awaitable of either. A handler that raises is
  answered with ``codec.error_response(pdu, codec.status_system_error)``.
* Graceful close (``close``): send unbind, wait for its response (bounded), close the transport.
  When the peer sends unbind we answer it and close. When the connection is lost, every outstanding
  request fails with ``SessionClosed`` and ``closed`` resolves.
* Writes made during one event-loop iteration are coalesced into one ``transport.write``.

State machine (``state``), transitions as a table:

    OPEN --bound--> BOUND --unbind--> UNBINDING --lost--> CLOSED
    OPEN --unbind--> UNBINDING;  any --lost--> CLOSED
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from qixin.protocols.errors import PduError, RequestTimeout, SessionClosed
from qixin.protocols.window import Window

__all__ = ["Codec", "Handler", "Pdu", "Session", "SessionState"]

log = logging.getLogger(__name__)

MAX_SEQUENCE = 0x7FFFFFFF


class Pdu(Protocol):
    """What the engine needs of a PDU object."""

    command_id: int
    sequence: int


class Codec(Protocol):
    """The protocol-specific half of a session. One instance may serve many sessions."""

    header_size: int  # smallest valid frame
    max_frame_size: int  # largest frame accepted
    status_system_error: int  # status used to answer a request the handler failed on

    def decode(self, frame: bytes) -> Any:
        """Decode one complete frame (length prefix included). Raises only ``PduError``."""

    def encode(self, pdu: Any) -> bytes:
        """Encode one PDU (its ``sequence`` already set) into a complete frame."""

    def is_response(self, pdu: Any) -> bool: ...

    def is_heartbeat(self, pdu: Any) -> bool: ...

    def heartbeat(self) -> Any:
        """A new keepalive request (enquire_link, active_test)."""

    def is_unbind(self, pdu: Any) -> bool: ...

    def unbind(self) -> Any:
        """A new unbind / terminate request."""

    def response_to(self, request: Any, status: int = 0) -> Any:
        """The plain response to ``request`` (keepalive and unbind responses)."""

    def error_response(self, request: Any, status: int) -> Any:
        """The response telling the peer ``request`` failed with ``status``."""

    def error_for_frame(self, exc: PduError) -> Any | None:
        """The response to a frame that failed to decode, or None to send nothing."""


Handler = Callable[["Session", Any], Any]


class SessionState(enum.Enum):
    OPEN = "open"
    BOUND = "bound"
    UNBINDING = "unbinding"
    CLOSED = "closed"


_TRANSITIONS: dict[tuple[SessionState, str], SessionState] = {
    (SessionState.OPEN, "bound"): SessionState.BOUND,
    (SessionState.OPEN, "unbind"): SessionState.UNBINDING,
    (SessionState.BOUND, "unbind"): SessionState.UNBINDING,
    (SessionState.UNBINDING, "unbind"): SessionState.UNBINDING,
    (SessionState.OPEN, "lost"): SessionState.CLOSED,
    (SessionState.BOUND, "lost"): SessionState.CLOSED,
    (SessionState.UNBINDING, "lost"): SessionState.CLOSED,
    (SessionState.CLOSED, "lost"): SessionState.CLOSED,
}


class Session(asyncio.Protocol):
    """An asyncio ``Protocol`` running one connection of any supported protocol, in either role."""

    def __init__(
        self,
        codec: Codec,
        handler: Handler | None = None,
        *,
        window: int = 64,
        request_timeout: float = 10.0,
        heartbeat_interval: float = 30.0,
        heartbeat_retries: int = 3,
        on_close: Callable[[Session], None] | None = None,
        name: str = "",
    ) -> None:
        self.codec = codec
        self.handler = handler
        self.window = Window(window, request_timeout)
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_retries = heartbeat_retries
        self.on_close = on_close
        self.name = name
        self.state = SessionState.OPEN
        self.transport: asyncio.Transport | None = None
        self.peer: Any = None
        self.info: dict[str, Any] = {}  # free slot for the layer above (system_id, bind type …)
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._loop = asyncio.get_running_loop()
        self._buf = bytearray()
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._seq = 0
        self._last_rx = 0.0
        self._hb_failures = 0
        self._hb_outstanding = False
        self._hb_timer: asyncio.TimerHandle | None = None
        self._paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- state ---------------------------------------------------------------------------------
    def _transition(self, event: str) -> None:
        new = _TRANSITIONS.get((self.state, event))
        if new is None:
            raise RuntimeError(f"session {self.name}: {event!r} not allowed in state {self.state.value}")
        self.state = new

    def mark_bound(self) -> None:
        """Called by the layer above once the bind/login exchange succeeded."""
        self._transition("bound")

    @property
    def bound(self) -> bool:
        return self.state is SessionState.BOUND

    @property
    def is_closed(self) -> bool:
        return self.state is SessionState.CLOSED

    # -- asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transport is not a subclass of asyncio.Transport, but has the same interface
        self.transport = transport  # type: ignore[assignment]
        self.peer = transport.get_extra_info("peername")
        self._last_rx = self._loop.time()
        if self.heartbeat_interval > 0:
            self._hb_timer = self._loop.call_later(self.heartbeat_interval, self._heartbeat_tick)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transition("lost")
        if self._hb_timer is not None:
            self._hb_timer.cancel()
            self._hb_timer = None
        self._out.clear()
        self.window.fail_all(SessionClosed(f"session {self.name} closed" + (f": {exc}" if exc else "")))
        for w in self._drain_waiters:
            if not w.done():
                w.set_exception(SessionClosed("session closed"))
        self._drain_waiters.clear()
        if not self.closed.done():
            self.closed.set_result(None)
        if self.on_close is not None:
            try:
                self.on_close(self)
            except Exception:
                log.exception("on_close callback failed")

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        waiters, self._drain_waiters = self._drain_waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    def eof_received(self) -> bool:
        return False  # close our side too

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        n = len(buf)
        pos = 0
        codec = self.codec
        header_size = codec.header_size
        max_frame = codec.max_frame_size
        self._last_rx = self._loop.time()
        while n - pos >= 4:
            length = int.from_bytes(buf[pos : pos + 4], "big")
            if length < header_size or length > max_frame:
                log.warning("session %s: invalid frame length %d, closing", self.name, length)
                del buf[:]
                self.abort()
                return
            if n - pos < length:
                break
            frame = bytes(buf[pos : pos + length])
            pos += length
            self._on_frame(frame)
            if self.transport is None or self.transport.is_closing():
                del buf[:]
                return
        if pos:
            del buf[:pos]

    # -- incoming ------------------------------------------------------------------------------
    def _on_frame(self, frame: bytes) -> None:
        codec = self.codec
        try:
            pdu = codec.decode(frame)
        except PduError as exc:
            log.warning("session %s: bad PDU: %s", self.name, exc)
            reply = codec.error_for_frame(exc)
            if reply is not None:
                self.send(reply)
            return
        if codec.is_response(pdu):
            if not self.window.complete(pdu.sequence, pdu):
                log.debug("session %s: response to unknown sequence %d", self.name, pdu.sequence)
            return
        if codec.is_heartbeat(pdu):
            self.send(codec.response_to(pdu))
            return
        if codec.is_unbind(pdu):
            if self.state is not SessionState.CLOSED:
                self._transition("unbind")
            self.send(codec.response_to(pdu))
            self._flush()
            if self.transport is not None:
                self.transport.close()
            return
        handler = self.handler
        if handler is None:
            self.send(codec.error_response(pdu, codec.status_system_error))
            return
        try:
            result = handler(self, pdu)
        except Exception:
            log.exception("session %s: handler failed", self.name)
            self.send(codec.error_response(pdu, codec.status_system_error))
            return
        if result is None:
            return
        if isinstance(result, Awaitable):
            task = self._loop.create_task(self._await_handler(pdu, result))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        self.send(result)

    async def _await_handler(self, pdu: Any, result: Awaitable[Any]) -> None:
        try:
            resp = await result
        except Exception:
            log.exception("session %s: handler failed", self.name)
            resp = self.codec.error_response(pdu, self.codec.status_system_error)
        if resp is not None and not self.is_closed:
            self.send(resp)

    # -- outgoing ------------------------------------------------------------------------------
    def _next_sequence(self) -> int:
        seq = self._seq
        window = self.window
        while True:
            seq = seq + 1 if seq < MAX_SEQUENCE else 1
            if seq not in window:
                self._seq = seq
                return seq

    def send(self, pdu: Any) -> None:
        """Write a PDU as is (responses; or requests whose ``sequence`` the caller set)."""
        if self.transport is None or self.state is SessionState.CLOSED:
            raise SessionClosed(f"session {self.name} is closed")
        self._out.append(self.codec.encode(pdu))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        out = self._out
        if not out:
            return
        transport = self.transport
        if transport is None or transport.is_closing():
            out.clear()
            return
        transport.write(out[0] if len(out) == 1 else b"".join(out))
        out.clear()

    def _send_request(self, pdu: Any, force: bool = False) -> asyncio.Future[Any]:
        if self.transport is None or self.state is SessionState.CLOSED:
            if not force:
                self.window.release()
            raise SessionClosed(f"session {self.name} is closed")
        seq = self._next_sequence()
        pdu.sequence = seq
        try:
            data = self.codec.encode(pdu)
        except BaseException:
            if not force:
                self.window.release()
            raise
        fut = self.window.offer(seq, force=force)
        self._out.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        return fut

    async def request(self, pdu: Any) -> asyncio.Future[Any]:
        """Wait for a window slot (and for the transport to accept writes), send ``pdu`` as a request,
        and return the future of its response."""
        if self._paused:
            await self._drain()
        await self.window.acquire()
        return self._send_request(pdu)

    def try_request(self, pdu: Any) -> asyncio.Future[Any] | None:
        """Send ``pdu`` as a request if a window slot is free right now; otherwise return None."""
        if self.transport is None or self.state is SessionState.CLOSED or not self.window.try_acquire():
            return None
        return self._send_request(pdu)

    def request_forced(self, pdu: Any) -> asyncio.Future[Any]:
        """Send a request regardless of window capacity (keepalive, unbind)."""
        return self._send_request(pdu, force=True)

    async def _drain(self) -> None:
        fut: asyncio.Future[None] = self._loop.create_future()
        self._drain_waiters.append(fut)
        await fut

    # -- keepalive -----------------------------------------------------------------------------
    def _heartbeat_tick(self) -> None:
        self._hb_timer = None
        if self.state is SessionState.CLOSED or self.transport is None:
            return
        now = self._loop.time()
        idle = now - self._last_rx
        delay = self.heartbeat_interval
        if idle >= self.heartbeat_interval and not self._hb_outstanding:
            self._send_heartbeat()
        elif idle < self.heartbeat_interval:
            delay = self.heartbeat_interval - idle
        self._hb_timer = self._loop.call_later(max(delay, 0.01), self._heartbeat_tick)

    def _send_heartbeat(self) -> None:
        try:
            fut = self.request_forced(self.codec.heartbeat())
        except SessionClosed:
            return
        self._hb_outstanding = True
        fut.add_done_callback(self._heartbeat_done)

    def _heartbeat_done(self, fut: asyncio.Future[Any]) -> None:
        self._hb_outstanding = False
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is None:
            self._hb_failures = 0
            return
        if isinstance(exc, RequestTimeout):
            self._hb_failures += 1
            log.warning(
                "session %s: keepalive unanswered (%d/%d)",
                self.name,
                self._hb_failures,
                self.heartbeat_retries,
            )
            if self._hb_failures >= self.heartbeat_retries:
                self.abort()
            elif self.state is not SessionState.CLOSED:
                self._send_heartbeat()

    # -- closing -------------------------------------------------------------------------------
    async def close(self, timeout: float = 5.0) -> None:
        """Graceful close: unbind, wait (at most ``timeout``) for the answer, close the transport."""
        if self.transport is None or self.state is SessionState.CLOSED:
            return
        if self.state is not SessionState.UNBINDING:
            self._transition("unbind")
            try:
                fut = self.request_forced(self.codec.unbind())
                await asyncio.wait_for(fut, timeout)
            except (SessionClosed, TimeoutError, RequestTimeout, ConnectionError):
                pass
        self._flush()
        if self.transport is not None:
            self.transport.close()
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), timeout)
        except TimeoutError:
            self.abort()

    def abort(self) -> None:
        """Drop the connection now (fault handling, tests)."""
        if self.transport is not None:
            self.transport.abort()
