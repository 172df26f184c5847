"""The client role shared by every protocol (SMPP ESME; CMPP, SGIP and SMGP SP): ``ProtocolClient``.

Rules:

* One connection per client; a channel connector runs several clients for several connections.
* ``start`` runs a supervisor task: connect, bind (log in), and whenever the connect or the bind fails
  or the session is lost, try again after an exponential backoff (``reconnect_min`` …
  ``reconnect_max``, each wait jittered to 50–100 %), until ``stop``. A successful bind resets the
  backoff. ``last_error`` says why the last attempt failed (None once bound), ``binds`` counts the
  successful binds, and ``on_state(bound)`` hears of every bind and every loss.
* ``wait_bound(timeout)`` waits for a bound session: ``TimeoutError`` (chained to ``last_error``) if
  not in time, ``SessionClosed`` once the client is stopping.
* ``submit`` is the only way to send traffic: it waits for a bound session, for the throttle pause and
  for a window slot, writes the PDU and returns the future of its response without creating a task. A
  caller pipelines by calling ``submit`` many times and gathering the futures later.
* A submit that was not written yet when the session dropped is written on the next session; one that
  was written fails with ``SessionClosed`` (the caller decides whether to resubmit: the peer may have
  accepted it), or with ``RequestTimeout`` when the peer did not answer within ``request_timeout``
  (counted in ``timeouts``).
* Throttling answers (``throttle_statuses``: the protocol's "too fast" / "queue full" statuses)
  resolve the future normally and are counted in ``throttled``; the client also pauses all sending for
  a short, doubling delay (50 ms … 1 s) that resets on the next accepted submit. Only the first
  throttling answer after a pause ended escalates it (answers to submits already in flight do not).
* Deliveries (status reports and MO) go to ``on_deliver``; the client answers them itself after
  ``on_deliver`` returns: success, or the protocol's retry status (the peer delivers it again) when
  ``on_deliver`` raised. When ``on_deliver`` returns an ``asyncio.Future`` (the receiver's promise to
  store the PDU durably), the answer waits for it: success when it succeeds, the retry status when it
  fails, and no answer at all when the session closed meanwhile (the peer delivers it again after the
  next bind). Any other request the peer sends on the client's session is refused
  (``refuse_status``): not ours to serve.
* Keepalive both ways is done by the session engine; ``heartbeat_retries`` unanswered keepalives in a
  row close the session (and the supervisor reconnects).
* ``stop`` waits (bounded by ``timeout``, default ``request_timeout``) for outstanding responses,
  unbinds (waiting at most 5 s for the answer), closes and ends the supervisor. ``drop`` aborts the
  current connection (the supervisor reconnects): for tests and fault handling.

A protocol's client subclasses ``ProtocolClient`` and states only what differs: its codec, its
bind/login PDU and how to judge the answer (``_bind_request``, ``_check_bind_response``), which
statuses mean success and throttling (``ok_status``, ``throttle_statuses``, ``_submit_status``), and
how a delivery is acknowledged (``deliver_commands``, ``_deliver_response``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

from qixin.protocols.errors import BindError, PduError, RequestTimeout, SessionClosed
from qixin.protocols.session import Codec, Session

__all__ = ["CONNECT_ERRORS", "ProtocolClient"]

log = logging.getLogger(__name__)

SubmitT = TypeVar("SubmitT")
RespT = TypeVar("RespT")
DeliverT = TypeVar("DeliverT")

_THROTTLE_MIN = 0.05
_THROTTLE_MAX = 1.0
# a connect/bind attempt failing with one of these is retried after the backoff
CONNECT_ERRORS = (OSError, TimeoutError, BindError, SessionClosed, RequestTimeout, PduError)


class ProtocolClient(Generic[SubmitT, RespT, DeliverT]):
    """The protocol-independent half of a client (see the module docstring)."""

    protocol: ClassVar[str]  # "SMPP": starts ``name`` (logs, errors)
    session_prefix: ClassVar[str]  # "smpp-client": starts the session's name
    ok_status: ClassVar[int]  # a submit answered with it was accepted (ends a throttle pause)
    throttle_statuses: ClassVar[frozenset[int]]  # a submit answered with one of these was throttled
    deliver_commands: ClassVar[frozenset[int]]  # the requests carrying status reports and MO
    deliver_retry_text: ClassVar[str]  # the retry status, as logged when on_deliver raised
    refuse_status: ClassVar[int]  # answers any other request the peer sends
    not_bound_message: ClassVar[str] = "{name} not bound after {timeout}s (last error: {error!r})"
    heartbeat_interval: float = 30.0
    heartbeat_retries: int = 3

    codec: Codec

    def __init__(
        self,
        host: str,
        port: int,
        *,
        window: int,
        request_timeout: float,
        reconnect_min: float,
        reconnect_max: float,
        on_deliver: Callable[[DeliverT], asyncio.Future[Any] | None] | None,
        on_state: Callable[[bool], None] | None,
    ) -> None:
        self.host = host
        self.port = port
        self.window = window
        self.request_timeout = request_timeout
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.on_deliver = on_deliver
        self.on_state = on_state
        self.last_error: BaseException | None = None  # why the last connect/bind attempt failed
        self.binds = 0  # successful binds so far
        self.throttled = 0  # throttling responses seen
        self.timeouts = 0  # submits that got no answer in time
        self._session: Session | None = None
        self._bound_evt = asyncio.Event()
        self._stop_evt = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._throttle_until = 0.0
        self._throttle_delay = 0.0

    # -- what a protocol states ----------------------------------------------------------------
    @property
    def _account(self) -> str:
        """The name we bind as (system_id, SP id, ClientID, login name)."""
        raise NotImplementedError

    def _bind_request(self) -> Any:
        """A new bind / login request."""
        raise NotImplementedError

    def _check_bind_response(self, session: Session, request: Any, resp: Any) -> None:
        """Raise ``BindError`` unless ``resp`` accepts the bind ``request``."""
        raise NotImplementedError

    def _submit_status(self, resp: Any) -> int | None:
        """The status of a submit's response."""
        raise NotImplementedError

    def _deliver_response(self, pdu: Any, ok: bool) -> Any:
        """The answer to a delivery: success (``ok``) or the retry status."""
        raise NotImplementedError

    # -- public API ----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return f"{self.protocol} {self._account}@{self.host}:{self.port}"

    @property
    def bound(self) -> bool:
        s = self._session
        return s is not None and s.bound

    @property
    def session(self) -> Session | None:
        return self._session

    async def start(self) -> None:
        """Start the supervisor: connect, bind, reconnect with exponential backoff until ``stop``."""
        if self._task is not None:
            return
        self._stopping = False
        self._stop_evt.clear()
        await self._on_start()
        self._task = asyncio.get_running_loop().create_task(self._supervise(), name=self._task_name)

    async def wait_bound(self, timeout: float) -> None:
        """Wait until bound; ``TimeoutError`` (chained to the last connect/bind error) if not in time."""
        try:
            await asyncio.wait_for(self._wait_bound(), timeout)
        except TimeoutError as exc:
            msg = self.not_bound_message.format(name=self.name, timeout=timeout, error=self.last_error)
            raise TimeoutError(msg) from (self.last_error or exc)

    async def submit(self, pdu: SubmitT) -> asyncio.Future[RespT]:
        """Send ``pdu`` as soon as a bound session has a free window slot; return the response future.

        The future resolves with the response (any status), or fails with ``SessionClosed`` /
        ``RequestTimeout``.
        """
        loop = asyncio.get_running_loop()
        while True:
            if self._stopping:
                raise SessionClosed("client stopped")
            s = self._session
            if s is None or not s.bound:
                await self._wait_for_session()
                continue
            if self._throttle_until:
                delay = self._throttle_until - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                    continue
                self._throttle_until = 0.0
            try:
                fut = await s.request(pdu)
            except SessionClosed:
                await asyncio.sleep(0)  # let the supervisor notice; then wait for the next session
                continue
            fut.add_done_callback(self._on_submit_done)
            return fut

    async def stop(self, timeout: float | None = None) -> None:
        """Wait (bounded) for outstanding responses, unbind, close, and end the supervisor."""
        timeout = self.request_timeout if timeout is None else timeout
        self._stopping = True
        self._stop_evt.set()
        self._bound_evt.set()  # wake waiters so they see _stopping
        s = self._session
        if s is not None and not s.is_closed:
            if s.bound:
                try:
                    await asyncio.wait_for(s.window.wait_empty(), timeout)
                except TimeoutError:
                    pass
            await s.close(min(timeout, 5.0))
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def drop(self) -> None:
        """Abort the current connection (the supervisor reconnects). For tests and fault handling."""
        if self._session is not None:
            self._session.abort()

    # -- internals -----------------------------------------------------------------------------
    @property
    def _task_name(self) -> str:
        return f"{self.protocol.lower()} {self._account}"

    async def _on_start(self) -> None:
        """Runs in ``start`` before the supervisor is created."""

    async def _wait_bound(self) -> None:
        while not self.bound:
            if self._stopping:
                raise SessionClosed("client stopped")
            await self._wait_for_session()

    async def _wait_for_session(self) -> None:
        await self._bound_evt.wait()

    def _on_submit_done(self, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            if isinstance(exc, RequestTimeout):
                self.timeouts += 1
            return
        status = self._submit_status(fut.result())
        if status == self.ok_status:
            if self._throttle_delay:
                self._throttle_delay = 0.0
        elif status in self.throttle_statuses:
            self.throttled += 1
            now = asyncio.get_running_loop().time()
            if now >= self._throttle_until:  # first throttle after a pause ended: escalate
                self._throttle_delay = min(max(self._throttle_delay * 2, _THROTTLE_MIN), _THROTTLE_MAX)
                self._throttle_until = now + self._throttle_delay

    def _handle(self, session: Session, pdu: Any) -> Any:
        if pdu.command_id in self.deliver_commands:
            return self._deliver(session, pdu)
        return self._refuse(session, pdu)

    def _refuse(self, session: Session, pdu: Any) -> Any:
        return session.codec.error_response(pdu, self.refuse_status)

    def _deliver(self, session: Session, pdu: Any) -> Any:
        if self.on_deliver is not None:
            try:
                done = self.on_deliver(pdu)
            except Exception:
                log.exception("%s: on_deliver failed; answering %s", self.name, self.deliver_retry_text)
                return self._deliver_response(pdu, False)
            if isinstance(done, asyncio.Future):
                # the receiver stores it durably first: answer only when that is done
                done.add_done_callback(functools.partial(self._answer_deliver, session, pdu))
                return None
        return self._deliver_response(pdu, True)

    def _answer_deliver(self, session: Session, pdu: Any, fut: asyncio.Future[Any]) -> None:
        if session.is_closed:
            return  # never acknowledged: the peer delivers it again after the next bind
        failed = fut.cancelled() or fut.exception() is not None
        session.send(self._deliver_response(pdu, not failed))

    def _make_session(self) -> Session:
        return Session(
            self.codec,
            self._handle,
            window=self.window,
            request_timeout=self.request_timeout,
            heartbeat_interval=self.heartbeat_interval,
            heartbeat_retries=self.heartbeat_retries,
            on_close=self._on_session_closed,
            name=f"{self.session_prefix} {self._account}@{self.host}:{self.port}",
        )

    def _on_session_closed(self, session: Session) -> None:
        if self._session is session:
            self._session = None
            if not self._stopping:
                self._bound_evt.clear()
            self._notify_state(False)

    def _notify_state(self, bound: bool) -> None:
        if self.on_state is not None:
            try:
                self.on_state(bound)
            except Exception:
                log.exception("on_state callback failed")

    async def _connect_and_bind(self) -> Session:
        loop = asyncio.get_running_loop()
        _, session = await asyncio.wait_for(
            loop.create_connection(self._make_session, self.host, self.port), self.request_timeout
        )
        try:
            request = self._bind_request()
            resp = await (await session.request(request))
            self._check_bind_response(session, request, resp)
            session.mark_bound()
        except BaseException:
            session.abort()
            raise
        return session

    def _adopt(self, session: Session) -> None:
        """A bind succeeded: ``session`` is the one ``submit`` uses now."""
        self.last_error = None
        self.binds += 1
        self._session = session
        self._bound_evt.set()
        self._notify_state(True)

    async def _backoff(self, delay: float) -> None:
        """Sleep ``delay`` jittered to 50–100 %, or until ``stop``."""
        try:
            await asyncio.wait_for(self._stop_evt.wait(), delay * (0.5 + random.random() / 2))
        except TimeoutError:
            pass

    async def _supervise(self) -> None:
        delay = self.reconnect_min
        while not self._stopping:
            try:
                session = await self._connect_and_bind()
            except asyncio.CancelledError:
                raise
            except CONNECT_ERRORS as exc:
                self.last_error = exc
                log.warning("%s: %s; retry in %.1fs", self.name, exc, delay)
            else:
                self._adopt(session)
                delay = self.reconnect_min
                await asyncio.shield(session.closed)
                if self._stopping:
                    break
                log.warning("%s: session lost; reconnecting", self.name)
            if self._stopping:
                break
            await self._backoff(delay)
            delay = min(delay * 2, self.reconnect_max)
