"""SMPP 3.4 client (ESME) with a supervisor that binds and re-binds forever.

Rules (``ProtocolClient``'s, in SMPP terms; see ``qixin.protocols.client``):

* Bind: bind_transmitter / bind_receiver / bind_transceiver (``bind``) with ``system_id``,
  ``password`` and ``system_type``; any status but ESME_ROK is a ``BindError`` naming it, and the
  supervisor retries with exponential backoff until ``stop``.
* ``submit`` returns the future of the submit_sm_resp (a ``GenericNack`` if the SMSC rejected the PDU
  outright); ESME_RTHROTTLED / ESME_RMSGQFUL resolve it normally and pause all sending (50 ms … 1 s,
  doubling, reset by the next ESME_ROK).
* deliver_sm (receipts and MO) goes to ``on_deliver``; the client answers deliver_sm_resp itself
  after ``on_deliver`` returns: ESME_ROK, or ESME_RX_T_APPN (temporary error, the SMSC will redeliver)
  when ``on_deliver`` raised. When ``on_deliver`` returns an ``asyncio.Future`` (the receiver's promise
  to store the PDU durably), the answer waits for it: ESME_ROK when it succeeds, ESME_RX_T_APPN when it
  fails, and no answer at all when the session closed meanwhile (the SMSC redelivers after a re-bind).
  Any other request is answered ESME_RINVCMDID.
* Keepalive (enquire_link, every ``enquire_link_interval`` seconds of silence) both ways is done by
  the session engine; ``stop`` sends unbind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from qixin.protocols.client import ProtocolClient
from qixin.protocols.errors import BindError
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

_BIND_CLASSES: dict[str, type[BindTransmitter | BindReceiver | BindTransceiver]] = {
    "transmitter": BindTransmitter,
    "receiver": BindReceiver,
    "transceiver": BindTransceiver,
}


class SmppClient(ProtocolClient[SubmitSm, SubmitSmResp, DeliverSm]):
    protocol = "SMPP"
    session_prefix = "smpp-client"
    ok_status = ESME_ROK
    throttle_statuses = frozenset({ESME_RTHROTTLED, ESME_RMSGQFUL})
    deliver_commands = frozenset({DELIVER_SM})
    deliver_retry_text = "ESME_RX_T_APPN"
    refuse_status = ESME_RINVCMDID

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
        self.system_id = system_id
        self.password = password
        self.system_type = system_type
        self.bind = bind
        self.heartbeat_interval = enquire_link_interval
        self.codec = SmppCodec()

    @property
    def enquire_link_interval(self) -> float:
        return self.heartbeat_interval

    @enquire_link_interval.setter
    def enquire_link_interval(self, value: float) -> None:
        self.heartbeat_interval = value

    @property
    def _account(self) -> str:
        return self.system_id

    def _bind_request(self) -> Any:
        return _BIND_CLASSES[self.bind](system_id=self.system_id, password=self.password, system_type=self.system_type)

    def _check_bind_response(self, session: Session, request: Any, resp: Any) -> None:
        if resp.command_status != ESME_ROK:
            raise BindError(
                f"bind_{self.bind} as {self.system_id!r} to {self.host}:{self.port} refused: "
                f"{status_name(resp.command_status)}",
                resp.command_status,
            )

    def _submit_status(self, resp: Any) -> int | None:
        return resp.command_status

    def _deliver_response(self, pdu: Any, ok: bool) -> Any:
        return pdu.response(ESME_ROK if ok else ESME_RX_T_APPN)
