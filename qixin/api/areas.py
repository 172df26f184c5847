"""Who may call each staff route: the area is declared on the route and enforced there.

Every /admin route carries ``dependencies=[staff_area(platform, "<area>")]`` (or its router does). The
guard runs before the route reads its body: an unauthenticated caller gets 401, a staff role outside
the area 403 ``FORBIDDEN``, whatever the body holds. The use case still checks its own area (the CLI,
the console and the workers call it without this guard); the route's declaration must match it, which
``tests/test_role_matrix.py`` proves for every route × every role, read from ``app.routes``.

``ANY_STAFF`` marks a route any staff role may call. The areas and the roles they admit are the one
table ``domain/roles.ROLE_GRANTS``; ``roles_table`` renders the route table as docs/roles.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI
from fastapi.params import Depends as DependsParam
from starlette.requests import Request

from qixin.api.deps import staff_for
from qixin.domain.roles import ROLE_GRANTS, ROLES

try:  # FastAPI ≥ 0.16x keeps included routers whole on app.routes; this lists their routes
    from fastapi.routing import iter_route_contexts as _route_contexts
except ImportError:  # older FastAPI copies every included route onto app.routes

    def _route_contexts(routes: Any) -> Any:  # type: ignore[misc]
        return iter(routes)


if TYPE_CHECKING:
    from qixin.api.services import ApiServices as Services

ANY_STAFF = "staff"
OPENAPI_KEY = "x-qixin-area"
ROLE_NAMES = {"admin": "管理员", "reviewer": "审核员", "finance": "财务", "ops": "运维"}


def roles_of(area: str) -> tuple[str, ...]:
    """The staff roles an area admits, admin first, in ``ROLES`` order."""
    if area == ANY_STAFF:
        return ROLES
    return tuple(r for r in ROLES if r == "admin" or r in ROLE_GRANTS[area])


def staff_area(platform: Services, area: str) -> Any:
    """The dependency that declares and enforces a staff route's area (``ANY_STAFF``: any role)."""
    if area != ANY_STAFF and area not in ROLE_GRANTS:
        raise ValueError(f"unknown staff area {area!r}")  # a typo must not open a route

    async def guard(request: Request) -> None:
        request.state.staff = await staff_for(platform, request, None if area == ANY_STAFF else area)

    setattr(guard, "qixin_area", area)  # noqa: B010 - read back by route_area
    return Depends(guard)


def route_area(route: Any) -> str | None:
    """The area a route declares, or None; more than one declaration is a programming error."""
    found = [
        getattr(dep.dependency, "qixin_area")  # noqa: B009
        for dep in getattr(route, "dependencies", None) or ()
        if isinstance(dep, DependsParam) and hasattr(dep.dependency, "qixin_area")
    ]
    if len(found) > 1:
        raise ValueError(f"{route.path} declares {len(found)} staff areas")
    return found[0] if found else None


def staff_routes(app: FastAPI) -> list[tuple[str, str, str | None]]:
    """(method, path, area) of every route under /admin, in the app's order (included routers'
    routes with their router's dependencies, whichever way this FastAPI keeps them)."""
    out = []
    for route in _route_contexts(app.routes):
        path, methods = getattr(route, "path", None) or "", getattr(route, "methods", None) or set()
        if path.startswith("/admin") and hasattr(route, "dependencies"):
            for method in sorted(set(methods) - {"HEAD"}):
                out.append((method, path, route_area(route)))
    return out


def annotate_openapi(app: FastAPI, schema: dict[str, Any]) -> None:
    """Name each staff route's area and roles in the OpenAPI document (``x-qixin-area``, description)."""
    paths = schema.get("paths", {})
    for method, path, area in staff_routes(app):
        op = paths.get(path, {}).get(method.lower())
        if op is None or area is None:
            continue
        op[OPENAPI_KEY] = area
        note = f"权限：{area}（{'、'.join(ROLE_NAMES[r] for r in roles_of(area))}）"
        op["description"] = f"{op['description']}\n\n{note}" if op.get("description") else note


def roles_table(app: FastAPI) -> str:
    """docs/roles.md's route table: every /admin route, its area and the roles it admits."""
    lines = [
        "| method | path | area | " + " | ".join(ROLES) + " |",
        "|---|---|---|" + "---|" * len(ROLES),
    ]
    for method, path, area in staff_routes(app):
        allowed = roles_of(area) if area else ()
        marks = " | ".join("✓" if r in allowed else "" for r in ROLES)
        lines.append(f"| {method} | `{path}` | `{area}` | {marks} |")
    return "\n".join(lines) + "\n"
