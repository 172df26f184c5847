"""Manual content review routes (人工审核, /admin/reviews) — thin: HTTP ⇄ ``services/compliance/review.py``.

Area ``review`` (reviewer, admin). A held batch is decided once, whatever its number count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from qixin.api import deps
from qixin.api.areas import staff_area
from qixin.api.common import body_of, error_responses, json_response, parse_model
from qixin.errors import QxError

if TYPE_CHECKING:
    from qixin.api.services import ApiServices as Platform

STAFF = ("STAFF_AUTH_REQUIRED", "STAFF_TOKEN_INVALID", "FORBIDDEN")


class HoldOut(BaseModel):
    batch_id: str
    account_id: int
    status: str = Field(description="pending | approved | rejected | expired")
    category: str
    category_label: str
    score: float = Field(description="分类器概率")
    evidence: list[str] = Field(description="权重最高的短语")
    model_version: str
    send_at: int | None
    created_at: int
    expires_at: int
    decided_at: int | None
    decided_by: str | None
    reason: str | None
    content: str
    type: str
    signature: str
    messages: int
    fee_li: int


class HoldsOut(BaseModel):
    holds: list[HoldOut]


class ApproveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field("", description="备注（可选）")


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(description="驳回原因（告知客户）")
    category: str | None = Field(None, description="实际违规类别（默认为分类器判定的类别）")


class DecisionOut(BaseModel):
    batch_id: str
    status: str
    messages: int
    send_at: int | None = None
    refunded: int | None = None
    reason: str | None = None


def _ok(model: type[BaseModel], data: Any) -> Response:
    return json_response(model.model_validate(data).model_dump(mode="json", exclude_none=True))


def _batch(batch_id: str) -> int:
    try:
        return int(batch_id)
    except ValueError as e:
        raise QxError("NOT_FOUND", "待审核批次不存在") from e


def review_router(platform: Platform) -> APIRouter:
    router = APIRouter(
        prefix="/admin/reviews", tags=["admin: compliance"], dependencies=[staff_area(platform, "review")]
    )
    queue = platform.reviews

    @router.get("", summary="人工审核队列（status=pending 待审核）", response_model=HoldsOut,
                responses=error_responses(*STAFF, "INVALID_REQUEST"))  # fmt: skip
    async def holds(
        request: Request, status: str | None = "pending", account_id: int | None = None, limit: int = 100
    ) -> Response:
        actor = await deps.staff_actor(platform, request)
        return _ok(HoldsOut, {"holds": await queue.list(actor, status or None, account_id, limit)})

    @router.get("/{batch_id}", summary="待审核批次详情", response_model=HoldOut,
                responses=error_responses(*STAFF, "NOT_FOUND"))  # fmt: skip
    async def hold(batch_id: str, request: Request) -> Response:
        actor = await deps.staff_actor(platform, request)
        return _ok(HoldOut, await queue.get(actor, _batch(batch_id)))

    approve_errors = error_responses(*STAFF, "INVALID_JSON", "NOT_FOUND", "REVIEW_DECIDED", "ACCOUNT_FROZEN")

    @router.post("/{batch_id}/approve", summary="审核通过：整批发送", response_model=DecisionOut,
                 openapi_extra=body_of(ApproveIn), responses=approve_errors)  # fmt: skip
    async def approve(batch_id: str, request: Request) -> Response:
        actor = await deps.staff_actor(platform, request)
        raw = await request.body()
        body = parse_model(ApproveIn, raw) if raw.strip() else ApproveIn()
        return _ok(DecisionOut, await queue.approve(actor, _batch(batch_id), body.note))

    @router.post("/{batch_id}/reject", summary="审核驳回：整批退款并通知客户", response_model=DecisionOut,
                 openapi_extra=body_of(RejectIn),
                 responses=error_responses(*STAFF, "INVALID_JSON", "NOT_FOUND", "REVIEW_DECIDED"))  # fmt: skip
    async def reject(batch_id: str, request: Request) -> Response:
        actor = await deps.staff_actor(platform, request)
        body = parse_model(RejectIn, await request.body())
        return _ok(DecisionOut, await queue.reject(actor, _batch(batch_id), body.reason, body.category))

    return router
