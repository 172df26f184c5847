"""Who is calling: signed customer requests and staff bearer tokens, and the audited staff action.

Every router uses these; none re-implements them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request

from qixin.api.auth import authenticate, authenticate_deferred
from qixin.errors import QxError
from qixin.services.accounts import ApiKey
from qixin.services.actor import Actor
from qixin.services.nonces import NonceClaim
from qixin.services.staff import Staff

if TYPE_CHECKING:
    from qixin.api.services import ApiServices as Services


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def signed(platform: Services, request: Request) -> tuple[ApiKey, bytes]:
    """The API key of a correctly signed customer request, and the body it signed."""
    body = await request.body()
    key = await authenticate(request, body, platform.directory, platform.nonces, platform.settings.signature_skew)
    return key, body


async def signed_deferred(platform: Services, request: Request) -> tuple[ApiKey, bytes, NonceClaim | None]:
    """``signed`` for a route whose one change can spend the nonce in its own transaction."""
    body = await request.body()
    key, claim = await authenticate_deferred(
        request, body, platform.directory, platform.nonces, platform.settings.signature_skew
    )
    return key, body, claim


async def customer(platform: Services, request: Request) -> tuple[Actor, bytes]:
    """The customer actor of a signed request, and its body."""
    key, body = await signed(platform, request)
    return key.actor(client_ip(request)), body


async def _staff(platform: Services, request: Request) -> Staff:
    """The staff member behind ``Authorization: Bearer …`` (looked up once per request: the route's
    area guard, api/areas.py, keeps it on ``request.state``)."""
    known: Staff | None = getattr(request.state, "staff", None)
    if known is not None:
        return known
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("bearer "):
        raise QxError("STAFF_AUTH_REQUIRED")
    who = await platform.staff.by_token(auth[7:].strip())
    if who is None:
        raise QxError("STAFF_TOKEN_INVALID")
    return who


async def staff_for(platform: Services, request: Request, area: str | None) -> Staff:
    """The staff member of a request, if their role may act in ``area`` (None: any role)."""
    who = await _staff(platform, request)
    if area is not None:
        who.require(area)
    return who


async def staff_actor(platform: Services, request: Request, area: str | None = None) -> Actor:
    """The staff actor of a request (``area`` checked here when given; use cases check their own)."""
    who = await _staff(platform, request)
    actor = who.actor(client_ip(request))
    if area is not None:
        actor.require(area)
    return actor
