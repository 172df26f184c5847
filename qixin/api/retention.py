"""Retention routes (staff): closing a complaint releases the messages the purge kept as its evidence
(docs/retention.md). The purge itself runs daily and from ``qixin retention purge``, not over HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from qixin.api import deps
from qixin.api.areas import staff_area
from qixin.api.common import error_responses, json_response
from qixin.errors import QxError

if TYPE_CHECKING:
    from qixin.api.services import ApiServices as Services

STAFF = ("STAFF_AUTH_REQUIRED", "STAFF_TOKEN_INVALID", "FORBIDDEN")


def retention_routers(platform: Services) -> list[APIRouter]:
    admin = APIRouter(prefix="/admin", tags=["admin: retention"], dependencies=[staff_area(platform, "compliance")])

    @admin.post(
        "/complaints/{complaint_id}/close", summary="投诉结案（其证据短信此后按保留期清理）",
        responses=error_responses(*STAFF, "NOT_FOUND", "INVALID_JSON"),
    )  # fmt: skip
    async def close_complaint(complaint_id: int, request: Request) -> Response:
        actor = await deps.staff_actor(platform, request)
        raw = await request.body()
        try:
            body = orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError as e:
            raise QxError("INVALID_JSON") from e
        note = str(body.get("note", "")) if isinstance(body, dict) else ""
        return json_response(await platform.retention.close_complaint(actor, complaint_id, note[:500]))

    return [admin]
