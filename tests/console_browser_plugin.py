"""The browser fixtures of the console's browser tests, a pytest plugin: the test modules name it in
``pytest_plugins`` (and never import it), so its session fixture is registered once, globally, and ONE
Chromium serves every module of the session. The fixtures run in pytest-asyncio's session event loop,
where the browser lives; each test's browser contexts are closed when it ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from conftest import need
from console_browser import CHROMIUM, chromium_missing


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chromium() -> AsyncIterator[Any]:
    """The session's one Chromium (Playwright driving it)."""
    need(chromium_missing())
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            await b.close()


@pytest_asyncio.fixture(loop_scope="session")
async def browser(chromium: Any) -> AsyncIterator[Any]:
    """The shared Chromium for one test: the contexts the test opens (``new_page``) are closed after it."""
    assert not chromium.contexts, "a previous test left a browser context open"
    try:
        yield chromium
    finally:
        for ctx in list(chromium.contexts):
            await ctx.close()
