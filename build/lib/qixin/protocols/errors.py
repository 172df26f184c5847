"""Exceptions shared by every protocol codec and session (SMPP, CMPP, SGIP, SMGP)."""

from __future__ import annotations


class PduError(ValueError):
    """A frame or PDU could not be decoded (or encoded).

    Decoders raise only this exception on malformed input. When the header could be read,
    ``command_id`` and ``sequence`` identify the offending PDU so the session can answer it with an
    error response; ``status`` is the protocol status code to answer with (0 = unknown).
    """

    def __init__(self, message: str, *, command_id: int = 0, sequence: int = 0, status: int = 0) -> None:
        super().__init__(message)
        self.command_id = command_id
        self.sequence = sequence
        self.status = status


class SessionClosed(ConnectionError):
    """The session is closed (or was closed while a request was outstanding)."""


class RequestTimeout(TimeoutError):
    """No response arrived for a request within the window's request timeout."""


class WindowFull(RuntimeError):
    """``offer`` was called without a free slot in the window."""


class BindError(ConnectionError):
    """The peer refused our bind / login request."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status
