"""/docs and /redoc work offline: every asset they reference is served by the platform itself.

Over real loopback HTTP: the pages reference only local URLs and their Content-Security-Policy names no
other host; each asset answers 200 with the right content type and the exact bytes the manifest
records, with a year-long immutable cache. Offline: the
manifest's sha256 match the committed files, every vendor package ships its licence, and
scripts/vendor.py --verify notices a changed or unlisted file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from conftest import Running

from qixin.api.docs import (
    CACHE_IMMUTABLE,
    CACHE_REVALIDATE,
    STATIC_DIR,
    VENDOR_DIR,
    cache_control,
    vendor_manifest,
    vendor_path,
)

ROOT = Path(__file__).resolve().parent.parent
EXPECTED_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}


class Refs(HTMLParser):
    """Every URL a page makes the browser load: src and href attributes, ReDoc's spec-url."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "spec-url") and value:
                self.urls.append(value)


def page_refs(html: str) -> list[str]:
    parser = Refs()
    parser.feed(html)
    # Swagger UI gets the schema URL from its inline configuration.
    return parser.urls + re.findall(r"url: '([^']+)'", html)


def manifest_sha256() -> dict[str, str]:
    """URL path → recorded sha256 for every vendored file."""
    return {vendor_path(p["name"], f["file"]): f["sha256"] for p in vendor_manifest().values() for f in p["files"]}


def assert_only_this_origin(policy: str, html: str) -> None:
    """The page's Content-Security-Policy names no host, and allows exactly the page's inline scripts."""
    directives = {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}
    allowed = {"'self'", "'none'", "data:", "blob:"}
    for name, sources in directives.items():
        extra = [s for s in sources if s not in allowed and not s.startswith("'sha256-")]
        assert extra == (["'unsafe-inline'"] if name == "style-src" else []), (name, sources)
    assert directives["default-src"] == ["'self'"]
    assert directives["img-src"] == ["'self'", "data:"]  # stops ReDoc's footer logo from its CDN
    inline = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    hashes = {"'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'" for s in inline}
    assert set(directives["script-src"]) == {"'self'"} | hashes


@pytest.mark.parametrize(
    ("page", "must_load"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"}),
        ("/redoc", {"redoc.standalone.js", "favicon-32x32.png"}),
    ],
)
async def test_doc_pages_load_only_local_assets(running: Running, page: str, must_load: set[str]) -> None:
    recorded = manifest_sha256()
    async with httpx.AsyncClient(base_url=running.base, timeout=30) as http:
        r = await http.get(page)
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        html = r.text
        # Nothing from another host: no absolute or protocol-relative URL anywhere in the page (this also
        # rules out Google Fonts and the Swagger validator badge).
        assert "://" not in html
        assert_only_this_origin(r.headers["content-security-policy"], html)
        refs = page_refs(html)
        assert all(u.startswith("/") and not u.startswith("//") for u in refs), refs
        assert {u.rsplit("/", 1)[-1] for u in refs} >= must_load | {"openapi.json"}

        for url in refs:
            got = await http.get(url)
            assert got.status_code == 200, url
            if url.endswith("openapi.json"):
                assert got.headers["content-type"] == "application/json"
                assert got.json()["info"]["title"] == "qixin 企信 API"
                continue
            assert got.headers["content-type"] == EXPECTED_TYPES[Path(url).suffix], url
            assert got.headers["cache-control"] == CACHE_IMMUTABLE
            assert got.headers["x-content-type-options"] == "nosniff"
            assert hashlib.sha256(got.content).hexdigest() == recorded[url], url


async def test_static_files_revalidate_and_refuse_what_they_do_not_ship(running: Running) -> None:
    bundle = vendor_path("swagger-ui-dist", "swagger-ui-bundle.js")
    async with httpx.AsyncClient(base_url=running.base, timeout=30) as http:
        first = await http.get(bundle)
        again = await http.get(bundle, headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["cache-control"] == CACHE_IMMUTABLE

        licence = await http.get(vendor_path("echarts", "LICENSE"))
        assert licence.status_code == 200
        assert licence.headers["content-type"] == "text/plain; charset=utf-8"
        assert "Apache License" in licence.text

        manifest = await http.get("/static/vendor/manifest.json")
        assert manifest.headers["cache-control"] == CACHE_REVALIDATE

        missing = await http.get("/static/vendor/echarts/6.0.0/echarts.min.js")
        assert missing.status_code == 404
        assert missing.json()["code"] == "NOT_FOUND"
        # qixin/api/docs.py exists one level above static/: the encoded dots must not reach it.
        escape = await http.get("/static/vendor/%2e%2e/%2e%2e/docs.py")
        assert escape.status_code == 404
        assert "mount_docs" not in escape.text
        post = await http.post(bundle)
        assert post.status_code == 405
        assert post.json()["code"] == "METHOD_NOT_ALLOWED"


def test_manifest_sha256_match_the_committed_files() -> None:
    listed = {VENDOR_DIR / "manifest.json"}
    for pkg in vendor_manifest().values():
        for f in pkg["files"]:
            path = VENDOR_DIR / pkg["name"] / pkg["version"] / f["file"]
            listed.add(path)
            assert hashlib.sha256(path.read_bytes()).hexdigest() == f["sha256"], path
    on_disk = {p for p in VENDOR_DIR.rglob("*") if p.is_file()}
    assert on_disk == listed, "files in static/vendor/ that the manifest does not list (or the reverse)"


def test_every_vendor_package_ships_its_licence() -> None:
    assert set(vendor_manifest()) == {"swagger-ui-dist", "redoc", "htmx.org", "echarts"}
    for name, pkg in vendor_manifest().items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", pkg["version"]), name  # exact pins, no ranges
        assert pkg["licence"] in {"MIT", "Apache-2.0", "BSD-0-Clause"}, name
        assert pkg["integrity"].startswith("sha512-"), name
        assert "LICENSE" in pkg["licence_files"], name
        for file in pkg["licence_files"]:
            text = (VENDOR_DIR / name / pkg["version"] / file).read_text(encoding="utf-8")
            assert len(text) > 50, (name, file)
        main = (VENDOR_DIR / name / pkg["version"] / "LICENSE").read_text(encoding="utf-8")
        assert {"MIT": "MIT License", "Apache-2.0": "Apache License", "BSD-0-Clause": "Zero-Clause BSD"}[
            pkg["licence"]
        ] in main, name


def test_only_minified_bundles_are_shipped() -> None:
    sizes = {p.name: p.stat().st_size for p in VENDOR_DIR.rglob("*") if p.is_file()}
    assert not [n for n in sizes if n.endswith(".map")]
    assert sum(sizes.values()) < 6 * 1024 * 1024


def test_cache_rules() -> None:
    assert cache_control(VENDOR_DIR / "echarts" / "6.1.0" / "echarts.min.js") == CACHE_IMMUTABLE
    assert cache_control(VENDOR_DIR / "manifest.json") == CACHE_REVALIDATE
    assert cache_control(STATIC_DIR / "console.css") == CACHE_REVALIDATE
    assert cache_control(VENDOR_DIR / ".." / "console.css") == CACHE_REVALIDATE


def test_vendor_path_refuses_what_is_not_shipped() -> None:
    assert (
        vendor_path("htmx.org", "htmx.min.js")
        == f"/static/vendor/htmx.org/{vendor_manifest()['htmx.org']['version']}/htmx.min.js"
    )
    with pytest.raises(KeyError):
        vendor_path("htmx.org", "htmx.js")
    with pytest.raises(KeyError):
        vendor_path("jquery", "jquery.min.js")


def run_verify(vendor: Path) -> subprocess.CompletedProcess[str]:
    script = ROOT / "scripts" / "vendor.py"
    return subprocess.run(
        [sys.executable, str(script), "--verify", "--dir", str(vendor)], capture_output=True, text=True, timeout=60
    )


def test_vendor_script_verifies_offline(tmp_path: Path) -> None:
    vendor = tmp_path / "vendor"
    shutil.copytree(VENDOR_DIR, vendor)
    ok = run_verify(vendor)
    assert ok.returncode == 0, ok.stderr

    version = vendor_manifest()["htmx.org"]["version"]
    htmx = vendor / "htmx.org" / version / "htmx.min.js"
    htmx.write_bytes(htmx.read_bytes() + b"\n")
    (vendor / "echarts" / "stray.js").write_text("")
    bad = run_verify(vendor)
    assert bad.returncode == 1
    assert f"sha256 of htmx.org/{version}/htmx.min.js differs" in bad.stderr
    assert "not in the manifest: echarts/stray.js" in bad.stderr

    manifest = json.loads((vendor / "manifest.json").read_text(encoding="utf-8"))
    manifest["packages"][0]["licence_files"] = []
    (vendor / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert "swagger-ui-dist: no licence recorded" in run_verify(vendor).stderr
