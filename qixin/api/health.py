"""Health routes: what probes and load balancers need, without revealing anything; details for staff.

- ``GET /healthz`` (and the older ``/health``): the process answers — ``{"ok": true}``, nothing else.
- ``GET /readyz``: ready to take traffic — the database answers, its migrations are the ones this code
  expects, and every carrier with traffic (queued, or among the latest messages of the last 5 minutes)
  has at least one channel up (as far as this process
  can tell cheaply: its own channels, else the snapshots dispatcher processes store). 200 or 503, with
  only the names of the failed checks.
- ``GET /admin/health``: the detailed health (channels, dispatch, uplink and webhook counters), for
  staff of the ``channels`` area.
- ``GET /`` is the web console (qixin/console/), which sends anyone not logged in to ``/login``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from qixin.api.areas import staff_area
from qixin.api.common import error_responses, json_response
from qixin.ids import EPOCH_MS
from qixin.store import health as facts

if TYPE_CHECKING:
    from qixin.api.services import ApiServices as Services

TRAFFIC_WINDOW_MS = 300_000  # a carrier has traffic when it had messages in the last 5 minutes
READY_CACHE_SECONDS = 1.0  # /readyz may be polled hard: its database checks run at most once a second


def health_router(platform: Services) -> APIRouter:
    router = APIRouter()
    cached: dict[str, Any] = {"at": -1e9, "answer": None}

    async def alive() -> Response:
        return json_response({"ok": True})

    router.add_api_route("/healthz", alive, methods=["GET"], summary="存活检查", include_in_schema=False)
    router.add_api_route("/health", alive, methods=["GET"], include_in_schema=False)

    @router.get("/readyz", summary="就绪检查", include_in_schema=False)
    async def ready() -> Response:
        now = time.monotonic()
        if cached["answer"] is None or now - cached["at"] > READY_CACHE_SECONDS:
            cached["answer"] = await readiness(platform)
            cached["at"] = now
        failed: list[str] = cached["answer"]
        return json_response({"ok": not failed, "failed": failed}, 503 if failed else 200)

    @router.get(
        "/admin/health",
        dependencies=[staff_area(platform, "channels")],
        summary="平台健康详情（通道、调度、上行、推送计数）",
        tags=["admin"],
        responses=error_responses("STAFF_AUTH_REQUIRED", "STAFF_TOKEN_INVALID", "FORBIDDEN"),
    )
    async def detailed(request: Request) -> Response:
        return json_response(platform.health())

    return router


async def readiness(platform: Services) -> list[str]:
    """The names of the readiness checks that fail (empty: ready)."""
    since_id = max(0, time.time_ns() // 1_000_000 - TRAFFIC_WINDOW_MS - EPOCH_MS) << 22  # ids are time-ordered
    try:
        applied, waiting, snapshots = await platform.db.read(
            lambda tx: (
                facts.applied_heads(tx),
                facts.carriers_with_traffic(tx, since_id),
                None if platform.channels.started else _snapshots(tx),
            )
        )
    except Exception as exc:
        platform.log.warning("readiness: database unreachable: %s", type(exc).__name__)
        return ["database"]
    failed = []
    if applied != facts.schema_heads():
        failed.append("migrations")
    channels = platform.channels.health() if platform.channels.started else snapshots or []
    up = [c for c in channels if c.get("up")]
    for carrier in waiting:
        if not any(not c.get("carriers") or carrier in c["carriers"] for c in up):
            failed.append(f"channel:{carrier}")
    return failed


def _snapshots(tx: Any) -> list[dict[str, Any]]:
    from qixin.gateway.manager import load_health

    return list(load_health(tx).values())
