"""SGIP 1.2 on the shared session engine: the ``Codec`` adapter, wire sequence numbers, idle closing.

The engine (``qixin.protocols.session``) allocates an int sequence per session (1, 2, 3 …), writes
it into ``pdu.sequence``, keys its window by it and matches responses by ``pdu.sequence`` alone. SGIP
needs more, and this module supplies it without touching the engine:

* **Wire sequences.** An SGIP sequence is node id + MMDDhhmmss + counter, and an SP's Submit
  sequence is also the carrier message id that Reports refer to, so it must be unique per node across
  connections and reconnects — the engine's per-session counter (restarting at 1 on every connection)
  is not. ``SgipSessionCodec.encode`` therefore stamps every outgoing *request* with the codec's node
  id, the current time (Beijing time, cached per second) and a counter from one process-wide counter
  per node id (``NodeCounter``), and rewrites ``pdu.node_id`` / ``pdu.timestamp`` / ``pdu.sequence``
  to those wire values: after ``session.request(pdu)`` returned, ``sequence_of(pdu)`` is the 12-byte
  sequence sent (``carrier_id(pdu)`` formats it). The engine keeps its own key (it offers its local
  sequence to the window after ``encode``), and the codec remembers wire counter -> (engine key,
  timestamp).
* **Tuple matching.** ``decode`` of a response looks its counter up in that table and accepts it only
  if node id and timestamp match too; then it sets ``pdu.sequence`` to the engine's key so the engine
  completes the right request. A response that matches nothing gets ``sequence`` 0, which the engine
  never allocates, so it is dropped as unknown. (So: a *response's* ``node_id``/``timestamp`` are the
  wire values, its ``sequence`` is the engine's key.) Entries of requests that expired or failed are
  pruned when the table outgrows the window by far (``attach`` gives the codec the session's window).
* **No heartbeat.** ``is_heartbeat`` is always False; sessions are created with
  ``heartbeat_interval=0``. Instead ``IdleWatch`` closes a session gracefully (Unbind) when nothing
  was sent or received for ``idle_timeout`` seconds and nothing is outstanding (detected within one
  to two idle periods); the layer above reopens a connection when there is traffic again.
* **Incoming requests** keep the peer's three parts; ``response_to`` / ``error_response`` echo them.
  A frame that fails to decode is answered with the matching response type and the full echoed
  sequence (read from the header) when the command is known; unknown commands get no answer (SGIP
  has no generic NACK).

One codec instance per session (it holds that session's outstanding-request table).
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import time
from collections.abc import Callable
from typing import Any, ClassVar

from qixin.protocols.errors import PduError
from qixin.protocols.session import Session
from qixin.protocols.sgip import codec as c
from qixin.protocols.window import Window

__all__ = [
    "IdleWatch",
    "NodeCounter",
    "SgipSessionCodec",
    "cancel_idle_watch",
    "carrier_id",
    "current_timestamp",
    "new_session",
    "watch_idle",
]

log = logging.getLogger(__name__)

_RESPONSE_BIT = 0x80000000
_SEQ = struct.Struct(">III")
_BEIJING = 8 * 3600
_ts_cache: list[int] = [-1, 0]  # [unix second, MMDDhhmmss]


def current_timestamp() -> int:
    """MMDDhhmmss of now in Beijing time (UTC+8), as the decimal number SGIP sequences carry."""
    sec = int(time.time())
    if sec != _ts_cache[0]:
        t = time.gmtime(sec + _BEIJING)
        _ts_cache[0] = sec
        _ts_cache[1] = c.sgip_timestamp(t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)
    return _ts_cache[1]


class NodeCounter:
    """The counter part of the sequences one node sends: one per node id per process, shared by all of
    its sessions, starting at a random value (so a restarted process is unlikely to repeat the previous
    one's sequences within the same second), wrapping at 2**32 and skipping 0."""

    _by_node: ClassVar[dict[int, NodeCounter]] = {}

    def __init__(self, start: int | None = None) -> None:
        self._next = start if start is not None else random.randrange(1, 1 << 31)

    @classmethod
    def for_node(cls, node_id: int) -> NodeCounter:
        counter = cls._by_node.get(node_id)
        if counter is None:
            counter = cls._by_node[node_id] = cls()
        return counter

    def next(self) -> int:
        n = self._next
        self._next = n + 1 if n < 0xFFFFFFFF else 1
        return n


def carrier_id(pdu: Any) -> str:
    """The carrier message id of a Submit that was sent: its wire sequence, ``node-MMDDhhmmss-counter``."""
    return c.format_sequence((pdu.node_id, pdu.timestamp, pdu.sequence))


class SgipSessionCodec:
    """The SGIP half of one ``Session`` (see the module docstring)."""

    header_size = c.HEADER_SIZE
    max_frame_size = c.MAX_FRAME_SIZE
    status_system_error = c.RESULT_SYSTEM_FAILURE

    def __init__(self, node_id: int, counter: NodeCounter | None = None) -> None:
        if not 0 <= node_id <= 0xFFFFFFFF:
            raise ValueError(f"SGIP node id {node_id} does not fit 32 bits")
        self.node_id = node_id
        self.counter = counter or NodeCounter.for_node(node_id)
        self.activity = 0  # frames encoded + decoded (IdleWatch compares it between ticks)
        self.peer_unbound = False  # the peer sent Unbind (a graceful end, not a fault)
        self.window: Window | None = None
        self._sent: dict[int, tuple[int, int]] = {}  # wire counter -> (engine key, timestamp)
        self._prune_at = 1024

    def attach(self, window: Window) -> None:
        self.window = window
        self._prune_at = max(1024, 4 * window.capacity)

    # -- frames ----------------------------------------------------------------------------------
    def decode(self, frame: bytes) -> Any:
        self.activity += 1
        try:
            pdu = c.decode(frame)
        except PduError as exc:
            if len(frame) >= c.HEADER_SIZE:
                exc.sgip_seq = c.SgipSeq(*_SEQ.unpack_from(frame, 8))  # type: ignore[attr-defined]
            raise
        if pdu.command_id & _RESPONSE_BIT:
            entry = self._sent.get(pdu.sequence)
            if entry is not None and pdu.node_id == self.node_id and pdu.timestamp == entry[1]:
                del self._sent[pdu.sequence]
                pdu.sequence = entry[0]
            else:
                pdu.sequence = 0  # matches no request of ours: the engine drops it
        elif pdu.command_id == c.UNBIND:
            self.peer_unbound = True
        return pdu

    def encode(self, pdu: Any) -> bytes:
        self.activity += 1
        if not pdu.command_id & _RESPONSE_BIT:
            key = pdu.sequence
            sent = self._sent
            if len(sent) >= self._prune_at:
                self._prune()
            wire = self.counter.next()
            ts = current_timestamp()
            pdu.node_id = self.node_id
            pdu.timestamp = ts
            pdu.sequence = wire
            sent[wire] = (key, ts)
        return c.encode(pdu)

    def _prune(self) -> None:
        window = self.window
        if window is None:
            self._sent.clear()
            return
        self._sent = {w: e for w, e in self._sent.items() if e[0] in window}
        self._prune_at = max(self._prune_at, 2 * len(self._sent))

    # -- engine hooks ----------------------------------------------------------------------------
    def is_response(self, pdu: Any) -> bool:
        return bool(pdu.command_id & _RESPONSE_BIT)

    def is_heartbeat(self, pdu: Any) -> bool:
        return False  # SGIP has no link test

    def heartbeat(self) -> Any:
        raise NotImplementedError("SGIP has no heartbeat PDU; run sessions with heartbeat_interval=0")

    def is_unbind(self, pdu: Any) -> bool:
        return pdu.command_id == c.UNBIND

    def unbind(self) -> Any:
        return c.Unbind()

    def response_to(self, request: Any, status: int = 0) -> Any:
        return c.response_for(request.command_id, status, c.sequence_of(request))

    def error_response(self, request: Any, status: int) -> Any:
        return c.response_for(request.command_id, status, c.sequence_of(request))

    def error_for_frame(self, exc: PduError) -> Any | None:
        if exc.command_id & _RESPONSE_BIT:
            return None  # never answer a response
        seq = getattr(exc, "sgip_seq", None)
        if seq is None:
            return None
        return c.response_for(exc.command_id, exc.status or c.RESULT_BAD_PARAMETER_FORMAT, seq)


class IdleWatch:
    """Closes ``session`` gracefully once no frame went either way for ``idle_timeout`` seconds and no
    request is outstanding. ``on_idle`` runs just before the close starts."""

    def __init__(self, session: Session, idle_timeout: float, on_idle: Callable[[Session], None] | None = None):
        self.session = session
        self.idle_timeout = idle_timeout
        self.on_idle = on_idle
        self._seen = -1
        self._task: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = self._loop.call_later(idle_timeout, self._tick)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        self._timer = None
        s = self.session
        if s.is_closed or not s.bound:
            if not s.is_closed:
                self._timer = self._loop.call_later(self.idle_timeout, self._tick)
            return
        codec = s.codec
        activity = getattr(codec, "activity", 0)
        if activity == self._seen and len(s.window) == 0:
            log.info("session %s idle for %.1fs: unbinding", s.name, self.idle_timeout)
            if self.on_idle is not None:
                try:
                    self.on_idle(s)
                except Exception:
                    log.exception("on_idle callback failed")
            self._task = self._loop.create_task(s.close(min(self.idle_timeout, 5.0)))
            return
        self._seen = activity
        self._timer = self._loop.call_later(self.idle_timeout, self._tick)


def watch_idle(session: Session, idle_timeout: float | None, on_idle: Callable[[Session], None] | None = None) -> None:
    """Give a freshly bound ``session`` an ``IdleWatch`` (kept in ``session.info["idle"]``) when
    ``idle_timeout`` is set."""
    if idle_timeout:
        session.info["idle"] = IdleWatch(session, idle_timeout, on_idle)


def cancel_idle_watch(session: Session) -> None:
    """Stop the session's ``IdleWatch``, if it has one (call it when the session closed)."""
    watch = session.info.get("idle")
    if watch is not None:
        watch.cancel()


def new_session(
    node_id: int,
    handler: Any,
    *,
    window: int,
    request_timeout: float,
    on_close: Callable[[Session], None] | None = None,
    name: str = "",
) -> Session:
    """A ``Session`` speaking SGIP for ``node_id``: its own codec, no heartbeat."""
    codec = SgipSessionCodec(node_id)
    session = Session(
        codec,
        handler,
        window=window,
        request_timeout=request_timeout,
        heartbeat_interval=0,
        on_close=on_close,
        name=name,
    )
    codec.attach(session.window)
    return session
