"""The Aliyun-compatible SMS API (dysmsapi 2017-05-25): actions mapped onto qixin's own use cases.

Rules (docs/aliyun.md):
- Each action calls the SAME use case as /v1: SendSms / SendBatchSms → ``AcceptService.accept`` (so
  compliance, billing, frequency limits, flow control apply alike); QuerySendDetails → message search;
  QuerySendStatistics → statistics; Add/Query/Delete/ModifySmsSign → signatures; the template actions →
  templates (Modify* resubmits a rejected application, Delete* withdraws one).
- Parameters arrive as Aliyun names them (strings); answers are Aliyun's JSON shapes with ``Code``,
  ``Message`` (Chinese) and ``RequestId``. A qixin refusal becomes the Aliyun code of ``ISV_CODES`` —
  the one table of the mapping — with HTTP 200 for business errors, as Aliyun does.
- Template codes are ``SMS_<template id>``; a bare id is accepted too.
- Receipt and MO pushes in Aliyun's SmsReport / SmsUp shapes for keys that chose that format
  (``callback_formats``): ``sms_report`` / ``sms_up`` turn qixin events into them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from qixin.errors import QxError
from qixin.services.accept import AcceptService
from qixin.services.accounts import ApiKey, Signatures, Templates
from qixin.services.actor import Actor, UseCase
from qixin.services.queries import MessageFilter, MessageSearch, Queries
from qixin.services.stats import Statistics
from qixin.store import aliyun as store
from qixin.store.db import Database, Tx

SHANGHAI = ZoneInfo("Asia/Shanghai")
VERSION = "2017-05-25"
MAX_SEND_NUMBERS = 1000  # SendSms: PhoneNumbers, comma separated
MAX_BATCH_NUMBERS = 100  # SendBatchSms: PhoneNumberJson
FORMATS = ("qixin", "aliyun")

# qixin code -> (Aliyun Code, HTTP status). Authentication errors are HTTP errors at Aliyun; the
# business refusals are HTTP 200 with an isv.* Code. docs/aliyun.md prints this table.
ISV_CODES: dict[str, tuple[str, int]] = {
    "AUTH_MISSING": ("MissingParameter", 400),
    "SIGNATURE_INVALID": ("SignatureDoesNotMatch", 400),
    "APPKEY_INVALID": ("InvalidAccessKeyId.NotFound", 404),
    "TIMESTAMP_EXPIRED": ("InvalidTimeStamp.Expired", 400),
    "NONCE_REPLAYED": ("SignatureNonceUsed", 400),
    "IP_FORBIDDEN": ("isv.DENY_IP_RANGE", 200),
    "FORBIDDEN": ("Forbidden.NoPermission", 403),
    "ACCOUNT_FROZEN": ("isv.ACCOUNT_ABNORMAL", 200),
    "FREE_TEXT_FORBIDDEN": ("isv.SMS_TEMPLATE_ILLEGAL", 200),
    "SIGNATURE_NOT_APPROVED": ("isv.SMS_SIGNATURE_ILLEGAL", 200),
    "SIGNATURE_NAME_INVALID": ("isv.SMS_SIGNATURE_ILLEGAL", 200),
    "TEMPLATE_NOT_APPROVED": ("isv.SMS_TEMPLATE_ILLEGAL", 200),
    "TEMPLATE_REVIEW_FAILED": ("isv.SMS_TEMPLATE_ILLEGAL", 200),
    "TEMPLATE_SYNTAX": ("isv.SMS_TEMPLATE_ILLEGAL", 200),
    "TEMPLATE_VAR_UNDECLARED": ("isv.SMS_TEMPLATE_ILLEGAL", 200),
    "TEMPLATE_VAR_TYPE_INVALID": ("isv.SMS_TEMPLATE_ILLEGAL", 200),
    "TEMPLATE_PARAM_MISSING": ("isv.TEMPLATE_MISSING_PARAMETERS", 200),
    "TEMPLATE_PARAM_INVALID": ("isv.TEMPLATE_PARAMS_ILLEGAL", 200),
    "TEMPLATE_PARAM_UNKNOWN": ("isv.TEMPLATE_PARAMS_ILLEGAL", 200),
    "CONTENT_TOO_LONG": ("isv.PARAM_LENGTH_LIMIT", 200),
    "NUMBERS_EMPTY": ("isv.MOBILE_NUMBER_ILLEGAL", 200),
    "NUMBER_INVALID": ("isv.MOBILE_NUMBER_ILLEGAL", 200),
    "NUMBER_DUPLICATE": ("isv.MOBILE_NUMBER_ILLEGAL", 200),
    "INTERNATIONAL_NOT_ALLOWED": ("isv.MOBILE_NUMBER_ILLEGAL", 200),
    "TOO_MANY_NUMBERS": ("isv.MOBILE_COUNT_OVER_LIMIT", 200),
    "CONTENT_FORBIDDEN": ("isv.BLACK_KEY_CONTROL_LIMIT", 200),
    "LINK_FORBIDDEN": ("isv.PARAM_NOT_SUPPORT_URL", 200),
    "OPTED_OUT": ("isv.BLACK_KEY_CONTROL_LIMIT", 200),
    "BLACKLISTED": ("isv.BLACK_KEY_CONTROL_LIMIT", 200),
    "RATE_LIMITED": ("isv.BUSINESS_LIMIT_CONTROL", 200),
    "ACCOUNT_THROTTLED": ("isv.BUSINESS_LIMIT_CONTROL", 200),
    "DAILY_CAP_EXCEEDED": ("isv.DAY_LIMIT_CONTROL", 200),
    "INSUFFICIENT_BALANCE": ("isv.AMOUNT_NOT_ENOUGH", 200),
    "BALANCE_EXPIRED": ("isv.AMOUNT_NOT_ENOUGH", 200),
    "INTERNAL_ERROR": ("isv.SYSTEM_ERROR", 200),
}
DEFAULT_ISV = ("isv.INVALID_PARAMETERS", 200)  # every other refusal (INVALID_REQUEST, NOT_FOUND, …)
TEMPLATE_TYPES = {"0": "verification", "1": "notification", "2": "marketing"}  # 3 (international): refused
TYPE_OF_CATEGORY = {v: int(k) for k, v in TEMPLATE_TYPES.items()}
REVIEW_STATUS = {"pending": 0, "approved": 1, "rejected": 2}  # SignStatus / TemplateStatus
TEMPLATE_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]{0,31})\}")  # the TEMPLATE_SYNTAX rule's variable
SEND_STATUS = {"delivered": 3, "undelivered": 2, "failed": 2, "rejected": 2, "expired": 2, "cancelled": 2}


class AcsError(Exception):
    """An Aliyun-shaped refusal: ``Code``, ``Message`` (Chinese) and its HTTP status."""

    def __init__(self, code: str, message: str, status: int = 200, qx_code: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status, self.qx_code = code, message, status, qx_code

    @classmethod
    def of(cls, err: QxError) -> AcsError:
        code, status = ISV_CODES.get(err.code, DEFAULT_ISV)
        if err.code == "NO_VALID_NUMBERS" and err.detail.get("rejected"):
            first = err.detail["rejected"][0]  # the reason of the first refused number
            code, status = ISV_CODES.get(first.get("code", ""), DEFAULT_ISV)
            return cls(code, f"{err.message}：{first.get('message', '')}", status, first.get("code"))
        if err.status >= 500 and err.code not in ISV_CODES:
            code, status = ISV_CODES["INTERNAL_ERROR"]
        return cls(code, err.message, status, err.code)


def request_id() -> str:
    return str(uuid.uuid4()).upper()


def _shanghai(ms: int | None) -> str | None:
    if not ms:
        return None
    return datetime.fromtimestamp(ms / 1000, SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def _param(params: Mapping[str, str], name: str, required: bool = True) -> str:
    value = params.get(name)
    if value is None or (required and not value.strip()):
        if required:
            raise AcsError("MissingParameter", f"缺少参数 {name}", 400)
        return ""
    return value


def _int(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise AcsError("isv.INVALID_PARAMETERS", f"参数 {name} 须为 {low}–{high} 的整数")
    return int(raw)


def _json(raw: str, name: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise AcsError("isv.INVALID_JSON_PARAM", f"参数 {name} 不是合法的 JSON") from e


def template_id_of(code: str) -> int:
    digits = code[4:] if code.upper().startswith("SMS_") else code
    if not digits.isascii() or not digits.isdigit() or not 0 < int(digits) < 2**63:
        raise AcsError("isv.SMS_TEMPLATE_ILLEGAL", "模板不存在或未审核通过")
    return int(digits)


def template_code(template_id: int | str) -> str:
    return f"SMS_{template_id}"


def _day_range(yyyymmdd: str, name: str) -> tuple[str, str]:
    """An Aliyun date (yyyyMMdd, Beijing time) as the ISO start and end of that day."""
    try:
        day = datetime.strptime(yyyymmdd, "%Y%m%d")
    except ValueError as e:
        raise AcsError("isv.INVALID_PARAMETERS", f"参数 {name} 须为 yyyyMMdd 格式的日期") from e
    start = day.replace(tzinfo=SHANGHAI)
    return start.isoformat(), start.replace(hour=23, minute=59, second=59).isoformat()


def template_variables(category: str, content: str) -> dict[str, str]:
    """Aliyun templates declare no variable types: ``code`` for the one code variable of a verification
    template (the variable named ``code``, or the only variable), ``text:35`` for every other."""
    names = list(dict.fromkeys(m.group(1) for m in TEMPLATE_VAR.finditer(content)))
    out = dict.fromkeys(names, "text:35")
    if category == "verification" and names:
        out["code" if "code" in out else names[0]] = "code"
    return out


# -- receipt and MO pushes in Aliyun's shapes --------------------------------------------------------------


def sms_report(event: dict[str, Any]) -> dict[str, Any]:
    """A qixin receipt event as one SmsReport item."""
    delivered = event.get("status") == "delivered"
    err = event.get("carrier_stat") or event.get("error_code") or ("DELIVERED" if delivered else "UNKNOWN")
    return {
        "phone_number": event.get("to"),
        "send_time": _shanghai(event.get("submitted_at")),
        "report_time": _shanghai(event.get("done_at")),
        "success": delivered,
        "err_code": "DELIVERED" if delivered else err,
        "err_msg": "用户接收成功" if delivered else (event.get("carrier_err") or err),
        "sms_size": str(event.get("parts") or 1),
        "biz_id": event.get("batch_id"),
        "out_id": event.get("out_id"),
    }


def sms_up(event: dict[str, Any]) -> dict[str, Any]:
    """A qixin MO event as one SmsUp item (dest_code: the extension after the service code)."""
    return {
        "phone_number": event.get("from"),
        "send_time": _shanghai(event.get("received_at")),
        "content": event.get("content"),
        "sign_name": event.get("sign_name", ""),
        "dest_code": event.get("to"),
        "sequence_id": int(event.get("id") or 0),
    }


def aliyun_bodies(events: list[dict[str, Any]]) -> list[bytes]:
    """The bodies to POST for a key in the Aliyun format: one SmsReport array for the receipts, one SmsUp
    array for the MO (each only when there is such an event)."""
    reports = [sms_report(e) for e in events if e.get("type") == "receipt"]
    ups = [sms_up(e) for e in events if e.get("type") == "mo"]
    return [orjson.dumps(items) for items in (reports, ups) if items]


# -- the actions ---------------------------------------------------------------------------------------------


class AliyunApi(UseCase):
    """One method per supported action; each takes the caller's API key and the Aliyun parameters."""

    def __init__(
        self,
        db: Database,
        accept: AcceptService,
        search: MessageSearch,
        queries: Queries,
        statistics: Statistics,
        signatures: Signatures,
        templates: Templates,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(db, on_change)
        self.accept = accept
        self.search = search
        self.queries = queries
        self.statistics = statistics
        self.signatures = signatures
        self.templates = templates
        self.actions: dict[str, Callable[[ApiKey, Actor, Mapping[str, str]], Any]] = {
            "SendSms": self.send_sms,
            "SendBatchSms": self.send_batch_sms,
            "QuerySendDetails": self.query_send_details,
            "QuerySendStatistics": self.query_send_statistics,
            "AddSmsSign": self.add_sign,
            "QuerySmsSign": self.query_sign,
            "QuerySmsSignList": self.query_sign_list,
            "DeleteSmsSign": self.delete_sign,
            "ModifySmsSign": self.modify_sign,
            "AddSmsTemplate": self.add_template,
            "QuerySmsTemplate": self.query_template,
            "QuerySmsTemplateList": self.query_template_list,
            "DeleteSmsTemplate": self.delete_template,
            "ModifySmsTemplate": self.modify_template,
        }

    async def call(self, key: ApiKey, actor: Actor, action: str, params: Mapping[str, str]) -> dict[str, Any]:
        """The action's answer (without RequestId); AcsError for every refusal."""
        handler = self.actions.get(action)
        if handler is None:
            raise AcsError("InvalidAction.NotFound", f"不支持的接口 {action}", 404)
        try:
            out: dict[str, Any] = await handler(key, actor, params)
        except QxError as e:
            raise AcsError.of(e) from e
        return {"Code": "OK", "Message": "OK"} | out

    # -- sending -------------------------------------------------------------------------------------
    async def _send(self, key: ApiKey, body: dict[str, Any]) -> dict[str, Any]:
        return await self.accept.accept(key, body, orjson.dumps(body))

    async def send_sms(self, key: ApiKey, actor: Actor, p: Mapping[str, str]) -> dict[str, Any]:
        numbers = [n.strip() for n in _param(p, "PhoneNumbers").split(",") if n.strip()]
        if len(numbers) > MAX_SEND_NUMBERS:
            raise AcsError("isv.MOBILE_COUNT_OVER_LIMIT", f"单次最多 {MAX_SEND_NUMBERS} 个号码")
        body: dict[str, Any] = {
            "to": numbers,
            "signature": _param(p, "SignName"),
            "template_id": template_id_of(_param(p, "TemplateCode")),
            "params": _json(p["TemplateParam"], "TemplateParam") if p.get("TemplateParam") else {},
        }
        if p.get("OutId"):
            body["out_id"] = p["OutId"]
        resp = await self._send(key, body)
        return {"BizId": resp["batch_id"]}

    async def send_batch_sms(self, key: ApiKey, actor: Actor, p: Mapping[str, str]) -> dict[str, Any]:
        numbers = _json(_param(p, "PhoneNumberJson"), "PhoneNumberJson")
        signs = _json(_param(p, "SignNameJson"), "SignNameJson")
        params = _json(p["TemplateParamJson"], "TemplateParamJson") if p.get("TemplateParamJson") else None
        if not isinstance(numbers, list) or not numbers or not all(isinstance(n, str) for n in numbers):
            raise AcsError("isv.MOBILE_NUMBER_ILLEGAL", "PhoneNumberJson 须为号码字符串数组")
        if len(numbers) > MAX_BATCH_NUMBERS:
            raise AcsError("isv.MOBILE_COUNT_OVER_LIMIT", f"单次最多 {MAX_BATCH_NUMBERS} 个号码")
        if not isinstance(signs, list) or len(signs) != len(numbers):
            raise AcsError("isv.INVALID_PARAMETERS", "SignNameJson 须与 PhoneNumberJson 一一对应")
        if params is not None and (not isinstance(params, list) or len(params) != len(numbers)):
            raise AcsError("isv.INVALID_PARAMETERS", "TemplateParamJson 须与 PhoneNumberJson 一一对应")
        template_id = template_id_of(_param(p, "TemplateCode"))
        # one accept per distinct (signature, parameters): numbers that share both go in one batch
        groups: dict[bytes, tuple[str, dict[str, Any], list[str]]] = {}
        for i, number in enumerate(numbers):
            values = params[i] if params is not None else {}
            if not isinstance(values, dict) or not isinstance(signs[i], str):
                raise AcsError("isv.INVALID_PARAMETERS", "SignNameJson / TemplateParamJson 元素类型错误")
            group = groups.setdefault(orjson.dumps([signs[i], values]), (signs[i], values, []))
            group[2].append(number)
        biz: list[str] = []
        for sign, values, to in groups.values():
            resp = await self._send(key, {"to": to, "signature": sign, "template_id": template_id, "params": values})
            biz.append(resp["batch_id"])
        return {"BizId": biz[0]} | ({"BizIds": biz} if len(biz) > 1 else {})

    # -- queries ---------------------------------------------------------------------------------------
    async def query_send_details(self, key: ApiKey, actor: Actor, p: Mapping[str, str]) -> dict[str, Any]:
        number = _param(p, "PhoneNumber")
        since, until = _day_range(_param(p, "SendDate"), "SendDate")
        size = _int(p, "PageSize", 10, 1, 50)
        page = _int(p, "CurrentPage", 1, 1, 1000)
        f = MessageFilter(number=number, batch_id=p.get("BizId") or None, since=since, until=until)
        found = await self.search.search(actor, f, limit=1000)
        items = found["items"]
        details = []
        for it in items[(page - 1) * size : page * size]:
            msg = await self.queries.message(actor, it["id"])
            status = SEND_STATUS.get(it["status"], 1)
            details.append({
                "PhoneNum": it["to"], "SendStatus": status,
                "ErrCode": "DELIVERED" if status == 3 else (it["carrier_stat"] or it["error_code"] or ""),
                "TemplateCode": template_code(it["template_id"]) if it["template_id"] else "",
                "Content": msg["content"], "SendDate": _shanghai(it["created_at"]),
                "ReceiveDate": _shanghai(it["done_at"]) or "", "OutId": it["out_id"] or "",
            })  # fmt: skip
        return {"TotalCount": len(items), "SmsSendDetailDTOs": {"SmsSendDetailDTO": details}}

    async def query_send_statistics(self, key: ApiKey, actor: Actor, p: Mapping[str, str]) -> dict[str, Any]:
        if p.get("IsGlobe", "1") not in ("1", "2"):
            raise AcsError("isv.INVALID_PARAMETERS", "IsGlobe 须为 1（国内）或 2（国际）")
        since, _ = _day_range(_param(p, "StartDate"), "StartDate")
        _, until = _day_range(_param(p, "EndDate"), "EndDate")
        index = _int(p, "PageIndex", 1, 1, 10_000)
        size = _int(p, "PageSize", 10, 1, 50)
        filters: dict[str, Any] = {}
        if p.get("SignName"):
            filters["signature"] = p["SignName"]
        if p.get("TemplateType"):
            if p["TemplateType"] not in TEMPLATE_TYPES:
                raise AcsError("isv.INVALID_PARAMETERS", "TemplateType 须为 0、1 或 2")
            filters["type"] = TEMPLATE_TYPES[p["TemplateType"]]
        out = await self.statistics.query(actor, (), "day", since, until, filters)
        intl = p.get("IsGlobe", "1") == "2"
        rows = []
        for g in sorted(out["groups"], key=lambda g: g["day"], reverse=True):
            by = g["by_status"]
            ok = by.get("delivered", 0)
            fail = sum(by.get(s, 0) for s in ("undelivered", "failed", "rejected", "expired", "cancelled"))
            rows.append({
                "SendDate": g["day"].replace("-", ""), "TotalCount": g["messages"],
                "RespondedSuccessCount": ok, "RespondedFailCount": fail,
                "NoRespondedCount": g["messages"] - ok - fail,
            })  # fmt: skip
        if intl:  # qixin's statistics do not split international yet: see docs/aliyun.md
            rows = []
        return {"Data": {"TotalSize": len(rows), "TargetList": rows[(index - 1) * size : index * size]}}

    # -- signatures and templates ----------------------------------------------------------------------
    async def add_sign(self, key: ApiKey, actor: Actor, p: Mapping[str, str]) -> dict[str, Any]:
        out = await self.signatures.apply(actor, _param(p, "SignName"), p.get("Remark", ""))
        return {"SignName": out["name"], "OrderId": str(out["id"])}

    def _sign_item(self, s: dict[str, Any]) -> dict[str, Any]:
        return {
            "SignName": s["name"], "SignStatus": REVIEW_STATUS.get(s["status"], 0), "AuditStatus": s["status"],
            "Reason": s["reason"] or "", "CreateDate": _shanghai(s["created_at"]), "OrderId": str(s["id"]),
        }  # fmt: skip

    async def query_sign(self, key: ApiKey, actor: Actor, p: Mapping[str, str]) -> dict[str, Any]:
        name = _param(p, "SignName")
        found = [s for s in await self.signatures.listing(actor) if s["name"] == name]
        if not found:
            raise AcsError("isv.SMS_SIGNATURE_ILLEGAL", "签名不存在")
        return self._sign_item(found[-1])

    async def _sign_id(self, actor: Actor, name: str) -> int:
        found = [s for s in await self.signatures.listing(actor) if s["name"] == name]
        if not found:
            raise AcsError("isv.SMS_SIGNATURE_ILLEGAL", "签名不存在")
        return int(found[-1]["id"])

    async def delete_sign(self, key: ApiKey, actor: Actor, p: Mapping[str, str]) -> dict[str, Any]:
        name = _param(p, "SignName")
        await self.signatures.withdraw(actor, await self._sign_id(actor, name))
        return {"SignName": name}

    async def modify_sign(self, key: ApiKey, actor: Actor, p: Mapping[str, str]) -> dict[str, Any]:
        name = _param(p, "SignName")
        await self.signatures.modify(actor, await self._sign_id(actor, name))
        return {"SignName": name}

    async def query_sign_list(self, key: ApiKey, actor: Actor, p: Mapping[str, str]) -> dict[str, Any]:
        index, size = _int(p, "PageIndex", 1, 1, 10_000), _int(p, "PageSize", 10, 1, 50)
        items = [self._sign_item(s) for s in await self.signatures.listing(actor)]
        return {"TotalCount": len(items), "CurrentPage": index, "PageSize": size,
                "SmsSignList": items[(index - 1) * size : index * size]}  # fmt: skip

    async def add_template(self, key: ApiKey, actor: Actor, p: Mapping[str, str]) -> dict[str, Any]:
        kind = _param(p, "TemplateType")
        if kind not in TEMPLATE_TYPES:
            raise AcsError("isv.INVALID_PARAMETERS", "TemplateType 须为 0（验证码）、1（通知）或 2（推广）")
        category, content = TEMPLATE_TYPES[kind], _param(p, "TemplateContent")
        out = await self.templates.apply(
            actor, _param(p, "TemplateName"), category, content, template_variables(category, content)
        )
        return {"TemplateCode": template_code(out["id"]), "OrderId": str(out["id"])}

    def _template_item(self, t: dict[str, Any]) -> dict[str, Any]:
        return {
            "TemplateCode": template_code(t["id"]), "TemplateName": t["name"],
            "TemplateType": TYPE_OF_CATEGORY.get(t["category"], 1), "TemplateContent": t["content"],
            "TemplateStatus": REVIEW_STATUS.get(t["status"], 0), "AuditStatus": t["status"],
            "Reason": t["reason"] or "", "CreateDate": _shanghai(t["created_at"]),
        }  # fmt: skip

    async def query_template(self, key: ApiKey, actor: Actor, p: Mapping[str, str]) -> dict[str, Any]:
        try:
            t = await self.templates.get(actor, template_id_of(_param(p, "TemplateCode")))
        except QxError as e:
            raise AcsError("isv.SMS_TEMPLATE_ILLEGAL", "模板不存在") from e
        return self._template_item(t)

    async def delete_template(self, key: ApiKey, actor: Actor, p: Mapping[str, str]) -> dict[str, Any]:
        code = _param(p, "TemplateCode")
        try:
            await self.templates.withdraw(actor, template_id_of(code))
        except QxError as e:
            raise AcsError("isv.SMS_TEMPLATE_ILLEGAL", "模板不存在") from e
        return {"TemplateCode": code}

    async def modify_template(self, key: ApiKey, actor: Actor, p: Mapping[str, str]) -> dict[str, Any]:
        code, kind = _param(p, "TemplateCode"), _param(p, "TemplateType")
        if kind not in TEMPLATE_TYPES:
            raise AcsError("isv.INVALID_PARAMETERS", "TemplateType 须为 0（验证码）、1（通知）或 2（推广）")
        category, content = TEMPLATE_TYPES[kind], _param(p, "TemplateContent")
        await self.templates.modify(
            actor, template_id_of(code), _param(p, "TemplateName"), category, content,
            template_variables(category, content),
        )  # fmt: skip
        return {"TemplateCode": code}

    async def query_template_list(self, key: ApiKey, actor: Actor, p: Mapping[str, str]) -> dict[str, Any]:
        index, size = _int(p, "PageIndex", 1, 1, 10_000), _int(p, "PageSize", 10, 1, 50)
        items = [self._template_item(t) for t in await self.templates.listing(actor)]
        return {"TotalCount": len(items), "CurrentPage": index, "PageSize": size,
                "SmsTemplateList": items[(index - 1) * size : index * size]}  # fmt: skip

    # -- the push format of a key -------------------------------------------------------------------------
    async def callback_format(self, actor: Actor, app_key: str) -> dict[str, Any]:
        def q(tx: Tx) -> dict[str, Any]:
            key_id, _ = self._key_of(tx, actor, app_key)
            return {"app_key": app_key, "format": store.callback_format(tx, key_id) or "qixin"}

        return await self.read(q)

    async def set_callback_format(self, actor: Actor, app_key: str, fmt: str) -> dict[str, Any]:
        """``aliyun``: receipts and MO are pushed as SmsReport / SmsUp arrays; ``qixin``: qixin's events."""
        if fmt not in FORMATS:
            raise QxError("INVALID_REQUEST", "推送格式须为 qixin 或 aliyun")
        if not actor.is_customer:
            actor.require("accounts.write")

        def job(tx: Tx) -> dict[str, Any]:
            key_id, _ = self._key_of(tx, actor, app_key)
            store.set_callback_format(tx, key_id, fmt)
            return {"app_key": app_key, "format": fmt}

        return await self.change(actor, "key.callback_format", f"key:{app_key}", job)

    @staticmethod
    def _key_of(tx: Tx, actor: Actor, app_key: str) -> tuple[int, int]:
        row = store.key_ids(tx, app_key)
        if row is None or (actor.is_customer and row[1] != actor.account_id):
            raise QxError("APPKEY_INVALID")
        return row
