"""Aliyun (ACS) request signatures, as the official SDKs compute them (pure; docs/aliyun.md).

V3 — ``Authorization: ACS3-HMAC-SHA256 Credential=<AccessKeyId>,SignedHeaders=<h1;h2…>,Signature=<hex>``:

    CanonicalRequest = METHOD \\n path \\n CanonicalQuery \\n CanonicalHeaders \\n SignedHeaders \\n HashedPayload
    StringToSign     = "ACS3-HMAC-SHA256" \\n hex(sha256(CanonicalRequest))
    Signature        = hex(hmac_sha256(AccessKeySecret, StringToSign))

  CanonicalQuery: parameters sorted by name, ``name=value`` with both percent-encoded (RFC 3986: only
  ``A-Z a-z 0-9 - _ . ~`` stay), joined by ``&``. CanonicalHeaders: for every signed header (lower-case
  name, in the order of SignedHeaders) ``name:value\\n`` with the value trimmed (repeated headers joined
  by ``,``). HashedPayload = ``x-acs-content-sha256`` = hex(sha256(body)). The headers are checked
  as the client sent and signed them; the ones that protect the request must be among them.

V2 (RPC) — parameters ``Signature``, ``SignatureMethod=HMAC-SHA1``, ``SignatureVersion=1.0``,
``SignatureNonce``, ``Timestamp``, ``AccessKeyId`` in the query or the form body:

    StringToSign = METHOD & pct("/") & pct(CanonicalQuery)    (CanonicalQuery without Signature)
    Signature    = base64(hmac_sha1(AccessKeySecret + "&", StringToSign))
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

V3_ALGORITHM = "ACS3-HMAC-SHA256"
# a V3 request must sign these (besides whatever else it chose to sign)
V3_REQUIRED = ("host", "x-acs-action", "x-acs-content-sha256", "x-acs-date", "x-acs-signature-nonce")
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def pct(value: str) -> str:
    """RFC 3986 percent-encoding of UTF-8 (what Aliyun calls percentEncode)."""
    return quote(value, safe="~", encoding="utf-8")


def canonical_query(params: Iterable[tuple[str, str]]) -> str:
    pairs = sorted((pct(k), pct(v)) for k, v in params)
    return "&".join(f"{k}={v}" for k, v in pairs)


@dataclass(frozen=True, slots=True)
class V3Authorization:
    algorithm: str
    access_key_id: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_v3_authorization(value: str) -> V3Authorization | None:
    """The parts of a V3 Authorization header, or None when it is not one."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != V3_ALGORITHM:
        return None
    fields: dict[str, str] = {}
    for item in rest.split(","):
        name, sep, val = item.strip().partition("=")
        if not sep:
            return None
        fields[name.strip()] = val.strip()
    try:
        return V3Authorization(
            algorithm,
            fields["Credential"],
            tuple(h.strip().lower() for h in fields["SignedHeaders"].split(";") if h.strip()),
            fields["Signature"].lower(),
        )
    except KeyError:
        return None


def v3_canonical_request(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Sequence[tuple[str, str]],
    signed_headers: Sequence[str],
    hashed_payload: str,
) -> str:
    """``headers``: (name, value) as received (repeats allowed); only ``signed_headers`` are used."""
    values: dict[str, list[str]] = {}
    for name, value in headers:
        values.setdefault(name.lower(), []).append(value.strip())
    canon = "".join(f"{h}:{','.join(sorted(values.get(h, [])))}\n" for h in signed_headers)
    return "\n".join(
        (method.upper(), path or "/", canonical_query(query), canon, ";".join(signed_headers), hashed_payload)
    )


def v3_signature(secret: str, canonical_request: str) -> str:
    digest = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    to_sign = f"{V3_ALGORITHM}\n{digest}"
    return hmac.new(secret.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def v3_verify(
    secret: str,
    auth: V3Authorization,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Sequence[tuple[str, str]],
    body: bytes,
) -> bool:
    """True when the request is signed with ``secret``, signs the required headers, and its body is
    the one ``x-acs-content-sha256`` names."""
    if not all(h in auth.signed_headers for h in V3_REQUIRED):
        return False
    hashed = next((v.strip().lower() for n, v in headers if n.lower() == "x-acs-content-sha256"), "")
    if not hmac.compare_digest(hashed, hashlib.sha256(body).hexdigest()):
        return False
    canonical = v3_canonical_request(method, path, query, headers, auth.signed_headers, hashed)
    return hmac.compare_digest(v3_signature(secret, canonical), auth.signature)


def v2_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    query = canonical_query((k, v) for k, v in params.items() if k != "Signature")
    return f"{method.upper()}&{pct('/')}&{pct(query)}"


def v2_signature(secret: str, method: str, params: Mapping[str, str]) -> str:
    mac = hmac.new(f"{secret}&".encode(), v2_string_to_sign(method, params).encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def v2_verify(secret: str, method: str, params: Mapping[str, str]) -> bool:
    given = params.get("Signature", "")
    return bool(given) and hmac.compare_digest(v2_signature(secret, method, params), given)
