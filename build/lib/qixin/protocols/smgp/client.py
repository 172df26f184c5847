"""SMGP 3.0 client (SP side, toward a China Telecom SMGW) with a supervisor that logs in and back in forever.

Rules (``ProtocolClient``'s, in SMGP terms; see ``qixin.protocols.client``):

* Login: ``AuthenticatorClient = MD5(ClientID + 7 zero bytes + secret + MMDDHHMMSS)`` with the local
  time; the gateway's ``AuthenticatorServer = MD5(Status + AuthenticatorClient + secret)`` is checked
  on success (16 zero bytes are accepted: gateways that do not sign their answer). A refused login is
  a ``BindError`` naming the status (``21 (authentication failed …)``), and the supervisor retries with
  exponential backoff (``reconnect_min`` … ``reconnect_max``, jittered) until ``stop``. ``logins``
  counts the successful logins.
* ``submit`` waits for a logged-in session and returns the future of the Submit_Resp; a client logged
  in with LoginMode 1 (receive) cannot submit (``ValueError``).
* Flow-control statuses (``THROTTLE_STATUSES``, status 1 "system busy") resolve the future normally;
  the client also pauses all sending for a short, doubling delay (50 ms … 1 s) that resets on the
  next accepted submit.
* Deliver (MO and status reports) goes to ``on_deliver``; the client answers Deliver_Resp itself:
  status 0 after ``on_deliver`` returned, or — when it returned an ``asyncio.Future`` (the receiver's
  promise to store the PDU durably) — once that future resolves: 0 when it succeeded, 1 (system busy,
  the gateway delivers again) when it failed or ``on_deliver`` raised, and no answer at all when the
  session closed meanwhile (the gateway redelivers after the next login). Any other request is
  answered status 11 (bad command).
* Active_Test both ways is done by the session engine; ``stop`` sends Exit and closes.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable
from typing import Any

from qixin.protocols.client import ProtocolClient
from qixin.protocols.errors import BindError
from qixin.protocols.session import Session
from qixin.protocols.smgp.codec import (
    DELIVER,
    LOGIN_MODE_RECEIVE,
    LOGIN_MODE_SEND,
    LOGIN_MODE_TRANSMIT,
    STATUS_BAD_COMMAND,
    STATUS_OK,
    STATUS_SYSTEM_BUSY,
    Deliver,
    DeliverResp,
    Login,
    LoginResp,
    SmgpCodec,
    Submit,
    SubmitResp,
    smgp_authenticator_client,
    smgp_authenticator_server,
    smgp_timestamp,
    status_name,
)

__all__ = ["DELIVER_RETRY_STATUS", "THROTTLE_STATUSES", "SmgpClient"]

log = logging.getLogger(__name__)

THROTTLE_STATUSES = frozenset({STATUS_SYSTEM_BUSY})
DELIVER_RETRY_STATUS = STATUS_SYSTEM_BUSY  # Deliver_Resp when we could not take the Deliver: send it again
_ZERO16 = b"\0" * 16


class SmgpClient(ProtocolClient[Submit, SubmitResp, Deliver]):
    protocol = "SMGP"
    session_prefix = "smgp-client"
    ok_status = STATUS_OK
    throttle_statuses = THROTTLE_STATUSES
    deliver_commands = frozenset({DELIVER})
    deliver_retry_text = f"Deliver_Resp status {DELIVER_RETRY_STATUS}"
    refuse_status = STATUS_BAD_COMMAND
    not_bound_message = "{name} not logged in after {timeout}s (last error: {error})"

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        secret: str,
        *,
        login_mode: int = LOGIN_MODE_TRANSMIT,
        window: int = 16,
        request_timeout: float = 10.0,
        heartbeat_interval: float = 30.0,
        heartbeat_retries: int = 3,
        reconnect_min: float = 0.5,
        reconnect_max: float = 30.0,
        on_deliver: Callable[[Deliver], asyncio.Future[Any] | None] | None = None,
        on_state: Callable[[bool], None] | None = None,
    ) -> None:
        if login_mode not in (LOGIN_MODE_SEND, LOGIN_MODE_RECEIVE, LOGIN_MODE_TRANSMIT):
            raise ValueError(f"login_mode must be 0 (send), 1 (receive) or 2 (transmit), not {login_mode!r}")
        if len(client_id.encode("latin-1", "replace")) > 8:
            raise ValueError(f"ClientID {client_id!r} is longer than 8 bytes")
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
        self.client_id = client_id
        self.secret = secret
        self.login_mode = login_mode
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_retries = heartbeat_retries
        self.codec = SmgpCodec()
        self._warned_unsigned = False

    @property
    def logins(self) -> int:
        """Successful logins so far (``binds`` in the other protocols' words)."""
        return self.binds

    @logins.setter
    def logins(self, value: int) -> None:
        self.binds = value

    async def submit(self, pdu: Submit) -> asyncio.Future[SubmitResp]:
        """Send ``pdu`` as soon as a logged-in session has a free window slot; return the response future.

        The future resolves with the ``SubmitResp`` (any status), or fails with ``SessionClosed`` /
        ``RequestTimeout``.
        """
        if self.login_mode == LOGIN_MODE_RECEIVE:
            raise ValueError(f"SMGP client {self.client_id!r} logged in with LoginMode 1 (receive) cannot submit")
        return await super().submit(pdu)

    @property
    def _account(self) -> str:
        return self.client_id

    def _bind_request(self) -> Login:
        t = time.localtime()
        ts = smgp_timestamp(t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)
        auth = smgp_authenticator_client(self.client_id, self.secret, ts)
        return Login(client_id=self.client_id, authenticator=auth, login_mode=self.login_mode, timestamp=ts)

    def _check_bind_response(self, session: Session, request: Login, resp: Any) -> None:
        where = f"login as {self.client_id!r} to SMGP {self.host}:{self.port}"
        if not isinstance(resp, LoginResp):
            raise BindError(f"{where}: answered with {type(resp).__name__} instead of Login_Resp")
        if resp.status != STATUS_OK:
            raise BindError(f"{where} refused: status {status_name(resp.status)}", resp.status)
        expected = smgp_authenticator_server(STATUS_OK, request.authenticator, self.secret)
        if not hmac.compare_digest(resp.authenticator, expected):
            if resp.authenticator != _ZERO16:
                raise BindError(f"{where}: AuthenticatorServer does not match (not the expected gateway?)")
            if not self._warned_unsigned:
                self._warned_unsigned = True
                log.warning("%s: gateway sent no AuthenticatorServer (16 zero bytes); accepted", where)

    def _submit_status(self, resp: Any) -> int | None:
        return getattr(resp, "status", None)

    def _deliver_response(self, pdu: Deliver, ok: bool) -> DeliverResp:
        return DeliverResp(pdu.msg_id, STATUS_OK if ok else DELIVER_RETRY_STATUS, pdu.sequence)
