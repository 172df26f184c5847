"""A channel connector over one SMPP client session: messages in, outcomes and receipts out.

Rules (the ones every connector shares — sink reporting, retries, the LRU — are in ``connector_base``):
- Business-free: it turns an ``Outgoing`` message into submit_sm PDUs (one per part, concatenation
  UDH from domain/text; source_addr = ``source_addr`` + the message's extension, destination "86" +
  the 11-digit number) and reports to the sink: ``submitted`` when every part was accepted,
  ``failed`` when the SMSC refused a part for good, ``abandoned`` when it gave up without knowing
  (the queue lease brings such a message back), and ``receipt`` for every delivery receipt.
- Throttling answers (ESME_RTHROTTLED, ESME_RMSGQFUL) and lost sessions retry the part after a pause,
  up to ``retries`` times; the client itself slows down on throttling.
- MO (a deliver_sm that is not a receipt) is decoded and handed to ``on_mo(channel, source, destination,
  text)`` (source without its 86 country code).
- One encode per distinct single-part text (an LRU), since batches repeat one content.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from qixin.domain.text import decode_payload, encode_parts
from qixin.gateway.connector_base import OK, REFUSED, RETRY, ProtocolConnector, single_part_cache
from qixin.protocols.smpp.client import SmppClient
from qixin.protocols.smpp.codec import (
    ESM_CLASS_RECEIPT,
    ESM_CLASS_TYPE_MASK,
    ESM_CLASS_UDHI,
    ESME_RMSGQFUL,
    ESME_ROK,
    ESME_RTHROTTLED,
    DeliverSm,
    SubmitSm,
    SubmitSmResp,
    parse_receipt,
)
from qixin.services.dispatch import Outgoing

RETRYABLE = frozenset({ESME_RTHROTTLED, ESME_RMSGQFUL})

_single_part = single_part_cache(encode_parts)


class SmppConnector(ProtocolConnector):
    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        system_id: str,
        password: str,
        *,
        source_addr: str = "10690000",
        window: int = 256,
        retries: int = 5,
        carriers: frozenset[str] | None = None,
        on_mo: Callable[[str, str, str, str], asyncio.Future[None] | None] | None = None,
    ) -> None:
        super().__init__(name, retries, carriers)
        self.on_mo = on_mo
        self.source_addr = source_addr
        self.client = SmppClient(host, port, system_id, password, window=window, on_deliver=self._on_deliver)

    # -- outgoing --------------------------------------------------------------------------------
    def _pdus(self, item: Outgoing) -> list[SubmitSm]:
        dc, payloads, udhi = self._encode(item.content, _single_part, encode_parts)
        esm = ESM_CLASS_UDHI if udhi else 0
        # international format without "+" (TON 1 says it is international): mainland numbers get 86
        dest = "86" + item.number if len(item.number) == 11 else item.number.lstrip("+")
        return [
            SubmitSm(
                source_addr_ton=0,
                source_addr_npi=0,
                source_addr=self.source_addr + item.extension,
                dest_addr_ton=1,
                dest_addr_npi=1,
                destination_addr=dest,
                esm_class=esm,
                registered_delivery=1,
                data_coding=dc,
                short_message=p,
            )
            for p in payloads
        ]

    def _classify(self, resp: SubmitSmResp, pdu: SubmitSm) -> tuple[int, str]:
        if resp.command_status == ESME_ROK:
            return OK, resp.message_id
        if resp.command_status in RETRYABLE:
            return RETRY, f"status 0x{resp.command_status:02X}"
        return REFUSED, f"0x{resp.command_status:08X}"

    # -- incoming --------------------------------------------------------------------------------
    def _on_deliver(self, pdu: DeliverSm) -> asyncio.Future[Any] | None:
        """Receipts go to the sink, whose future says when they are stored (then we acknowledge)."""
        if pdu.esm_class & ESM_CLASS_TYPE_MASK == ESM_CLASS_RECEIPT:
            fields = parse_receipt(pdu.text_bytes.decode("latin-1", "replace"))
            carrier_id = pdu.receipted_message_id or fields.get("id", "")
            stat = (fields.get("stat") or "UNKNOWN").upper()
            err = fields.get("err") or ""
            return self._receipt(carrier_id, stat, err)
        self.stats["mo"] += 1
        if self.on_mo is None:
            return None
        text, _ = decode_payload(pdu.data_coding, pdu.text_bytes, bool(pdu.esm_class & ESM_CLASS_UDHI))
        source = (
            pdu.source_addr[2:] if pdu.source_addr.startswith("86") and len(pdu.source_addr) == 13 else pdu.source_addr
        )
        return self.on_mo(self.name, source, pdu.destination_addr, text)
