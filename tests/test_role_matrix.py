"""Every /admin route × every staff role, generated from the route table (``app.routes``).

Each staff route declares its area (``api/areas.staff_area``); the expected answer for each role comes
from ``domain/roles.ROLE_GRANTS`` alone. A role outside the area gets 403 ``FORBIDDEN`` whatever the
body holds (the guard runs before the body is read); a role inside it is not refused (its answer may
be 404 or 400 for the placeholder ids and the empty body, never 401/403 or 5xx — a use case that
checks a narrower area than its route declares fails here). No token: 401. A new route without a
declared area fails the first test. docs/roles.md is the same table, rendered.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import httpx
from conftest import Running

from qixin.api.app import create_api
from qixin.api.areas import ANY_STAFF, roles_of, roles_table, staff_routes
from qixin.domain.roles import ROLE_GRANTS, ROLES
from qixin.services.staff import create_staff

DOC = Path(__file__).resolve().parents[1] / "docs" / "roles.md"
_names = itertools.count()


def test_every_admin_route_declares_a_known_area(running: Running) -> None:
    routes = staff_routes(create_api(running.platform))
    assert len(routes) >= 100, len(routes)  # the table is really the app's, not an empty list
    undeclared = [(m, p) for m, p, area in routes if area is None]
    assert undeclared == []
    assert {area for _, _, area in routes} <= set(ROLE_GRANTS) | {ANY_STAFF}
    # the documented matrix is this table (regenerate: see docs/roles.md)
    table = roles_table(create_api(running.platform))
    assert table in DOC.read_text(encoding="utf-8"), "docs/roles.md is out of date with the route table"


def test_roles_of_follows_the_grants() -> None:
    assert roles_of("money") == ("admin", "finance")
    assert roles_of("staff.write") == ("admin",)
    assert roles_of("accounts.read") == ROLES
    assert roles_of(ANY_STAFF) == ROLES


def url_for(path: str, account_id: int, app_key: str) -> str:
    url = path.replace("{account_id}", str(account_id)).replace("{app_key}", app_key).replace("{fmt}", "csv")
    return re.sub(r"\{[a-z_]+\}", "999999", url)


async def test_every_admin_route_for_every_role(running: Running) -> None:
    app_routes = staff_routes(create_api(running.platform))
    api = running.account()
    tokens = {}
    for role in ROLES:
        name = f"matrix-{role}-{next(_names)}"
        tokens[role] = running.platform.db.write_sync(lambda tx, n=name, r=role: create_staff(tx, n, r))["token"]
    wrong: list[tuple[str, str, str, int, str]] = []
    async with httpx.AsyncClient(base_url=running.base, timeout=60) as client:
        for method, path, area in app_routes:
            assert area is not None
            url = url_for(path, api.account_id, api.app_key)
            body = None if method in ("GET", "DELETE") else {}
            anon = await client.request(method, url, json=body)
            if anon.status_code != 401 or anon.json()["code"] != "STAFF_AUTH_REQUIRED":
                wrong.append((method, path, "no token", anon.status_code, anon.text[:80]))
            allowed = roles_of(area)
            for role in ROLES:
                headers = {"Authorization": f"Bearer {tokens[role]}"}
                resp = await client.request(method, url, json=body, headers=headers)
                code = resp.json().get("code") if "json" in resp.headers.get("content-type", "") else None
                if role in allowed:
                    ok = resp.status_code not in (401, 403) and resp.status_code < 500
                else:
                    ok = resp.status_code == 403 and code == "FORBIDDEN"
                if not ok:
                    wrong.append((method, path, role, resp.status_code, resp.text[:80]))
    assert wrong == [], "\n".join(map(str, wrong))


async def test_a_refused_role_is_refused_before_its_body_is_read(running: Running) -> None:
    """Finance may not create staff: 403 even for a body that would be invalid (not 400 first)."""
    token = running.platform.db.write_sync(lambda tx: create_staff(tx, "matrix-finance-body", "finance"))["token"]
    async with httpx.AsyncClient(base_url=running.base, headers={"Authorization": f"Bearer {token}"}) as c:
        resp = await c.post("/admin/staff", content=b"{not json")
        assert resp.status_code == 403 and resp.json()["code"] == "FORBIDDEN"
        resp = await c.post("/admin/billing/refund-rules", content=b"{not json")  # finance's own area
        assert resp.status_code == 400


async def test_openapi_names_each_staff_routes_area(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.base) as c:
        spec = (await c.get("/openapi.json")).json()
    op = spec["paths"]["/admin/billing/verify"]["get"]
    assert op["x-qixin-area"] == "money" and "权限：money（管理员、财务）" in op["description"]
    assert spec["paths"]["/admin/staff"]["post"]["x-qixin-area"] == "staff.write"
