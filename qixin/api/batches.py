"""File jobs over HTTP: POST /v1/batches (upload → job, or ``?preview=1``), list, cancel.

Thin: the signed body (multipart/form-data with a ``file``, or JSON with pasted ``numbers``) becomes the
file bytes and ``JobOptions``; the use case (services/filejobs.FileJobs) does the rest. A job's progress
is read at ``GET /v1/batches/{id}`` — the batch route of api/app.py, which answers a file job when the id
is one (job and batch ids come from one generator, so they never collide).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from qixin.api import deps
from qixin.api.common import error_responses, json_response, parse_json
from qixin.errors import QxError
from qixin.services.filejobs import JobOptions

if TYPE_CHECKING:
    from qixin.api.services import ApiServices as Services

AUTH = ("AUTH_MISSING", "APPKEY_INVALID", "SIGNATURE_INVALID", "TIMESTAMP_EXPIRED", "NONCE_REPLAYED", "IP_FORBIDDEN")
FILE_ERRORS = (
    "FILE_INVALID", "FILE_TOO_LARGE", "FILE_TOO_MANY_NUMBERS", "FILE_COLUMN_UNKNOWN", "NUMBERS_EMPTY",
    "ACCOUNT_FROZEN", "FREE_TEXT_FORBIDDEN", "SIGNATURE_NOT_APPROVED", "TEMPLATE_NOT_APPROVED",
    "TEMPLATE_PARAM_MISSING", "TEMPLATE_PARAM_INVALID", "CONTENT_EMPTY", "CONTENT_TOO_LONG", "TYPE_INVALID",
    "SEND_AT_INVALID", "SEND_AT_TOO_FAR", "CONTENT_FORBIDDEN", "CONTENT_SPECIAL_CHAR", "UNSUBSCRIBE_MISSING",
    "LINK_FORBIDDEN", "AUDIENCE_REQUIRED", "BODY_TOO_LARGE", "INVALID_JSON",
)  # fmt: skip
FORM_FIELDS = ("signature", "type", "content", "template_id", "number_column", "send_at", "audience")


class FileJobError(BaseModel):
    code: str
    message: str


class FileJobProgress(BaseModel):
    """A file job and its progress (POST /v1/batches, GET /v1/batches/{id} for a job id)."""

    job_id: str
    kind: Literal["file_job"]
    account_id: int
    status: Literal["running", "done", "failed", "cancelled"]
    filename: str
    size: int = Field(description="文件字节数")
    type: str | None
    signature: str | None
    template_id: str | None
    total: int = Field(description="文件中的号码数")
    processed: int = Field(description="已处理的号码数（已提交的分片 + 去掉的重复号码）")
    percent: int
    chunks: int
    chunks_done: int
    accepted: int
    rejected: int
    refused: dict[str, int] = Field(
        description="按错误码统计的未发送号码数（NUMBER_INVALID、NUMBER_DUPLICATE、OPTED_OUT…）"
    )
    fee_li: int
    fee: str
    batch_ids: list[str] = Field(description="各分片生成的批次（GET /v1/batches/{batch_id}/report 可查明细）")
    error: FileJobError | None
    created_at: int
    finished_at: int | None


class FileJobList(BaseModel):
    jobs: list[FileJobProgress]


class FileJobPreview(BaseModel):
    """POST /v1/batches?preview=1: what the job would do (nothing stored, nothing billed)."""

    filename: str
    total: int
    valid: int
    invalid: int
    duplicate: int
    opted_out: int
    blacklisted: int
    refused: dict[str, int]
    examples: dict[str, list[str]] = Field(description="每类最多 3 个号码示例（已脱敏）；valid 为可发送号码")
    parts: int = Field(description="每条短信的计费条数（个性化发送时为最大值）")
    parts_min: int
    total_parts: int
    total_fee_li: int = Field(description="预计费用（厘），未扣除条数包")
    total_fee: str
    balance_li: int = Field(description="当前余额（厘）")
    balance_enough: bool = Field(description="余额是否够付预计费用（条数包可能支付其余部分）")
    chunks: int
    content: str | None = Field(description="第一条短信的完整内容（含【签名】）")
    send_at: int | None
    send_at_local: str | None
    deferred_to: int | None = Field(description="发送时段外：推迟到的时间（毫秒，UTC）")
    deferred_to_local: str | None


def _mapping(value: Any, name: str) -> dict[str, str]:
    """A {variable: value} object from JSON, or from ``a=b,c=d`` text."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError as e:
                raise QxError("INVALID_REQUEST", f"{name} 不是合法的 JSON 对象") from e
        else:
            pairs = [p.partition("=") for p in text.split(",") if p.strip()]
            if any(not k.strip() or not sep for k, sep, _ in pairs):
                raise QxError("INVALID_REQUEST", f"{name} 应写作 变量=列名,变量=列名 或 JSON 对象")
            return {k.strip(): v.strip() for k, _, v in pairs}
    if not isinstance(value, dict):
        raise QxError("INVALID_REQUEST", f"{name} 必须是对象")
    return {str(k): str(v) for k, v in value.items()}


def _options(fields: dict[str, Any]) -> JobOptions:
    def text(name: str) -> str | None:
        v = fields.get(name)
        if v is None or v == "":
            return None
        if isinstance(v, int | float) and not isinstance(v, bool):
            return str(v)
        if not isinstance(v, str):
            raise QxError("INVALID_REQUEST", f"字段 {name} 必须是字符串")
        return v

    send_at: Any = fields.get("send_at")
    if isinstance(send_at, str) and send_at.strip().isdigit():
        send_at = int(send_at)
    return JobOptions(
        signature=text("signature"), type=text("type") or "notification", content=text("content"),
        template_id=text("template_id"), params=_mapping(fields.get("params"), "params"),
        params_columns=_mapping(fields.get("params_columns"), "params_columns"),
        number_column=text("number_column"), send_at=send_at if send_at not in ("", None) else None,
        audience=text("audience"), skip_empty=_flag(fields.get("skip_empty"), "skip_empty"),
        skip_silent=_flag(fields.get("skip_silent"), "skip_silent"),
    )  # fmt: skip


def _flag(value: Any, name: str) -> bool:
    """A true / false field (JSON boolean, or the form's text "true" / "false" / "1" / "0")."""
    if value is None or value == "" or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "1", "false", "0"):
        return value.lower() in ("true", "1")
    raise QxError("INVALID_REQUEST", f"{name} 必须是 true 或 false")


async def _upload(platform: Services, request: Request, body: bytes) -> tuple[bytes, str, JobOptions]:
    """The file (or pasted numbers) and the options of a signed POST /v1/batches."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        try:
            form = await request.form(max_files=1, max_fields=32, max_part_size=platform.settings.filejob_max_bytes)
        except QxError:
            raise
        except Exception as e:
            raise QxError("FILE_INVALID", "multipart 请求体格式错误") from e
        fields: dict[str, Any] = {}
        data: bytes | None = None
        filename = ""
        for name, value in form.multi_items():
            if isinstance(value, str):
                fields[name] = value
            elif name == "file":
                data = await value.read()
                filename = value.filename or "upload"
        await form.close()
        if data is None and isinstance(fields.get("numbers"), str):
            data, filename = fields["numbers"].encode(), "numbers.txt"
    else:
        fields = parse_json(body)
        numbers = fields.get("numbers")
        if isinstance(numbers, list) and all(isinstance(n, str) for n in numbers):
            numbers = "\n".join(numbers)
        data = numbers.encode() if isinstance(numbers, str) else None
        filename = "numbers.txt"
    if data is None:
        raise QxError("FILE_INVALID", "缺少文件（file）或号码（numbers）")
    return data, filename, _options(fields)


def batch_routers(platform: Services) -> list[APIRouter]:
    v1 = APIRouter(prefix="/v1", tags=["file jobs"])

    @v1.post(
        "/batches",
        summary="文件发送：上传 CSV/XLSX/TXT（或粘贴号码）创建任务；preview=1 只预览不发送",
        status_code=202,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "file": {"type": "string", "format": "binary", "description": "CSV、XLSX 或 TXT"},
                                "numbers": {
                                    "type": "string",
                                    "description": "粘贴的号码（每行一个或逗号分隔），代替 file",
                                },
                                **{n: {"type": "string"} for n in FORM_FIELDS},
                                "params": {"type": "string", "description": "模板变量 JSON 对象（所有号码相同）"},
                                "params_columns": {
                                    "type": "string",
                                    "description": "个性化：模板变量对应的列，JSON 对象或 变量=列名,变量=列名",
                                },
                            },
                        }
                    },
                    "application/json": {
                        "schema": {"type": "object", "description": "同上字段；numbers 为字符串或数组"}
                    },
                },
            }
        },
        responses=error_responses(*AUTH, *FILE_ERRORS, ok=FileJobProgress, ok_status=202)
        | {200: {"model": FileJobPreview, "description": "preview=1：预览结果"}},
    )
    async def create(request: Request, preview: bool = Query(False, description="只预览，不创建任务")) -> Response:
        actor, body = await deps.customer(platform, request)
        data, filename, options = await _upload(platform, request, body)
        if preview:
            return json_response(await platform.filejobs.preview(actor, None, data, filename, options))
        return json_response(await platform.filejobs.create(actor, None, data, filename, options), 202)

    @v1.get("/batches", summary="文件发送任务列表（最近的在前）", response_model=FileJobList,
            responses=error_responses(*AUTH))  # fmt: skip
    async def listing(request: Request, limit: int = Query(50, ge=1, le=500)) -> Response:
        actor, _ = await deps.customer(platform, request)
        return json_response({"jobs": await platform.filejobs.listing(actor, limit=limit)})

    @v1.post(
        "/batches/{job_id}/cancel", summary="取消文件发送任务（已受理的分片不受影响）", response_model=FileJobProgress,
        responses=error_responses(*AUTH, "FILE_JOB_NOT_FOUND", "FILE_JOB_FINISHED"),
    )  # fmt: skip
    async def cancel(job_id: str, request: Request) -> Response:
        actor, _ = await deps.customer(platform, request)
        return json_response(await platform.filejobs.cancel(actor, job_id))

    return [v1]
