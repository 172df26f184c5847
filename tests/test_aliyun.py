"""The Aliyun-compatible API, driven by Aliyun's own SDKs over real loopback HTTP.

V3 (ACS3-HMAC-SHA256): the official ``alibabacloud_dysmsapi20170525`` client pointed at the platform.
V2 (RPC, HMAC-SHA1): ``aliyun-python-sdk-core``'s CommonRequest, Aliyun's documented test vector, and a
hand-built request for replays. Plus the SmsReport push to a real local receiver.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
import uvicorn
from alibabacloud_dysmsapi20170525 import models as sms
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_tea_openapi import models as openapi
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import CommonRequest
from conftest import Api, Running, free_port
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from qixin.domain import acs_signing as acs
from qixin.services.actor import Actor
from qixin.services.aliyun import ISV_CODES, aliyun_bodies, sms_up
from qixin.services.channels import extension_of

SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the HTTP layer; the use cases run on both
SHANGHAI = ZoneInfo("Asia/Shanghai")


def sdk(r: Running, api: Api, secret: str | None = None, key: str | None = None) -> Client:
    host = r.base.removeprefix("http://")
    cfg = openapi.Config(
        access_key_id=key or api.app_key, access_key_secret=secret or api.secret, endpoint=host, protocol="http"
    )
    return Client(cfg)


async def call(fn: Any, *args: Any) -> Any:
    """The SDK is synchronous: run it beside the event loop that serves the platform."""
    return await asyncio.to_thread(fn, *args)


async def approved_template(r: Running, api: Api, client: Client, content: str, kind: int = 0) -> str:
    req = sms.AddSmsTemplateRequest(template_type=kind, template_name="验证码", template_content=content, remark="登录")
    out = (await call(client.add_sms_template, req)).body
    assert out.code == "OK", out
    code = out.template_code
    assert code.startswith("SMS_")
    status = (await call(client.query_sms_template, sms.QuerySmsTemplateRequest(template_code=code))).body
    assert status.code == "OK" and status.template_status == 0 and status.template_content == content
    await r.platform.templates.review(Actor.cli(), int(code[4:]), True)
    status = (await call(client.query_sms_template, sms.QuerySmsTemplateRequest(template_code=code))).body
    assert status.template_status == 1
    return str(code)


@SQLITE
async def test_official_sdk_sends_queries_and_manages_signs_and_templates(running: Running) -> None:
    api = running.account(balance_li=10_000, price_li=35)
    client = sdk(running, api)
    code = await approved_template(running, api, client, "您的验证码是${code}，5分钟内有效。")

    sent = (await call(client.send_sms, sms.SendSmsRequest(
        phone_numbers="13800138000", sign_name="企信", template_code=code,
        template_param='{"code":"123456"}', out_id="order-1",
    ))).body  # fmt: skip
    assert sent.code == "OK" and sent.message == "OK" and sent.biz_id and sent.request_id, sent
    batch = (await api.get(f"/v1/batches/{sent.biz_id}")).json()  # the same batch as the /v1 API sees
    assert batch["accepted"] == 1

    both = (await call(client.send_batch_sms, sms.SendBatchSmsRequest(
        phone_number_json='["13900139000","13700137000"]', sign_name_json='["企信","企信"]',
        template_code=code, template_param_json='[{"code":"1111"},{"code":"2222"}]',
    ))).body  # fmt: skip
    assert both.code == "OK" and both.biz_id, both
    await running.wait_final(3)

    today = datetime.now(SHANGHAI).strftime("%Y%m%d")
    details = (await call(client.query_send_details, sms.QuerySendDetailsRequest(
        phone_number="13800138000", send_date=today, page_size=10, current_page=1, biz_id=sent.biz_id,
    ))).body  # fmt: skip
    assert details.code == "OK" and details.total_count == 1, details
    dto = details.sms_send_detail_dtos.sms_send_detail_dto[0]
    assert dto.phone_num == "13800138000" and dto.send_status in (2, 3) and dto.out_id == "order-1"
    assert dto.content == "【企信】您的验证码是123456，5分钟内有效。" and dto.template_code == code

    stats = (await call(client.query_send_statistics, sms.QuerySendStatisticsRequest(
        is_globe=1, start_date=today, end_date=today, page_index=1, page_size=10,
    ))).body  # fmt: skip
    assert stats.code == "OK" and stats.data.total_size == 1
    row = stats.data.target_list[0]
    assert row.total_count == 3 and row.responded_success_count + row.responded_fail_count == 3

    apply = sms.AddSmsSignRequest(sign_name="新签名", sign_source=0, remark="官网")
    added = (await call(client.add_sms_sign, apply)).body
    assert added.code == "OK" and added.sign_name == "新签名", added
    sign = (await call(client.query_sms_sign, sms.QuerySmsSignRequest(sign_name="新签名"))).body
    assert sign.code == "OK" and sign.sign_status == 0
    fee = (await api.get("/v1/account")).json()["balance_li"]
    assert fee == 10_000 - 3 * 35  # billed like /v1: one part each


@SQLITE
async def test_sign_and_template_review_lifecycle_modify_and_delete(running: Running) -> None:
    api = running.account(balance_li=10_000, price_li=35)
    client = sdk(running, api)
    assert (
        await call(client.add_sms_sign, sms.AddSmsSignRequest(sign_name="星河科技", remark="官网"))
    ).body.code == "OK"
    sign_id = next(s["id"] for s in await running.platform.signatures.listing(Actor.cli()) if s["name"] == "星河科技")
    await running.platform.signatures.review(Actor.cli(), sign_id, False, "资料不全")
    got = (await call(client.query_sms_sign, sms.QuerySmsSignRequest(sign_name="星河科技"))).body
    assert got.sign_status == 2 and got.reason == "资料不全"
    assert (
        await call(client.modify_sms_sign, sms.ModifySmsSignRequest(sign_name="星河科技", sign_source=0))
    ).body.code == "OK"
    got = (await call(client.query_sms_sign, sms.QuerySmsSignRequest(sign_name="星河科技"))).body
    assert got.sign_status == 0 and not got.reason
    again = (await call(client.modify_sms_sign, sms.ModifySmsSignRequest(sign_name="星河科技", sign_source=0))).body
    assert again.code == "isv.INVALID_PARAMETERS"  # only a rejected application can be amended
    assert (await call(client.delete_sms_sign, sms.DeleteSmsSignRequest(sign_name="星河科技"))).body.code == "OK"
    gone = (await call(client.query_sms_sign, sms.QuerySmsSignRequest(sign_name="星河科技"))).body
    assert gone.code == "isv.SMS_SIGNATURE_ILLEGAL"

    add = sms.AddSmsTemplateRequest(
        template_type=1, template_name="到货", template_content="您的包裹${no}已到。", remark=""
    )
    code = (await call(client.add_sms_template, add)).body.template_code
    await running.platform.templates.review(Actor.cli(), int(code[4:]), False, "缺少取件方式")
    amended = "您的包裹${no}已到，请到${shop}取件。"
    modify = sms.ModifySmsTemplateRequest(
        template_code=code, template_type=1, template_name="到货", template_content=amended, remark=""
    )
    assert (await call(client.modify_sms_template, modify)).body.code == "OK"
    got_t = (await call(client.query_sms_template, sms.QuerySmsTemplateRequest(template_code=code))).body
    assert got_t.template_status == 0 and got_t.template_content == amended
    await running.platform.templates.review(Actor.cli(), int(code[4:]), True)
    send = sms.SendSmsRequest(phone_numbers="13800138000", sign_name="企信", template_code=code,
                              template_param='{"no":"A12","shop":"东门驿站"}')  # fmt: skip
    assert (await call(client.send_sms, send)).body.code == "OK"
    assert (await call(client.delete_sms_template, sms.DeleteSmsTemplateRequest(template_code=code))).body.code == "OK"
    send.phone_numbers = "13900139000"
    assert (await call(client.send_sms, send)).body.code == "isv.SMS_TEMPLATE_ILLEGAL"  # deleted: no longer usable
    listed = (
        await call(client.query_sms_template_list, sms.QuerySmsTemplateListRequest(page_index=1, page_size=10))
    ).body
    assert listed.code == "OK" and all(t.template_code != code for t in listed.sms_template_list)


@SQLITE
async def test_refusals_are_aliyun_errors(running: Running) -> None:
    api = running.account(balance_li=10_000, price_li=35)
    client = sdk(running, api)
    code = await approved_template(running, api, client, "您的验证码是${code}，5分钟内有效。")

    def send(c: Client, number: str, sign: str = "企信", param: str = '{"code":"123456"}') -> Any:
        req = sms.SendSmsRequest(phone_numbers=number, sign_name=sign, template_code=code, template_param=param)
        return c.send_sms(req).body

    with pytest.raises(Exception) as bad:  # the SDK raises for HTTP errors, with Aliyun's Code
        await call(send, sdk(running, api, secret="wrong-secret"), "13800138000")
    assert getattr(bad.value, "code", None) == "SignatureDoesNotMatch", bad.value
    with pytest.raises(Exception) as unknown:
        await call(send, sdk(running, api, key="qx-no-such-key"), "13800138000")
    assert getattr(unknown.value, "code", None) == "InvalidAccessKeyId.NotFound"

    cases = [
        (("13800138000", "别人的签名"), "isv.SMS_SIGNATURE_ILLEGAL"),
        (("12345",), "isv.MOBILE_NUMBER_ILLEGAL"),
        (("13800138000", "企信", "{}"), "isv.TEMPLATE_MISSING_PARAMETERS"),
    ]
    for args, expected in cases:
        out = await call(send, client, *args)
        assert out.code == expected and out.message and out.request_id, (args, out)
    notice = await approved_template(running, api, client, "您的订单${no}已发货。", kind=1)
    forbidden = sms.SendSmsRequest(
        phone_numbers="13800138000", sign_name="企信", template_code=notice, template_param='{"no":"今日股票推荐"}'
    )
    out = (await call(client.send_sms, forbidden)).body  # compliance runs as over /v1
    assert out.code == "isv.BLACK_KEY_CONTROL_LIMIT", out
    nothing = await running.platform.db.read(lambda tx: tx.one("SELECT COUNT(*) FROM messages")[0])
    assert nothing == 0

    # the per-number frequency limit (verification codes: one a minute per number and signature)
    assert (await call(send, client, "13800138009")).code == "OK"
    limited = await call(send, client, "13800138009")
    assert limited.code == "isv.BUSINESS_LIMIT_CONTROL" and "频率" in limited.message, limited

    # flow control mapped: the daily cap, then the TPS cap
    await running.platform.flow.set(Actor.cli(), api.account_id, tps=0, daily_cap=1)
    assert (await call(send, client, "13800138001")).code == "OK"
    assert (await call(send, client, "13800138002")).code == "isv.DAY_LIMIT_CONTROL"
    await running.platform.flow.set(Actor.cli(), api.account_id, tps=1, daily_cap=0)
    got = [(await call(send, client, f"1380013800{i}")).code for i in (3, 4)]
    assert got == ["OK", "isv.BUSINESS_LIMIT_CONTROL"], got


@SQLITE
async def test_v2_rpc_signature_with_the_core_sdk_and_replays(running: Running) -> None:
    api = running.account(balance_li=10_000, price_li=35)
    code = await approved_template(running, api, sdk(running, api), "您的验证码是${code}，5分钟内有效。")
    host = running.base.removeprefix("http://")

    def v2(secret: str, number: str) -> dict[str, Any]:
        c = AcsClient(api.app_key, secret, "cn-hangzhou")
        r = CommonRequest(domain=host, version="2017-05-25", action_name="SendSms")
        r.set_protocol_type("http")
        r.set_method("POST")
        r.set_accept_format("json")
        for k, v in {"PhoneNumbers": number, "SignName": "企信", "TemplateCode": code,
                     "TemplateParam": '{"code":"654321"}'}.items():  # fmt: skip
            r.add_query_param(k, v)
        return dict(orjson.loads(c.do_action_with_exception(r)))

    ok = await call(v2, api.secret, "13800138000")
    assert ok["Code"] == "OK" and ok["BizId"], ok
    with pytest.raises(ServerException) as bad:
        await call(v2, "wrong-secret", "13900139000")
    assert bad.value.get_error_code() == "SignatureDoesNotMatch"

    # a hand-built V2 form request, sent twice: the second is a replay
    params = {
        "AccessKeyId": api.app_key, "Action": "QuerySmsSign", "Format": "JSON", "SignName": "企信",
        "SignatureMethod": "HMAC-SHA1", "SignatureNonce": uuid.uuid4().hex, "SignatureVersion": "1.0",
        "Timestamp": datetime.now(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ"), "Version": "2017-05-25",
    }  # fmt: skip
    params["Signature"] = acs.v2_signature(api.secret, "POST", params)
    async with httpx.AsyncClient(base_url=running.base) as http:
        first = await http.post("/", data=params)
        assert first.status_code == 200 and first.json()["Code"] == "OK" and first.json()["SignStatus"] == 1
        again = await http.post("/", data=params)
        assert again.status_code == 400 and again.json()["Code"] == "SignatureNonceUsed"
        tampered = await http.post("/", data=params | {"SignName": "别的", "SignatureNonce": "x" * 16})
        assert tampered.json()["Code"] == "SignatureDoesNotMatch"
        missing = await http.post("/", data={"Action": "SendSms"})
        assert missing.status_code == 400 and missing.json()["Code"] == "MissingParameter"


def test_v2_documented_vector_and_v3_canonical_request() -> None:
    # Aliyun's documented RPC signature example (DescribeRegions, AccessKeySecret "testsecret")
    params = {
        "AccessKeyId": "testid", "Action": "DescribeRegions", "Format": "XML", "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", "SignatureVersion": "1.0",
        "Timestamp": "2016-02-23T12:46:24Z", "Version": "2014-05-26",
    }  # fmt: skip
    assert acs.v2_string_to_sign("GET", params) == (
        "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1"
        "%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0"
        "%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
    )
    assert acs.v2_signature("testsecret", "GET", params) == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
    auth = acs.parse_v3_authorization("ACS3-HMAC-SHA256 Credential=ak,SignedHeaders=host;x-acs-action,Signature=AB")
    assert auth is not None and auth.signed_headers == ("host", "x-acs-action") and auth.signature == "ab"
    assert acs.parse_v3_authorization("Bearer x") is None
    canon = acs.v3_canonical_request("POST", "/", [("b", "2 3"), ("a", "中")], [("Host", " h "), ("host", "g")],
                                     ["host"], acs.EMPTY_SHA256)  # fmt: skip
    assert canon == f"POST\n/\na=%E4%B8%AD&b=2%203\nhost:g,h\n\nhost\n{acs.EMPTY_SHA256}"
    assert "ACCOUNT_THROTTLED" in ISV_CODES and "DAILY_CAP_EXCEEDED" in ISV_CODES


class Hook:
    """A customer's callback endpoint: records every body."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []

    async def handle(self, request: Request) -> Response:
        self.bodies.append(orjson.loads(await request.body()))
        return Response(b'{"code":0,"msg":"\xe6\x88\x90\xe5\x8a\x9f"}', media_type="application/json")


@pytest.fixture
async def hook() -> AsyncIterator[tuple[Hook, str]]:
    rec, port = Hook(), free_port()
    app = Starlette(routes=[Route("/report", rec.handle, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield rec, f"http://127.0.0.1:{port}/report"
    server.should_exit = True
    await task


async def test_receipts_pushed_as_sms_report_when_the_key_chooses_aliyun(running: Running, hook: Any) -> None:
    rec, url = hook
    api = running.account(balance_li=10_000, price_li=35)
    client = sdk(running, api)
    code = await approved_template(running, api, client, "您的验证码是${code}，5分钟内有效。")
    await running.platform.accounts.set_callback(Actor.cli(), api.app_key, url)
    await running.platform.aliyun.set_callback_format(Actor.cli(), api.app_key, "aliyun")
    sent = (await call(client.send_sms, sms.SendSmsRequest(
        phone_numbers="13800138000", sign_name="企信", template_code=code, template_param='{"code":"123456"}',
        out_id="o-7",
    ))).body  # fmt: skip
    assert sent.code == "OK"
    deadline = asyncio.get_running_loop().time() + 20
    while not rec.bodies:
        assert asyncio.get_running_loop().time() < deadline, "no SmsReport pushed"
        await asyncio.sleep(0.05)
    report = rec.bodies[0]
    assert isinstance(report, list) and len(report) == 1, report
    item = report[0]
    assert item["phone_number"] == "13800138000" and item["biz_id"] == sent.biz_id and item["out_id"] == "o-7"
    assert isinstance(item["success"], bool) and item["sms_size"] == "1" and item["err_code"]
    assert item["send_time"] and item["report_time"]
    # a real MO from the carrier simulator, to the account's extension: pushed as SmsUp
    ext = running.platform.db.write_sync(lambda tx: extension_of(tx, api.account_id))
    await running.runtime.simulator.send_mo("8613900001111", "10690000" + ext, "好的，收到")  # type: ignore[attr-defined]
    deadline = asyncio.get_running_loop().time() + 20
    while len(rec.bodies) < 2:
        assert asyncio.get_running_loop().time() < deadline, "no SmsUp pushed"
        await asyncio.sleep(0.05)
    up_item = rec.bodies[1][0]
    assert up_item["phone_number"] == "13900001111" and up_item["content"] == "好的，收到"
    assert up_item["dest_code"] == "10690000" + ext and up_item["sequence_id"] > 0 and up_item["send_time"]
    # the SmsUp mapping itself
    up = sms_up({"type": "mo", "id": "42", "from": "13800138000", "to": "106580001", "content": "TD",
                 "received_at": 1_764_547_200_000})  # fmt: skip
    assert up == {"phone_number": "13800138000", "send_time": "2025-12-01 08:00:00", "content": "TD",
                  "sign_name": "", "dest_code": "106580001", "sequence_id": 42}  # fmt: skip
    assert len(aliyun_bodies([{"type": "mo", "id": "1"}, {"type": "receipt", "to": "1"}])) == 2


def test_docs_code_table_is_the_mapping() -> None:
    from pathlib import Path

    from qixin.errors import CATALOGUE

    text = (Path(__file__).parent.parent / "docs" / "aliyun.md").read_text()
    table = text.split("<!-- isv-table:start -->")[1].split("<!-- isv-table:end -->")[0]
    rows = {}
    for line in table.strip().splitlines()[2:]:
        cells = [c.strip().strip("`") for c in line.strip("|").split("|")]
        rows[cells[0]] = (cells[1], int(cells[2]), cells[3])
    assert rows == {k: (c, s, CATALOGUE[k][1]) for k, (c, s) in ISV_CODES.items()}


@SQLITE
async def test_malformed_requests_get_aliyun_errors_never_a_500(running: Running) -> None:
    api = running.account()
    v3 = "ACS3-HMAC-SHA256 Credential={},SignedHeaders=host;x-acs-action,Signature=00"
    form = {"content-type": "application/x-www-form-urlencoded"}
    cases: list[tuple[dict[str, str], bytes, str]] = [
        ({"authorization": "ACS3-HMAC-SHA256"}, b"", "MissingParameter"),
        ({"authorization": "ACS3-HMAC-SHA256 Credential"}, b"", "MissingParameter"),
        ({"authorization": v3.format("nobody"), "x-acs-action": "SendSms"}, b"", "InvalidAccessKeyId.NotFound"),
        ({"authorization": v3.format(api.app_key), "x-acs-action": "SendSms", "x-acs-date": "yesterday",
          "x-acs-signature-nonce": "n" * 16}, b"", "InvalidTimeStamp.Expired"),
        ({"authorization": v3.format(api.app_key), "x-acs-action": "SendSms", "x-acs-version": "2099-01-01"}, b"",
         "InvalidVersion"),
        ({**form, "x-acs-action": "SendSms"}, b"\xff\xfe=\xff", "isv.INVALID_PARAMETERS"),
        ({**form}, b"Signature=x&AccessKeyId=" + api.app_key.encode(), "MissingParameter"),
        ({**form}, b"Signature=x&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&Action=SendSms&AccessKeyId=q",
         "InvalidAccessKeyId.NotFound"),
        ({}, b"", "MissingParameter"),
    ]  # fmt: skip
    async with httpx.AsyncClient(base_url=running.base) as http:
        for headers, body, code in cases:
            resp = await http.post("/", content=body, headers=headers)
            assert resp.status_code in (200, 400, 404), (headers, resp.text)
            out = resp.json()
            assert out["Code"] == code and out["RequestId"] and out["Message"], (headers, body, out)
        assert (await http.get("/healthz")).status_code == 200  # still serving
