"""The outstanding-request window, shared by every protocol (SMPP, CMPP, SGIP, SMGP).

Rules:

* The window holds at most ``capacity`` requests that were sent and not yet answered. Every request
  gets an ``asyncio.Future`` that resolves with the response PDU, or fails with ``RequestTimeout``
  after ``timeout`` seconds, or with whatever exception ``fail_all`` is given (``SessionClosed``).
* A slot is taken in two steps: ``await acquire()`` reserves a slot (waiting, in FIFO order, while the
  window is full), then ``offer(key)`` turns the reservation into an outstanding request. ``offer``
  without a reservation takes a free slot directly or raises ``WindowFull``; ``offer(key, force=True)``
  ignores capacity (used for keepalives and unbind, which must never wait behind traffic).
* ``release()`` gives back a reservation that will not be used.
* Keys are whatever identifies a request on the wire (the sequence number); the window knows nothing
  of protocols. A key may be reused only after its previous request finished.
* Expiry: every request has the same timeout, so deadlines grow with insertion order and a plain deque
  is a correct timer queue. One ``call_at`` timer is armed for the oldest live deadline; completing a
  request does not touch the deque (stale entries are skipped when they reach the head).
* If a caller cancels its future, the slot stays taken until the response arrives or the request
  expires: the peer still owes an answer for it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable
from typing import Any

from qixin.protocols.errors import RequestTimeout, SessionClosed, WindowFull

__all__ = ["Window"]


class Window:
    __slots__ = (
        "_closed_exc",
        "_deadlines",
        "_empty_waiters",
        "_loop",
        "_pending",
        "_reserved",
        "_timer",
        "_waiters",
        "capacity",
        "timeout",
    )

    def __init__(self, capacity: int, timeout: float, *, loop: asyncio.AbstractEventLoop | None = None) -> None:
        if capacity < 1:
            raise ValueError("window capacity must be >= 1")
        if timeout <= 0:
            raise ValueError("request timeout must be > 0")
        self.capacity = capacity
        self.timeout = timeout
        self._loop = loop
        self._pending: dict[Hashable, asyncio.Future[Any]] = {}
        self._deadlines: deque[tuple[float, Hashable, asyncio.Future[Any]]] = deque()
        self._reserved = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._empty_waiters: list[asyncio.Future[None]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._closed_exc: BaseException | None = None

    # -- introspection -------------------------------------------------------------------------
    def __len__(self) -> int:
        """Number of outstanding (sent, unanswered) requests."""
        return len(self._pending)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._pending

    @property
    def free(self) -> int:
        """Slots neither outstanding nor reserved."""
        return self.capacity - len(self._pending) - self._reserved

    @property
    def closed(self) -> bool:
        return self._closed_exc is not None

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    # -- taking slots --------------------------------------------------------------------------
    async def acquire(self) -> None:
        """Reserve a slot, waiting while the window is full. Raises the close exception if closed."""
        if self._closed_exc is not None:
            raise self._closed_exc
        if not self._waiters and self.free > 0:
            self._reserved += 1
            return
        waiter: asyncio.Future[None] = self._get_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                # We were granted a slot but got cancelled before using it: give it on.
                self.release()
            else:
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    pass
            raise

    def try_acquire(self) -> bool:
        """Reserve a slot without waiting; False if none is free."""
        if self._closed_exc is None and not self._waiters and self.free > 0:
            self._reserved += 1
            return True
        return False

    def release(self) -> None:
        """Give back a reservation obtained from ``acquire``/``try_acquire``."""
        if self._reserved > 0:
            self._reserved -= 1
        self._wake()

    def offer(self, key: Hashable, *, force: bool = False) -> asyncio.Future[Any]:
        """Register an outstanding request under ``key`` and return the future for its response."""
        if self._closed_exc is not None:
            raise self._closed_exc
        if key in self._pending:
            raise ValueError(f"request {key!r} is already outstanding")
        if self._reserved > 0 and not force:
            self._reserved -= 1
        elif not force and self.free <= 0:
            raise WindowFull(f"window full ({self.capacity} outstanding)")
        loop = self._get_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._pending[key] = fut
        deadline = loop.time() + self.timeout
        self._deadlines.append((deadline, key, fut))
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._expire)
        return fut

    # -- finishing requests --------------------------------------------------------------------
    def complete(self, key: Hashable, pdu: Any) -> bool:
        """Resolve the request ``key`` with ``pdu``. False if no such request is outstanding."""
        fut = self._pending.pop(key, None)
        if fut is None:
            return False
        if not fut.done():
            fut.set_result(pdu)
        # Responses mostly come back in order: trim answered entries off the head so the deadline
        # queue stays about as long as the window instead of growing for a whole timeout period.
        dq = self._deadlines
        pending = self._pending
        while dq and pending.get(dq[0][1]) is not dq[0][2]:
            dq.popleft()
        self._wake()
        return True

    def fail(self, key: Hashable, exc: BaseException) -> bool:
        fut = self._pending.pop(key, None)
        if fut is None:
            return False
        if not fut.done():
            fut.set_exception(exc)
        self._wake()
        return True

    def fail_all(self, exc: BaseException | None = None, *, close: bool = True) -> int:
        """Fail every outstanding request (default ``SessionClosed``). With ``close`` the window
        refuses further use and wakes every waiter with the same exception."""
        if exc is None:
            exc = SessionClosed("session closed")
        pending, self._pending = self._pending, {}
        self._deadlines.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(exc)
        if close:
            self._closed_exc = exc
            waiters, self._waiters = self._waiters, deque()
            for w in waiters:
                if not w.done():
                    w.set_exception(exc)
            self._reserved = 0
        self._notify_empty()
        return len(pending)

    def expire(self) -> int:
        """Fail every request whose deadline has passed; return how many. Normally timer-driven."""
        loop = self._get_loop()
        now = loop.time()
        dq = self._deadlines
        pending = self._pending
        n = 0
        while dq:
            deadline, key, fut = dq[0]
            if pending.get(key) is not fut:
                dq.popleft()  # already answered (or key reused): stale entry
                continue
            if deadline > now:
                break
            dq.popleft()
            del pending[key]
            if not fut.done():
                fut.set_exception(RequestTimeout(f"no response to request {key!r} within {self.timeout}s"))
            n += 1
        if n:
            self._wake()
        return n

    def _expire(self) -> None:
        self._timer = None
        self.expire()
        dq = self._deadlines
        pending = self._pending
        while dq and pending.get(dq[0][1]) is not dq[0][2]:
            dq.popleft()
        if dq:
            self._timer = self._get_loop().call_at(dq[0][0], self._expire)

    async def wait_empty(self) -> None:
        """Wait until no request is outstanding."""
        if not self._pending:
            return
        fut: asyncio.Future[None] = self._get_loop().create_future()
        self._empty_waiters.append(fut)
        await fut

    # -- internals -----------------------------------------------------------------------------
    def _wake(self) -> None:
        waiters = self._waiters
        while waiters and self.free > 0:
            w = waiters.popleft()
            if not w.done():
                self._reserved += 1
                w.set_result(None)
        if not self._pending and self._empty_waiters:
            self._notify_empty()

    def _notify_empty(self) -> None:
        waiters, self._empty_waiters = self._empty_waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)
