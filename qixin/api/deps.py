"""Who is calling: signed customer requests and staff bearer tokens, and the audited staff action.

Every router uses these; none re-implements them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from qixin.api.auth import authenticate
from qixin.errors import QxError
from qixin.services.accounts import ApiKey
from qixin.services.staff import Staff, audit
from qixin.store.db import Tx

if TYPE_CHECKING:
    from qixin.app import Platform

SECRET_FIELDS = frozenset({"app_secret", "secret", "password", "token"})


async def signed(platform: Platform, request: Request) -> tuple[ApiKey, bytes]:
    """The API key of a correctly signed customer request, and the body it signed."""
    body = await request.body()
    key = await authenticate(request, body, platform.directory, platform.nonces, platform.settings.signature_skew)
    return key, body


async def staff_for(platform: Platform, request: Request, area: str) -> Staff:
    """The staff member behind ``Authorization: Bearer …``, if their role may act in ``area``."""
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("bearer "):
        raise QxError("STAFF_AUTH_REQUIRED")
    who = await platform.staff.by_token(auth[7:].strip())
    if who is None:
        raise QxError("STAFF_TOKEN_INVALID")
    who.require(area)
    return who


async def staff_act(
    platform: Platform, request: Request, who: Staff, action: str, target: str, fn: Callable[[Tx], Any]
) -> Any:
    """Run ``fn`` and its audit row in one transaction (secrets never reach the audit log)."""
    ip = request.client.host if request.client else None

    def job(tx: Tx) -> Any:
        out = fn(tx)
        detail = out if isinstance(out, dict) else {"result": out}
        audit(tx, "staff", str(who.id), action, target, {k: v for k, v in detail.items() if k not in SECRET_FIELDS}, ip)
        return out

    result = await platform.db.write(job)
    platform.directory.invalidate()
    return result
