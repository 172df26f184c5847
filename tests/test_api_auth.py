"""Signed requests: signature, timestamp window, nonce replay, IP allow-list."""

from __future__ import annotations

import time

import orjson
from conftest import Api, Running

from qixin.domain.signing import HEADER_SIGNATURE, canonical_request, sign, signed_headers
from qixin.services.actor import Actor
from qixin.services.nonces import DatabaseNonceStore


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


async def _post_send(api: Api, body: dict[str, object], nonce: str) -> tuple[int, dict[str, object]]:
    raw = orjson.dumps(body)
    headers = signed_headers(api.app_key, api.secret, "POST", "/v1/sms", raw, nonce=nonce)
    headers["Content-Type"] = "application/json"
    resp = await api.http.post("/v1/sms", content=raw, headers=headers)
    return resp.status_code, resp.json()


async def test_a_send_spends_its_nonce_in_the_accept_transaction_and_refusals_spend_it_too(running: Running) -> None:
    """The send route spends the nonce inside the accept job (one write per send, not two); a send
    refused inside that job (balance) or before it (numbers, frequency) still spends it, so a replay
    after the cause is gone is refused, not accepted."""
    from qixin.domain.money import yuan_to_li

    db = running.platform.db
    assert isinstance(running.platform.nonces, DatabaseNonceStore)  # the embedded default
    api = running.account()
    jobs: list[str] = []  # the write jobs while the send runs (the dispatcher's own writes included)
    submit = db.submit

    def counting(job):  # type: ignore[no-untyped-def]
        jobs.append(getattr(getattr(job, "fn", job), "__qualname__", ""))  # a Batched job: its function
        return submit(job)

    db.submit = counting  # type: ignore[method-assign]
    try:
        body = {"to": "13800138000", "content": "一次提交一次写入", "signature": "企信"}
        status, out = await _post_send(api, body, "send-nonce-001")
        assert status == 200 and out["accepted_count"] == 1, out
        # the nonce went with the messages, in the accept job: no write job of the nonce store's own
        assert any("persist_many" in j for j in jobs) and not any("first_use" in j for j in jobs), jobs
    finally:
        db.submit = submit  # type: ignore[method-assign]
    status, out = await _post_send(api, body, "send-nonce-001")
    assert (status, out["code"]) == (401, "NONCE_REPLAYED")

    # refused inside the accept job: no balance; after a top-up the replay is still refused
    poor = running.account(balance_li=0)
    body = {"to": "13800138001", "content": "余额不足时的请求", "signature": "企信"}
    status, out = await _post_send(poor, body, "send-nonce-002")
    assert out["code"] == "INSUFFICIENT_BALANCE", out
    await running.platform.billing.topup(Actor.cli(), poor.account_id, yuan_to_li("10"), "t-1", "test")
    status, out = await _post_send(poor, body, "send-nonce-002")
    assert (status, out["code"]) == (401, "NONCE_REPLAYED")
    assert (await _post_send(poor, body, "send-nonce-003"))[1]["accepted_count"] == 1  # a fresh nonce goes

    # refused before the job (no valid number): the nonce is spent on its own
    status, out = await _post_send(api, {"to": "123", "content": "无效", "signature": "企信"}, "send-nonce-004")
    assert out["code"] == "NO_VALID_NUMBERS", out
    status, out = await _post_send(api, {"to": "123", "content": "无效", "signature": "企信"}, "send-nonce-004")
    assert (status, out["code"]) == (401, "NONCE_REPLAYED")

    # an idempotent repeat answered from the stored answer still spends its own nonce
    body = {"to": "13800138002", "content": "幂等", "signature": "企信", "idempotency_key": "idem-n-1"}
    assert (await _post_send(api, body, "send-nonce-005"))[1]["accepted_count"] == 1
    again = await _post_send(api, body, "send-nonce-006")
    assert again[0] == 200 and again[1]["batch_id"]
    assert (await _post_send(api, body, "send-nonce-006"))[1]["code"] == "NONCE_REPLAYED"
    count = db.read_sync(lambda tx: tx.one("SELECT COUNT(*) FROM messages WHERE account_id = ?", (api.account_id,)))
    assert int(count[0]) == 2
