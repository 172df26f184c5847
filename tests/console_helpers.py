"""Helpers shared by the console tests: reading a login code from what the carrier simulator received."""

from __future__ import annotations

import asyncio
import re
from typing import Any

CODE_RE = re.compile(r"验证码是 (\d{6})")
PASSWORD = "Qixin-Pass-2026"


async def wait_code(runtime: Any, phone: str, seen: int = 0, timeout: float = 15.0) -> str:
    """The newest login code that the simulated handset ``phone`` received after its first ``seen`` texts."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        texts = []
        for sim in runtime.simulators.values():
            texts += sim.received(phone)
        codes = [m.group(1) for t in texts if (m := CODE_RE.search(t))]
        if len(codes) > seen:
            return codes[-1]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no login code reached {phone} within {timeout}s (texts: {texts})")
        await asyncio.sleep(0.05)


def codes_received(runtime: Any, phone: str) -> int:
    return sum(1 for sim in runtime.simulators.values() for t in sim.received(phone) if CODE_RE.search(t))
