"""The Aliyun-compatible endpoint: ``POST /`` with ``x-acs-action`` (V3) or ``Action`` (V2 RPC).

Thin route: authenticate the request the way Aliyun does (domain/acs_signing.py; the AccessKey pair is
an API key pair of the account), collect the parameters (query string and form body), call the action's
use case (services/aliyun.py) and answer in Aliyun's JSON shape with a RequestId. Only ``POST /``
carrying an action is handled here; ``GET /`` is the console's.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import Response

from qixin.api.auth import ip_allowed
from qixin.api.common import json_response
from qixin.api.deps import client_ip
from qixin.domain import acs_signing as acs
from qixin.errors import QxError
from qixin.services.accounts import ApiKey
from qixin.services.aliyun import VERSION, AcsError, request_id

if TYPE_CHECKING:
    from qixin.api.services import ApiServices as Services

FORM = "application/x-www-form-urlencoded"


def _instant(value: str) -> float | None:
    """Unix seconds of an ISO 8601 UTC time (``2026-12-01T08:00:00Z``), or None."""
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def _params(request: Request, body: bytes) -> list[tuple[str, str]]:
    pairs = list(request.query_params.multi_items())
    if body and request.headers.get("content-type", "").split(";")[0].strip().lower() == FORM:
        try:
            pairs += parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError as e:
            raise AcsError("isv.INVALID_PARAMETERS", "表单不是合法的 UTF-8", 400) from e
    return pairs


async def _key(platform: Services, access_key_id: str) -> ApiKey:
    key = await platform.directory.key(access_key_id)
    if key is None:
        raise QxError("APPKEY_INVALID", "AccessKeyId 不存在或已停用")
    return key


async def authenticate(platform: Services, request: Request, body: bytes) -> tuple[ApiKey, str, dict[str, str]]:
    """(API key, action, parameters) of a correctly signed Aliyun request."""
    skew = platform.settings.signature_skew
    pairs = _params(request, body)
    params = dict(pairs)
    h = request.headers
    auth = h.get("authorization", "")
    if auth.startswith(acs.V3_ALGORITHM):
        parsed = acs.parse_v3_authorization(auth)
        if parsed is None:
            raise QxError("AUTH_MISSING", "Authorization 格式错误")
        action, nonce, date = h.get("x-acs-action", ""), h.get("x-acs-signature-nonce", ""), h.get("x-acs-date", "")
        if h.get("x-acs-version", VERSION) != VERSION:
            raise AcsError("InvalidVersion", f"只支持版本 {VERSION}", 400)
        key = await _key(platform, parsed.access_key_id)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        query = request.query_params.multi_items()  # the form body is signed through its hash
        ok = acs.v3_verify(key.app_secret, parsed, request.method, request.url.path, query, headers, body)
        hashed = h.get("x-acs-content-sha256", "")
        canonical = acs.v3_canonical_request(request.method, request.url.path, query, headers, parsed.signed_headers,
                                             hashed)  # fmt: skip
        to_sign = f"{acs.V3_ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    elif "Signature" in params:
        action = params.get("Action") or h.get("x-acs-action", "")
        nonce, date = params.get("SignatureNonce", ""), params.get("Timestamp", "")
        if params.get("SignatureMethod") != "HMAC-SHA1" or params.get("SignatureVersion") != "1.0":
            raise QxError("AUTH_MISSING", "只支持 SignatureMethod=HMAC-SHA1、SignatureVersion=1.0")
        if params.get("Version", VERSION) != VERSION:
            raise AcsError("InvalidVersion", f"只支持版本 {VERSION}", 400)
        key = await _key(platform, params.get("AccessKeyId", ""))
        ok = acs.v2_verify(key.app_secret, request.method, params)
        to_sign = acs.v2_string_to_sign(request.method, params)
    else:
        raise QxError("AUTH_MISSING", "缺少签名（Authorization 或 Signature）")
    if not action:
        raise AcsError("MissingParameter", "缺少 x-acs-action 或 Action", 400)
    at = _instant(date)
    if at is None or abs(time.time() - at) > skew:
        raise QxError("TIMESTAMP_EXPIRED", f"请求时间超出允许范围（±{skew} 秒）")
    if not 8 <= len(nonce) <= 64:
        raise QxError("AUTH_MISSING", "签名随机数长度须为 8–64 个字符")
    if not ok:  # Aliyun names the string it signed (the SDKs compare it with theirs; it holds no secret)
        raise AcsError("SignatureDoesNotMatch", f"签名不匹配，server string to sign is:{to_sign}", 400,
                       "SIGNATURE_INVALID")  # fmt: skip
    ip = client_ip(request) or ""
    if not ip_allowed(ip, key.ip_allowlist):
        raise QxError("IP_FORBIDDEN", f"来源 IP {ip} 不在白名单内")
    if not await platform.nonces.first_use(key.app_key, nonce, skew * 2 + 10):  # last: forgeries burn nothing
        raise QxError("NONCE_REPLAYED")
    return key, action, {k: v for k, v in params.items() if k != "Signature"}


# Aliyun answers most refusals with 200 and an isv.* Code; signature, parameter, permission and lookup
# errors come with their HTTP status (services/aliyun.ISV_CODES, AcsError), always in the same shape
ACS_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": f"{what}：RequestId、Code、Message、HostId", "content": {"application/json": {}}}
    for status, what in ((400, "参数或签名错误"), (403, "无权限"), (404, "资源不存在"))
}


def aliyun_router(platform: Services) -> APIRouter:
    router = APIRouter(tags=["aliyun"])

    @router.post(
        "/", summary="阿里云短信 API 兼容接口（x-acs-action 头 V3 签名，或 Action 参数 V2 签名）",
        description="见 docs/aliyun.md：SendSms、SendBatchSms、QuerySendDetails、QuerySendStatistics、签名与模板接口。",
        responses=ACS_ERRORS,
    )  # fmt: skip
    async def acs_endpoint(request: Request) -> Response:
        rid = request_id()
        try:
            body = await request.body()
            key, action, params = await authenticate(platform, request, body)
            out = await platform.aliyun.call(key, key.actor(client_ip(request)), action, params)
            return json_response({"RequestId": rid} | out)
        except QxError as e:
            err = AcsError.of(e)
        except AcsError as e:
            err = e
        return json_response(
            {"RequestId": rid, "Code": err.code, "Message": err.message, "HostId": request.url.hostname or ""},
            err.status,
        )

    return router
