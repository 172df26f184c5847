"""The one place a uvicorn server configuration is built (``qixin run``, ``qixin api`` and the tests).

Forwarded headers (``X-Forwarded-For``, ``X-Forwarded-Proto``) are ignored unless the operator names the
proxies allowed to set them (``QIXIN_TRUSTED_PROXIES``): uvicorn's own default trusts them from
127.0.0.1, which would let any local process — or a reverse proxy that does not strip them — choose the
client address the IP allow-list checks. Without trusted proxies the allow-list sees the TCP peer.
"""

from __future__ import annotations

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
