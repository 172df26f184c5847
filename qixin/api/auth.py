"""Authenticating signed customer requests (the rules are in domain/signing.py and docs/api.md)."""

from __future__ import annotations

import ipaddress
import time

from starlette.requests import Request

from qixin.domain import signing
from qixin.errors import QxError
from qixin.services.accounts import ApiKey, Directory
from qixin.services.nonces import DatabaseNonceStore, NonceClaim, NonceStore


def ip_allowed(ip: str, allow: tuple[str, ...]) -> bool:
    if not allow:
        return True
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    for entry in allow:
        try:
            if addr in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


async def authenticate(request: Request, body: bytes, directory: Directory, nonces: NonceStore, skew: int) -> ApiKey:
    key, _ = await authenticate_deferred(request, body, directory, nonces, skew, defer=False)
    return key


async def authenticate_deferred(
    request: Request, body: bytes, directory: Directory, nonces: NonceStore, skew: int, defer: bool = True
) -> tuple[ApiKey, NonceClaim | None]:
    """``authenticate``, except that with a database nonce store and ``defer`` the nonce is not spent
    here: the returned claim spends it inside the request's own transaction (see ``NonceClaim``)."""
    h = request.headers
    app_key = h.get(signing.HEADER_APPKEY)
    ts = h.get(signing.HEADER_TIMESTAMP)
    nonce = h.get(signing.HEADER_NONCE)
    sig = h.get(signing.HEADER_SIGNATURE)
    if not (app_key and ts and nonce and sig):
        raise QxError("AUTH_MISSING")
    if not (ts.isascii() and ts.isdigit() and len(ts) <= 12):  # int() would take "١٧٠٠…" and 4,000 digits
        raise QxError("TIMESTAMP_EXPIRED", "时间戳必须是 Unix 秒")
    ts_int = int(ts)
    if abs(time.time() - ts_int) > skew:
        raise QxError("TIMESTAMP_EXPIRED")
    if not 8 <= len(nonce) <= 64:
        raise QxError("AUTH_MISSING", "随机数长度必须为 8–64 个字符")
    key = await directory.key(app_key)
    if key is None:
        raise QxError("APPKEY_INVALID")
    # no query string (every send): skip parsing one; the path as the client signed it (URL-escaped)
    query = signing.canonical_query(request.query_params.multi_items()) if request.scope.get("query_string") else ""
    if not signing.verify(key.app_secret, sig, request.method, request.url.path, query, ts, nonce, body):
        raise QxError("SIGNATURE_INVALID")
    client_ip = request.client.host if request.client else ""
    if not ip_allowed(client_ip, key.ip_allowlist):
        raise QxError("IP_FORBIDDEN", f"来源 IP {client_ip} 不在白名单内")
    # checked last, so a forged request cannot burn a customer's nonce
    ttl = skew * 2 + 10
    if defer and isinstance(nonces, DatabaseNonceStore):
        return key, NonceClaim(nonces, app_key, nonce, ttl)
    if not await nonces.first_use(app_key, nonce, ttl):
        raise QxError("NONCE_REPLAYED")
    return key, None
