"""Request signing, shared by the API (verifying), our webhooks (signing) and clients (tests, bench).

The signature is lowercase hex HMAC-SHA256(app_secret, canonical) where canonical is::

    METHOD \\n PATH \\n sorted url-encoded query \\n timestamp \\n nonce \\n hex SHA-256 of the body

The query is the request's parameters sorted by name then value, each ``name=value`` url-encoded with
RFC 3986 rules (``urllib.parse.quote(..., safe="-_.~")``) and joined with ``&``; empty when there is none.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from urllib.parse import quote

HEADER_APPKEY = "X-Qx-AppKey"
HEADER_TIMESTAMP = "X-Qx-Timestamp"
HEADER_NONCE = "X-Qx-Nonce"
HEADER_SIGNATURE = "X-Qx-Signature"


def canonical_query(params: Iterable[tuple[str, str]]) -> str:
    pairs = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in params)
    return "&".join(f"{k}={v}" for k, v in pairs)


def canonical_request(method: str, path: str, query: str, timestamp: str, nonce: str, body: bytes) -> str:
    return "\n".join((method.upper(), path, query, timestamp, nonce, hashlib.sha256(body).hexdigest()))


def sign(secret: str, method: str, path: str, query: str, timestamp: str, nonce: str, body: bytes) -> str:
    msg = canonical_request(method, path, query, timestamp, nonce, body).encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def signed_headers(
    app_key: str,
    secret: str,
    method: str,
    path: str,
    body: bytes = b"",
    query: Iterable[tuple[str, str]] = (),
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Headers for a signed request (used by clients and by our webhook sender)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nc = nonce or secrets.token_hex(12)
    sig = sign(secret, method, path, canonical_query(query), ts, nc, body)
    return {HEADER_APPKEY: app_key, HEADER_TIMESTAMP: ts, HEADER_NONCE: nc, HEADER_SIGNATURE: sig}


def verify(secret: str, signature: str, method: str, path: str, query: str, ts: str, nonce: str, body: bytes) -> bool:
    expected = sign(secret, method, path, query, ts, nonce, body)
    return hmac.compare_digest(expected, signature.lower())
