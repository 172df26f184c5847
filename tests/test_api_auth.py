"""Signed requests: signature, timestamp window, nonce replay, IP allow-list."""

from __future__ import annotations

import time

import orjson
from conftest import Api, Running

from qixin.domain.signing import HEADER_SIGNATURE, canonical_request, sign, signed_headers
from qixin.services.actor import Actor


def test_canonical_request_layout() -> None:
    text = canonical_request("post", "/v1/sms", "a=1&b=2", "1700000000", "abcdefgh", b"{}")
    assert text == (
        "POST\n/v1/sms\na=1&b=2\n1700000000\nabcdefgh\n44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    )
    assert sign("s", "GET", "/", "", "1", "n", b"") == sign("s", "GET", "/", "", "1", "n", b"")
    assert sign("s", "GET", "/", "", "1", "n", b"") != sign("t", "GET", "/", "", "1", "n", b"")


async def test_valid_signature_with_query_is_accepted(running: Running) -> None:
    api = running.account()
    resp = await api.http.get(
        "/v1/account?b=2&a=x y",
        headers=signed_headers(api.app_key, api.secret, "GET", "/v1/account", query=[("b", "2"), ("a", "x y")]),
    )
    assert resp.status_code == 200, resp.text


async def test_wrong_secret_tampered_body_and_unknown_key(running: Running) -> None:
    api = running.account()
    forged = Api(api.base, api.app_key, "not-the-secret", api.account_id)
    resp = await forged.get("/v1/account")
    assert resp.status_code == 401 and resp.json()["code"] == "SIGNATURE_INVALID"
    await forged.aclose()
    body = orjson.dumps({"to": "13800138000", "content": "a", "signature": "企信"})
    headers = signed_headers(api.app_key, api.secret, "POST", "/v1/sms", body)
    resp = await api.http.post("/v1/sms", content=body.replace(b'"a"', b'"b"'), headers=headers)
    assert resp.json()["code"] == "SIGNATURE_INVALID"
    stranger = Api(api.base, "qxunknown", api.secret, 0)
    assert (await stranger.get("/v1/account")).json()["code"] == "APPKEY_INVALID"
    await stranger.aclose()


async def test_replayed_nonce_and_stale_timestamp_refused(running: Running) -> None:
    api = running.account()
    headers = signed_headers(api.app_key, api.secret, "GET", "/v1/account", nonce="fixed-nonce-1")
    assert (await api.http.get("/v1/account", headers=headers)).status_code == 200
    replay = await api.http.get("/v1/account", headers=headers)
    assert replay.status_code == 401 and replay.json()["code"] == "NONCE_REPLAYED"
    old = signed_headers(api.app_key, api.secret, "GET", "/v1/account", timestamp=int(time.time()) - 301)
    assert (await api.http.get("/v1/account", headers=old)).json()["code"] == "TIMESTAMP_EXPIRED"
    future = signed_headers(api.app_key, api.secret, "GET", "/v1/account", timestamp=int(time.time()) + 301)
    assert (await api.http.get("/v1/account", headers=future)).json()["code"] == "TIMESTAMP_EXPIRED"
    # a forged request must not burn a customer's nonce
    bad = dict(signed_headers(api.app_key, api.secret, "GET", "/v1/account", nonce="fresh-nonce-2"))
    good_sig = bad[HEADER_SIGNATURE]
    bad[HEADER_SIGNATURE] = "0" * 64
    assert (await api.http.get("/v1/account", headers=bad)).json()["code"] == "SIGNATURE_INVALID"
    bad[HEADER_SIGNATURE] = good_sig
    assert (await api.http.get("/v1/account", headers=bad)).status_code == 200


async def test_ip_allowlist(running: Running) -> None:
    api = running.account()
    await running.platform.accounts.set_ip_allowlist(Actor.cli(), api.app_key, ["10.0.0.0/8"])
    running.platform.directory.invalidate()
    resp = await api.get("/v1/account")
    assert resp.status_code == 403 and resp.json()["code"] == "IP_FORBIDDEN"
    await running.platform.accounts.set_ip_allowlist(Actor.cli(), api.app_key, ["127.0.0.1"])
    running.platform.directory.invalidate()
    assert (await api.get("/v1/account")).status_code == 200
