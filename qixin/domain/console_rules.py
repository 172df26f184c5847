"""Console login rules (pure): password strength, rotation, login IP ranges, login codes.

Rules:
- A password has at least ``PASSWORD_MIN`` characters, three of the four kinds (lower case, upper case,
  digits, symbols) and does not contain the user's phone number.
- A password older than ``ROTATION_DAYS`` days is due for a change (a reminder, not a refusal).
- An account may bind its console logins to IP ranges (CIDR or single addresses); an empty list allows
  every address.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable

PASSWORD_MIN = 10
ROTATION_DAYS = 90
DAY_MS = 86_400_000


def password_problems(password: str, phone: str = "") -> list[str]:
    """What is wrong with ``password`` (Chinese, for the user); empty when it is acceptable."""
    problems = []
    if len(password) < PASSWORD_MIN:
        problems.append(f"密码至少 {PASSWORD_MIN} 位")
    kinds = sum(
        (
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )
    if kinds < 3:
        problems.append("密码须包含大写字母、小写字母、数字、符号中的至少三类")
    digits = phone[-11:]
    if digits and digits in password:
        problems.append("密码不能包含手机号")
    return problems


def rotation_due(password_changed_at_ms: int, now_ms: int) -> bool:
    """The password is older than ROTATION_DAYS days."""
    return now_ms - password_changed_at_ms >= ROTATION_DAYS * DAY_MS


def parse_ranges(items: Iterable[str]) -> tuple[str, ...]:
    """Normalised CIDR ranges; ValueError (with the bad item) when one is not an address or range."""
    out = []
    for item in items:
        text = item.strip()
        if not text:
            continue
        try:
            out.append(str(ipaddress.ip_network(text, strict=False)))
        except ValueError:
            raise ValueError(text) from None
    return tuple(out)


def ip_allowed(ip: str | None, ranges: Iterable[str]) -> bool:
    """``ip`` is inside one of ``ranges`` (an empty list allows every address; no address is refused)."""
    nets = [ipaddress.ip_network(r, strict=False) for r in ranges]
    if not nets:
        return True
    if not ip:
        return False
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr.version == n.version and addr in n for n in nets)


def code_digest(session_hash: str, code: str) -> str:
    """What is stored of a login code: bound to its login session, never the code itself."""
    return hashlib.sha256(f"{session_hash}:{code.strip()}".encode()).hexdigest()


def login_code_text(code: str, minutes: int) -> str:
    """The SMS that carries a console login code."""
    return f"您的控制台登录验证码是 {code}，{minutes} 分钟内有效。如非本人操作，请忽略本短信。"
