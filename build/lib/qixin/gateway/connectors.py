"""Connector factories per protocol: how a channel row becomes protocol connections.

Importing this module registers every protocol the platform can speak with gateway/channel.py.
"""

from __future__ import annotations

import asyncio

from qixin.gateway.channel import Hooks, register
from qixin.gateway.cmpp_connector import CmppConnector
from qixin.gateway.sgip_connector import SgipConnector
from qixin.gateway.smgp_connector import MoMessage, SmgpConnector
from qixin.gateway.smpp_connector import SmppConnector
from qixin.protocols.cmpp.codec import VERSION_20, VERSION_30
from qixin.services.channels import Channel


@register("smpp")
def smpp(ch: Channel, index: int, hooks: Hooks) -> SmppConnector:
    return SmppConnector(
        ch.name, ch.host, ch.port, ch.username, ch.secret,
        source_addr=ch.service_code, window=ch.window, on_mo=hooks.on_mo,
    )  # fmt: skip


def _cmpp(ch: Channel, hooks: Hooks, version: int) -> CmppConnector:
    on_mo = hooks.on_mo
    return CmppConnector(
        ch.name, ch.host, ch.port, ch.username, ch.secret,
        version=version, service_id=str(ch.options.get("service_id", "")), src_id=ch.service_code,
        window=ch.window,
        on_mo=(lambda dest, src, text: on_mo(ch.name, src, dest, text)) if on_mo else None,
    )  # fmt: skip


@register("cmpp3")
def cmpp3(ch: Channel, index: int, hooks: Hooks) -> CmppConnector:
    return _cmpp(ch, hooks, VERSION_30)


@register("cmpp2")
def cmpp2(ch: Channel, index: int, hooks: Hooks) -> CmppConnector:
    return _cmpp(ch, hooks, VERSION_20)


@register("sgip")
def sgip(ch: Channel, index: int, hooks: Hooks) -> SgipConnector:
    """SGIP: the SMG connects back to our listener (``listen_host``/``listen_port`` options) for MO and reports.

    With several connections, connection i listens on ``listen_port + i`` (0 = any free port).
    """
    o = ch.options
    on_mo = hooks.on_mo
    listen_port = int(o.get("listen_port", 0))
    return SgipConnector(
        ch.name, ch.host, ch.port, ch.username, ch.secret,
        node_id=int(o.get("node_id", 3_000_000_000)), sp_number=ch.service_code, corp_id=str(o.get("corp_id", "")),
        service_type=str(o.get("service_type", "")), listen_host=str(o.get("listen_host", "127.0.0.1")),
        listen_port=listen_port + index if listen_port else 0, smg_login_name=o.get("smg_login_name"),
        smg_password=o.get("smg_password"), window=ch.window,
        on_mo=(lambda number, sp_number, text: on_mo(ch.name, number, sp_number, text)) if on_mo else None,
    )  # fmt: skip


@register("smgp")
def smgp(ch: Channel, index: int, hooks: Hooks) -> SmgpConnector:
    on_mo = hooks.on_mo

    def mo(m: MoMessage) -> asyncio.Future[None] | None:
        return on_mo(ch.name, m.source, m.destination, m.text) if on_mo else None

    return SmgpConnector(
        ch.name, ch.host, ch.port, ch.username, ch.secret,
        service_id=str(ch.options.get("service_id", "")), src_term_id=ch.service_code, window=ch.window,
        on_mo=mo if on_mo else None,
    )  # fmt: skip
