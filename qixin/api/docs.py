"""The API documentation pages (/docs, /redoc) and the platform's own static files (/static).

Rules:
- No page the platform serves loads anything from another host: it must work with no internet and
  wherever a CDN is blocked. Third-party front-end libraries are vendored, pinned, with their licences,
  under static/vendor/<package>/<version>/ and listed in static/vendor/manifest.json (written by
  scripts/vendor.py; see docs/frontend.md). Pages link to them through ``vendor_path``.
- A vendor file's URL carries its version, so it is cached for a year as immutable: an upgrade changes
  the URL. Any other static file is revalidated on each use (ETag / Last-Modified answer 304).
- Content types are fixed here, not guessed from the machine's mime.types.
- The pages carry a Content-Security-Policy that names no other host, so the browser itself refuses
  any load from elsewhere (ReDoc's bundle, for one, always asks a CDN for its footer logo; the policy
  stops it and ReDoc hides the image). Inline scripts are allowed by their sha256 only.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.datastructures import Headers
from starlette.responses import FileResponse, Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parent / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
STATIC_URL = "/static"

CACHE_IMMUTABLE = "public, max-age=31536000, immutable"
CACHE_REVALIDATE = "no-cache"

MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    "": "text/plain; charset=utf-8",  # LICENSE, NOTICE
}


PAGE_POLICY = (
    "default-src 'self'; script-src 'self'{scripts}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'self'; form-action 'self'"
)
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


@functools.cache
def vendor_manifest() -> dict[str, dict[str, Any]]:
    """The vendored packages by name, as static/vendor/manifest.json lists them."""
    data = json.loads((VENDOR_DIR / "manifest.json").read_text(encoding="utf-8"))
    return {pkg["name"]: pkg for pkg in data["packages"]}


def vendor_path(package: str, file: str) -> str:
    """The URL path of one vendored file, e.g. ``vendor_path("echarts", "echarts.min.js")``.

    Raises KeyError for a package or file the manifest does not list, so a page cannot link to an
    asset that is not shipped."""
    pkg = vendor_manifest()[package]
    if file not in {f["file"] for f in pkg["files"]}:
        raise KeyError(f"{package} ships no {file}")
    return f"{STATIC_URL}/vendor/{package}/{pkg['version']}/{file}"


def media_type(path: str | os.PathLike[str]) -> str | None:
    """The Content-Type for a static file; None lets Starlette guess for a suffix not listed."""
    return MEDIA_TYPES.get(Path(path).suffix.lower())


def cache_control(path: str | os.PathLike[str]) -> str:
    """Cache-Control for a static file: vendor files (versioned URLs) are immutable, the rest revalidate."""
    resolved = Path(path).resolve()
    manifest = VENDOR_DIR / "manifest.json"
    if resolved != manifest and resolved.is_relative_to(VENDOR_DIR):
        return CACHE_IMMUTABLE
    return CACHE_REVALIDATE


def page_policy(html: str) -> str:
    """The Content-Security-Policy for one page: this origin only, plus the page's own inline scripts."""
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(m.encode()).digest()).decode()}'"
        for m in INLINE_SCRIPT.findall(html)
    )
    return PAGE_POLICY.format(scripts=hashes)


def local_page(page: HTMLResponse) -> HTMLResponse:
    """The page with its Content-Security-Policy."""
    page.headers["Content-Security-Policy"] = page_policy(bytes(page.body).decode())
    return page


class Static(StaticFiles):
    """StaticFiles with this module's cache and content-type rules."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        headers = {"Cache-Control": cache_control(full_path), "X-Content-Type-Options": "nosniff"}
        response = FileResponse(
            full_path,
            status_code=status_code,
            stat_result=stat_result,
            media_type=media_type(full_path),
            headers=headers,
        )
        if self.is_not_modified(response.headers, Headers(scope=scope)):
            return NotModifiedResponse(response.headers)
        return response


def mount_docs(app: FastAPI) -> None:
    """Serve /static and the /docs (Swagger UI) and /redoc (ReDoc) pages, every asset from this platform.

    The app must be created with ``docs_url=None, redoc_url=None`` (FastAPI's own pages load a CDN)."""
    if app.docs_url or app.redoc_url:
        raise ValueError("create the FastAPI app with docs_url=None, redoc_url=None")
    openapi_url = app.openapi_url or "/openapi.json"
    app.mount(STATIC_URL, Static(directory=STATIC_DIR), name="static")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        page = get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} — Swagger UI",
            swagger_js_url=root + vendor_path("swagger-ui-dist", "swagger-ui-bundle.js"),
            swagger_css_url=root + vendor_path("swagger-ui-dist", "swagger-ui.css"),
            swagger_favicon_url=root + vendor_path("swagger-ui-dist", "favicon-32x32.png"),
            # The default validator badge would send the schema to an outside service.
            swagger_ui_parameters={"validatorUrl": None},
        )
        return local_page(page)

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        page = get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} — ReDoc",
            redoc_js_url=root + vendor_path("redoc", "redoc.standalone.js"),
            redoc_favicon_url=root + vendor_path("swagger-ui-dist", "favicon-32x32.png"),
            with_google_fonts=False,
        )
        return local_page(page)
