"""What a listening port tolerates from the connections it accepts: ``ListenerLimits`` and ``ConnectionGate``.

Every TCP server the package ships (the carrier simulators, customer-facing protocol ports, the SGIP SP
listener the SMG connects back to) takes a ``ListenerLimits`` in its constructor (``limits=``; the
defaults below when omitted) and enforces it through the session engine, whatever the protocol:

* ``login_timeout``: a connection that is not bound (logged in) this many seconds after it was accepted
  is closed. Keepalives and refused binds do not extend it.
* ``frame_timeout``: once the first byte of a frame arrived, the whole frame (as long as its length
  field says) must arrive within this many seconds, or the connection is dropped (slowloris).
* ``max_connections``: open connections on this listener; one accepted beyond it is closed at once.
* ``max_per_source``: open connections from one source address; one beyond it is closed at once.
* ``max_frame``: the largest frame accepted, in bytes (0: the protocol's own maximum; a smaller value
  lowers it). A length field below the protocol's header size or above this closes the connection,
  after the protocol's answer where it has one (SMPP: generic_nack, command_length invalid).

A value of 0 switches a timeout or a cap off. The caps keep a flood of idle or half-open connections
from taking every file descriptor of the process (the HTTP API shares it): what is over a cap costs
one accept and one close, and what is under it is gone after the login timeout.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

__all__ = ["ConnectionGate", "ListenerLimits", "source_of"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ListenerLimits:
    login_timeout: float = 10.0  # seconds from accept to a successful bind
    frame_timeout: float = 10.0  # seconds from a frame's first byte to its last
    max_connections: int = 128  # open connections on the listener
    max_per_source: int = 64  # open connections from one source address (a channel has at most 64)
    max_frame: int = 0  # bytes; 0 = the protocol's own maximum

    def __post_init__(self) -> None:
        for name in ("login_timeout", "frame_timeout", "max_connections", "max_per_source", "max_frame"):
            if getattr(self, name) < 0:
                raise ValueError(f"ListenerLimits.{name} must be >= 0")


def source_of(peer: Any) -> str:
    """The source address of a peer as ``get_extra_info("peername")`` gives it (host of a TCP peer)."""
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer)


class ConnectionGate:
    """Counts a listener's open connections, in total and per source, against its ``ListenerLimits``.

    ``admit(source)`` takes a place (returns None) or says why there is none (the caller closes the
    connection); every admitted connection gives its place back with ``release(source)`` once closed.
    ``refused`` counts the connections turned away.
    """

    def __init__(self, limits: ListenerLimits, name: str = "") -> None:
        self.limits = limits
        self.name = name
        self.open = 0
        self.by_source: dict[str, int] = {}
        self.refused = 0

    def admit(self, source: str) -> str | None:
        lim = self.limits
        n = self.by_source.get(source, 0)
        why = None
        if lim.max_connections and self.open >= lim.max_connections:
            why = f"listener full ({lim.max_connections} connections)"
        elif lim.max_per_source and n >= lim.max_per_source:
            why = f"{lim.max_per_source} connections from {source} already"
        if why is not None:
            self.refused += 1
            if self.refused & (self.refused - 1) == 0:  # 1st, 2nd, 4th, 8th …: no log flood under attack
                log.warning(
                    "%s: connection from %s refused: %s (%d refused so far)", self.name, source, why, self.refused
                )
            return why
        self.open += 1
        self.by_source[source] = n + 1
        return None

    def release(self, source: str) -> None:
        self.open = max(0, self.open - 1)
        n = self.by_source.get(source, 0) - 1
        if n > 0:
            self.by_source[source] = n
        else:
            self.by_source.pop(source, None)
