"""The one place a uvicorn server configuration is built (``qixin run``, ``qixin api`` and the tests).

Forwarded headers (``X-Forwarded-For``, ``X-Forwarded-Proto``) are ignored unless the operator names the
proxies allowed to set them (``QIXIN_TRUSTED_PROXIES``): uvicorn's own default trusts them from
127.0.0.1, which would let any local process — or a reverse proxy that does not strip them — choose the
client address the IP allow-list checks. Without trusted proxies the allow-list sees the TCP peer.
"""

from __future__ import annotations

import signal
import socket
from types import FrameType
from typing import Any

import uvicorn


def server_config(app: Any, host: str, port: int, trusted_proxies: tuple[str, ...] = (), **kw: Any) -> uvicorn.Config:
    """A uvicorn config serving ``app``; proxy headers are honoured only from ``trusted_proxies``
    (addresses or networks, e.g. ``("10.0.0.5", "192.168.0.0/24")``)."""
    options: dict[str, Any] = {"log_level": "warning", "access_log": False} | kw
    if trusted_proxies:
        options["proxy_headers"] = True
        options["forwarded_allow_ips"] = list(trusted_proxies)
    else:
        options["proxy_headers"] = False
        options["forwarded_allow_ips"] = []
    return uvicorn.Config(app, host=host, port=port, **options)


class Server(uvicorn.Server):
    """uvicorn's server, except that SIGTERM ends the process with exit code 0 once it has drained.

    uvicorn records the signal that stopped it and raises it again after its graceful shutdown, so a
    ``qixin api`` or ``qixin run`` stopped by its orchestrator (systemd, Kubernetes, compose) died by
    SIGTERM (exit code -15 / 143) and was reported as failed. SIGTERM is the normal way to stop a
    service, so it is not raised again; SIGINT (Ctrl-C) keeps uvicorn's behaviour."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if sig == signal.SIGTERM and self._captured_signals and self._captured_signals[-1] == sig:
            self._captured_signals.pop()


def listen_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A bound TCP socket for uvicorn; with ``reuse_port`` (SO_REUSEPORT, Linux ≥ 3.9) every process that binds
    the same address this way shares the port and the kernel spreads new connections over them."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock
