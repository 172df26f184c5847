"""Helpers of the console's browser tests (Playwright driving Debian's Chromium); their fixtures are the
plugin tests/console_browser_plugin.py.

Chromium is Debian's (/usr/bin/chromium, or QIXIN_CHROMIUM). Without it the tests are skipped with the
reason, except under QIXIN_REQUIRE_SERVICES=1 (CI), where a missing browser is a failure.
QIXIN_SCREENSHOTS=1 saves the screenshots of docs/console.md into docs/img/console/ (take them on a machine
with a CJK font, Debian's fonts-noto-cjk: without one Chromium draws the Chinese as boxes). The fixtures run in
pytest-asyncio's session event loop, where the browser lives; every test gets fresh browser contexts
(cookies, storage) that are closed when it ends.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from conftest import Running
from console_helpers import PASSWORD, codes_received, wait_code

CHROMIUM = os.environ.get("QIXIN_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parent.parent / "docs" / "img" / "console"
NEW_PASSWORD = "Browser-Pass-2027"
TIMEOUT_MS = 15_000


def chromium_missing() -> str | None:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"Chromium not found at {CHROMIUM} (apt-get install chromium; .ci/run installs it)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError as e:  # pragma: no cover - a dev dependency
        return f"playwright is not installed: {e}"
    return None


async def new_page(browser: Any) -> Any:
    ctx = await browser.new_context(viewport={"width": 1200, "height": 760}, locale="zh-CN")
    page = await ctx.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return page


async def shot(page: Any, name: str) -> None:
    if os.environ.get("QIXIN_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SHOTS / f"{name}.png"))


async def login(running: Running, page: Any, phone: str, password: str = PASSWORD, screenshot: bool = False) -> None:
    """Password, then the SMS code the simulated handset received; the first-login password change."""
    await page.goto(running.base + "/login")
    if screenshot:
        await page.fill("input[name=phone]", phone)
        await shot(page, "login")
    seen = codes_received(running.runtime, phone)
    await page.fill("input[name=phone]", phone)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/login/code")
    code = await wait_code(running.runtime, phone, seen)
    await page.fill("input[name=code]", code)
    await page.click("main button[type=submit]")
    await page.wait_for_load_state()
    if page.url.endswith("/password"):
        await page.fill("input[name=old]", password)
        await page.fill("input[name=new]", NEW_PASSWORD)
        await page.fill("input[name=again]", NEW_PASSWORD)
        await page.click("main button[type=submit]")
        await page.wait_for_load_state()
    assert "/login" not in page.url and "/password" not in page.url, page.url
