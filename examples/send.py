"""Send an SMS through qixin (企信) with a signed request. Stand-alone: needs only httpx (pip install httpx).

    export QIXIN_URL=http://127.0.0.1:8000 QIXIN_APP_KEY=qx... QIXIN_APP_SECRET=...
    python send.py 13800138000 "您的验证码是 123456，5 分钟内有效。" 企信

Copy it into your own code freely; the signing rules are in docs/api.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sys
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlsplit

import httpx


def _enc(s: str) -> str:
    return quote(s, safe="-_.~")  # RFC 3986: only A-Z a-z 0-9 - _ . ~ stay as they are


def canonical_query(params: Iterable[tuple[str, str]]) -> str:
    """Encode each name and value, sort the pairs (name, then value), join as name=value with &."""
    return "&".join(f"{k}={v}" for k, v in sorted((_enc(k), _enc(v)) for k, v in params))


def sign(secret: str, method: str, path: str, query: str, timestamp: str, nonce: str, body: bytes) -> str:
    canonical = "\n".join((method.upper(), path, query, timestamp, nonce, hashlib.sha256(body).hexdigest()))
    return hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def call(method: str, path: str, payload: Any = None, params: Iterable[tuple[str, str]] = ()) -> httpx.Response:
    """One signed request to the qixin API, e.g. call("GET", "/v1/account")."""
    url = os.environ["QIXIN_URL"].rstrip("/") + path
    app_key, secret = os.environ["QIXIN_APP_KEY"], os.environ["QIXIN_APP_SECRET"]
    params = list(params)
    body = b"" if payload is None else json.dumps(payload, ensure_ascii=False).encode()
    ts, nonce = str(int(time.time())), secrets.token_hex(12)
    headers = {
        "Content-Type": "application/json",
        "X-Qx-AppKey": app_key,
        "X-Qx-Timestamp": ts,
        "X-Qx-Nonce": nonce,
        "X-Qx-Signature": sign(secret, method, urlsplit(url).path, canonical_query(params), ts, nonce, body),
    }
    return httpx.request(method, url, params=params, content=body, headers=headers, timeout=30)


def main() -> None:
    if len(sys.argv) < 4:
        sys.exit("usage: send.py NUMBER[,NUMBER...] CONTENT SIGNATURE [verification|notification|marketing]")
    to, content, signature = sys.argv[1], sys.argv[2], sys.argv[3]
    payload = {
        "to": to.split(",") if "," in to else to,
        "content": content,
        "signature": signature,
        "type": sys.argv[4] if len(sys.argv) > 4 else "notification",
        "idempotency_key": secrets.token_hex(16),  # reuse the same key (and body) when you retry
    }
    resp = call("POST", "/v1/sms", payload)
    print(resp.status_code, json.dumps(resp.json(), ensure_ascii=False, indent=2))
    if resp.status_code == 200:
        first = resp.json()["accepted"][0]["id"]
        print(json.dumps(call("GET", f"/v1/sms/{first}").json(), ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
