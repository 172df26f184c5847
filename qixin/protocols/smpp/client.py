"""SMPP 3.4 client (ESME) with a supervisor that binds and re-binds forever.

Rules:

* One connection per ``SmppClient``; the channel connector runs several clients for several
  connections.
* ``submit`` is the only way to send traffic: it waits for a bound session, for the throttle pause
  and for a window slot, writes the PDU and returns the future of its response without creating a
  task. A caller pipelines by calling ``submit`` many times and gathering the futures later.
* A submit that was not written yet when the session dropped is written on the next session; one that
  was written fails with ``SessionClosed`` (the caller decides whether to resubmit: the SMSC may have
  accepted it).
* ESME_RTHROTTLED / ESME_RMSGQFUL responses resolve the future normally; the client also pauses all
  sending for a short, doubling delay (50 ms … 1 s) that resets on the next accepted submit.
* deliver_sm (receipts and MO) goes to ``on_deliver``; the client answers deliver_sm_resp itself
  after ``on_deliver`` returns: ESME_ROK, or ESME_RX_T_APPN (temporary error, the SMSC will redeliver)
  when ``on_deliver`` raised. When ``on_deliver`` returns an ``asyncio.Future`` (the receiver's promise
  to store the PDU durably), the answer waits for it: ESME_ROK when it succeeds, ESME_RX_T_APPN when it
  fails, and no answer at all when the session closed meanwhile (the SMSC redelivers after a re-bind).
* Keepalive (enquire_link) both ways is done by the session engine.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any

from qixin.protocols.errors import BindError, PduError, RequestTimeout, SessionClosed
from qixin.protocols.session import Session
from qixin.protocols.smpp.codec import (
    DELIVER_SM,
    ESME_RINVCMDID,
    ESME_RMSGQFUL,
    ESME_ROK,
    ESME_RTHROTTLED,
    ESME_RX_T_APPN,
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    DeliverSm,
    SmppCodec,
    SubmitSm,
    SubmitSmResp,
    status_name,
)

__all__ = ["SmppClient"]

log = logging.getLogger(__name__)

_BIND_CLASSES: dict[str, type[BindTransmitter | BindReceiver | BindTransceiver]] = {
    "transmitter": BindTransmitter,
    "receiver": BindReceiver,
    "transceiver": BindTransceiver,
}
_THROTTLE_MIN = 0.05
_THROTTLE_MAX = 1.0


class SmppClient:
    def __init__(
        self,
        host: str,
        port: int,
        system_id: str,
        password: str,
        *,
        system_type: str = "",
        bind: str = "transceiver",
        window: int = 64,
        request_timeout: float = 10.0,
        enquire_link_interval: float = 30.0,
        reconnect_min: float = 0.5,
        reconnect_max: float = 30.0,
        on_deliver: Callable[[DeliverSm], asyncio.Future[Any] | None] | None = None,
        on_state: Callable[[bool], None] | None = None,
    ) -> None:
        if bind not in _BIND_CLASSES:
            raise ValueError(f"bind must be one of {sorted(_BIND_CLASSES)}, not {bind!r}")
        self.host = host
        self.port = port
        self.system_id = system_id
        self.password = password
        self.system_type = system_type
        self.bind = bind
        self.window = window
        self.request_timeout = request_timeout
        self.enquire_link_interval = enquire_link_interval
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.on_deliver = on_deliver
        self.on_state = on_state
        self.codec = SmppCodec()
        self.last_error: BaseException | None = None  # why the last connect/bind attempt failed
        self.binds = 0  # successful binds so far
        self.throttled = 0  # throttling responses seen
        self._session: Session | None = None
        self._bound_evt = asyncio.Event()
        self._stop_evt = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._throttle_until = 0.0
        self._throttle_delay = 0.0

    # -- public API ----------------------------------------------------------------------------
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
        self._task = asyncio.get_running_loop().create_task(self._supervise(), name=f"smpp {self.system_id}")

    async def wait_bound(self, timeout: float) -> None:
        """Wait until bound; ``TimeoutError`` (chained to the last connect/bind error) if not in time."""
        try:
            await asyncio.wait_for(self._wait_bound(), timeout)
        except TimeoutError as exc:
            raise TimeoutError(
                f"SMPP {self.system_id}@{self.host}:{self.port} not bound after {timeout}s"
                f" (last error: {self.last_error!r})"
            ) from (self.last_error or exc)

    async def _wait_bound(self) -> None:
        while not self.bound:
            if self._stopping:
                raise SessionClosed("client stopped")
            await self._bound_evt.wait()

    async def submit(self, pdu: SubmitSm) -> asyncio.Future[SubmitSmResp]:
        """Send ``pdu`` as soon as a bound session has a free window slot; return the response future.

        The future resolves with the ``SubmitSmResp`` (any ``command_status``; a ``GenericNack`` if the
        SMSC rejected the PDU outright), or fails with ``SessionClosed`` / ``RequestTimeout``.
        """
        loop = asyncio.get_running_loop()
        while True:
            if self._stopping:
                raise SessionClosed("client stopped")
            s = self._session
            if s is None or not s.bound:
                await self._bound_evt.wait()
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
    def _on_submit_done(self, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            return
        status = fut.result().command_status
        if status == ESME_ROK:
            if self._throttle_delay:
                self._throttle_delay = 0.0
        elif status in (ESME_RTHROTTLED, ESME_RMSGQFUL):
            self.throttled += 1
            now = asyncio.get_running_loop().time()
            if now >= self._throttle_until:  # first throttle after a pause ended: escalate
                self._throttle_delay = min(max(self._throttle_delay * 2, _THROTTLE_MIN), _THROTTLE_MAX)
                self._throttle_until = now + self._throttle_delay

    def _handle(self, session: Session, pdu: Any) -> Any:
        if pdu.command_id == DELIVER_SM:
            if self.on_deliver is not None:
                try:
                    done = self.on_deliver(pdu)
                except Exception:
                    log.exception("on_deliver failed; answering ESME_RX_T_APPN")
                    return pdu.response(ESME_RX_T_APPN)
                if isinstance(done, asyncio.Future):
                    # the receiver stores it durably first: answer only when that is done
                    done.add_done_callback(lambda f: self._answer_deliver(session, pdu, f))
                    return None
            return pdu.response(ESME_ROK)
        return self.codec.error_response(pdu, ESME_RINVCMDID)

    @staticmethod
    def _answer_deliver(session: Session, pdu: Any, fut: asyncio.Future[Any]) -> None:
        if session.is_closed:
            return  # never acknowledged: the SMSC delivers it again on the next bind
        failed = fut.cancelled() or fut.exception() is not None
        session.send(pdu.response(ESME_RX_T_APPN if failed else ESME_ROK))

    def _make_session(self) -> Session:
        return Session(
            self.codec,
            self._handle,
            window=self.window,
            request_timeout=self.request_timeout,
            heartbeat_interval=self.enquire_link_interval,
            on_close=self._on_session_closed,
            name=f"smpp-client {self.system_id}@{self.host}:{self.port}",
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
            bind_pdu = _BIND_CLASSES[self.bind](
                system_id=self.system_id, password=self.password, system_type=self.system_type
            )
            resp = await (await session.request(bind_pdu))
            if resp.command_status != ESME_ROK:
                raise BindError(
                    f"bind_{self.bind} as {self.system_id!r} to {self.host}:{self.port} refused: "
                    f"{status_name(resp.command_status)}",
                    resp.command_status,
                )
            session.mark_bound()
        except BaseException:
            session.abort()
            raise
        return session

    async def _supervise(self) -> None:
        delay = self.reconnect_min
        while not self._stopping:
            try:
                session = await self._connect_and_bind()
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, BindError, SessionClosed, RequestTimeout, PduError) as exc:
                self.last_error = exc
                log.warning("SMPP %s@%s:%s: %s; retry in %.1fs", self.system_id, self.host, self.port, exc, delay)
            else:
                self.last_error = None
                self.binds += 1
                self._session = session
                delay = self.reconnect_min
                self._bound_evt.set()
                self._notify_state(True)
                await asyncio.shield(session.closed)
                if self._stopping:
                    break
                log.warning("SMPP %s@%s:%s: session lost; reconnecting", self.system_id, self.host, self.port)
            if self._stopping:
                break
            try:
                await asyncio.wait_for(self._stop_evt.wait(), delay * (0.5 + random.random() / 2))
            except TimeoutError:
                pass
            delay = min(delay * 2, self.reconnect_max)
