"""CMPP 2.0 / 3.0 client (the SP side) with a supervisor that connects and re-connects forever.

Rules (``ProtocolClient``'s, in CMPP terms; see ``qixin.protocols.client``):

* Login: CONNECT with ``AuthenticatorSource = MD5(SP_Id + 9 zero bytes + secret + MMDDHHMMSS)`` and
  the same timestamp in the Timestamp field (local time, which is China time on a gateway's host).
  The CONNECT_RESP must carry Status 0 and ``AuthenticatorISMG = MD5(Status + AuthenticatorSource +
  secret)``; otherwise the bind is refused with a ``BindError`` naming the status (1 bad structure,
  2 bad source address, 3 authentication failed, 4 version too high, 5 other) or the authenticator
  mismatch, and the supervisor retries with exponential backoff until ``stop``.
* ``submit`` returns the future of the SUBMIT_RESP; one that was written fails with ``SessionClosed``
  when the session dropped (the ISMG may have accepted it), or with ``RequestTimeout`` when the ISMG
  did not answer within ``request_timeout``.
* Result 8 (flow control) resolves the future normally; the client also pauses all sending for a
  short, doubling delay (50 ms … 1 s) that resets on the next accepted submit.
* DELIVER (MO and status reports) goes to ``on_deliver``; the client answers DELIVER_RESP itself:
  Result 0, or Result 9 ("other error": the ISMG delivers it again) when ``on_deliver`` raised. When
  ``on_deliver`` returns an ``asyncio.Future`` (the receiver's promise to store it durably), the
  answer waits for it: Result 0 when it succeeds, 9 when it fails, and no answer at all when the
  session closed meanwhile (the ISMG delivers it again after the next CONNECT). SUBMIT, CONNECT,
  QUERY and CANCEL sent to an SP are not ours to serve: Result 2 (bad command).
* ACTIVE_TEST both ways is done by the session engine; ``heartbeat_retries`` unanswered ones in a row
  close the session (and the supervisor reconnects).
* ``stop`` waits (bounded) for outstanding responses, sends TERMINATE, waits for TERMINATE_RESP
  (bounded) and closes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from qixin.protocols.client import ProtocolClient
from qixin.protocols.cmpp.codec import (
    CONNECT_AUTH_FAILED,
    CONNECT_BAD_SOURCE_ADDR,
    CONNECT_BAD_STRUCTURE,
    CONNECT_OK,
    CONNECT_OTHER_ERROR,
    CONNECT_VERSION_TOO_HIGH,
    DELIVER,
    RESULT_BAD_COMMAND,
    RESULT_FLOW_CONTROL,
    RESULT_OK,
    RESULT_OTHER_ERROR,
    VERSION_20,
    VERSION_30,
    CmppCodec,
    Connect,
    ConnectResp,
    Deliver,
    DeliverResp,
    Submit,
    SubmitResp,
    cmpp_authenticator_ismg,
    cmpp_authenticator_source,
)
from qixin.protocols.errors import BindError
from qixin.protocols.session import Session

__all__ = ["CONNECT_STATUS_TEXT", "CmppClient", "connect_status_name"]

log = logging.getLogger(__name__)

CONNECT_STATUS_TEXT = {
    CONNECT_OK: "ok",
    CONNECT_BAD_STRUCTURE: "bad message structure (1)",
    CONNECT_BAD_SOURCE_ADDR: "bad source address: SP id unknown to the gateway (2)",
    CONNECT_AUTH_FAILED: "authentication failed: wrong shared secret or clock (3)",
    CONNECT_VERSION_TOO_HIGH: "version too high for the gateway (4)",
    CONNECT_OTHER_ERROR: "other error (5)",
}


def connect_status_name(status: int) -> str:
    return CONNECT_STATUS_TEXT.get(status, f"other error ({status})")


def _now_timestamp() -> str:
    """MMDDHHMMSS of the local clock (the gateway checks it against its own, China time)."""
    return time.strftime("%m%d%H%M%S", time.localtime())


class CmppClient(ProtocolClient[Submit, SubmitResp, Deliver]):
    protocol = "CMPP"
    session_prefix = "cmpp-client"
    ok_status = RESULT_OK
    throttle_statuses = frozenset({RESULT_FLOW_CONTROL})
    deliver_commands = frozenset({DELIVER})
    deliver_retry_text = f"Result {RESULT_OTHER_ERROR}"
    refuse_status = RESULT_BAD_COMMAND

    def __init__(
        self,
        host: str,
        port: int,
        source_addr: str,
        secret: str,
        *,
        version: int = VERSION_30,
        window: int = 16,
        request_timeout: float = 10.0,
        heartbeat_interval: float = 30.0,
        heartbeat_retries: int = 3,
        reconnect_min: float = 0.5,
        reconnect_max: float = 30.0,
        on_deliver: Callable[[Deliver], asyncio.Future[Any] | None] | None = None,
        on_state: Callable[[bool], None] | None = None,
    ) -> None:
        if version not in (VERSION_20, VERSION_30):
            raise ValueError(f"CMPP version must be 0x20 or 0x30, not 0x{version:02X}")
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
        self.source_addr = source_addr
        self.secret = secret
        self.version = version
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_retries = heartbeat_retries
        self.codec = CmppCodec(version)

    @property
    def _account(self) -> str:
        return self.source_addr

    @property
    def _task_name(self) -> str:
        return self.name

    def _bind_request(self) -> Connect:
        ts = _now_timestamp()
        auth = cmpp_authenticator_source(self.source_addr, self.secret, ts)
        return Connect(source_addr=self.source_addr, authenticator=auth, version=self.version, timestamp=int(ts))

    def _check_bind_response(self, session: Session, request: Connect, resp: Any) -> None:
        if not isinstance(resp, ConnectResp):
            raise BindError(f"CMPP CONNECT to {self.host}:{self.port}: unexpected answer {resp!r}")
        self._check_connect_resp(resp, request.authenticator)
        if resp.version != self.version:
            log.info("%s: gateway speaks version 0x%02X, we 0x%02X", self.name, resp.version, self.version)
        session.info["sp_id"] = self.source_addr
        session.info["version"] = self.version

    def _check_connect_resp(self, resp: ConnectResp, auth_source: bytes) -> None:
        where = f"CMPP CONNECT as SP {self.source_addr!r} to {self.host}:{self.port}"
        if resp.status != CONNECT_OK:
            raise BindError(f"{where} refused: {connect_status_name(resp.status)}", resp.status)
        # Status is hashed as 1 byte (2.0) or 4 bytes (3.0); a gateway answering in the other version's
        # layout (tolerated by the decoder) hashes it in that layout.
        other = VERSION_20 if self.version == VERSION_30 else VERSION_30
        for v in (self.version, other):
            if resp.authenticator == cmpp_authenticator_ismg(resp.status, auth_source, self.secret, v):
                return
        raise BindError(
            f"{where}: AuthenticatorISMG does not match (the peer does not know our shared secret, "
            "or it is not the gateway we expect); refusing to bind",
            CONNECT_AUTH_FAILED,
        )

    def _submit_status(self, resp: Any) -> int | None:
        return resp.result

    def _deliver_response(self, pdu: Deliver, ok: bool) -> DeliverResp:
        return DeliverResp(pdu.msg_id, RESULT_OK if ok else RESULT_OTHER_ERROR, pdu.sequence)
