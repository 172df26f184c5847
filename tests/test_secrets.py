"""Secrets stay secret.

1. Nothing tracked in the repository (``git ls-files``) looks like a real secret: private keys, cloud and
   chat-service tokens, qixin's own staff tokens and app secrets, secrets assigned to settings.
2. No log line written while the platform sends, logs a console user in (password + SMS code), rotates
   an API key and refuses bad credentials contains any secret the run created or an unmasked phone
   number. Every record of every logger is captured at DEBUG (qixin logs through the standard library;
   structlog's own capture is added for any code that uses it), formatted with its arguments and
   traceback, together with the HTTP answers' bodies where a secret must not come back.
"""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import structlog
from conftest import TEST_COMPLIANCE, Running, start_running
from console_helpers import PASSWORD, wait_code

from qixin.domain.signing import signed_headers
from qixin.errors import QxError
from qixin.services.actor import Actor
from qixin.services.staff import create_staff
from qixin.settings import Settings

ROOT = Path(__file__).resolve().parent.parent

# what a real secret looks like (name, pattern)
SECRET_PATTERNS = [
    ("private key", re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----")),
    ("AWS access key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{60,})\b")),
    ("Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    ("Stripe / OpenAI style key", re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{20,}|\bsk-[A-Za-z0-9_-]{32,}")),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("JWT", re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")),
    ("qixin staff token", re.compile(r"\bqxs_[A-Za-z0-9_-]{40,}")),
    ("qixin app secret", re.compile(r"""["']?app_secret["']?\s*[:=]\s*["'][A-Za-z0-9_-]{32,}["']""")),
    (
        "secret setting with a value",
        re.compile(r"""\bQIXIN_[A-Z_]*(?:SECRET|PASSWORD|TOKEN)[A-Z_]*\s*[=:]\s*["']?[A-Za-z0-9+/_-]{24,}"""),
    ),
    ("URL with a password", re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s:@]{8,}@(?!127\.0\.0\.1|localhost)")),
]
BINARY = (".png", ".jpg", ".jpeg", ".gif", ".ico", ".woff", ".woff2", ".xlsx", ".pdf", ".db", ".gz", ".zip")


def _tracked() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    return [ROOT / p for p in out.stdout.decode().split("\0") if p]


# a value that says it is to be replaced is documentation, not a secret
PLACEHOLDER = re.compile(r"REPLACE|CHANGE[-_ ]?ME|EXAMPLE|YOUR[-_]|<[a-z_-]+>|x{8,}", re.IGNORECASE)


def scan(text: str) -> list[str]:
    """The names of the secret patterns ``text`` matches, with the match (cut); placeholders pass."""
    return [
        f"{name}: {m.group(0)[:24]}…"
        for name, rx in SECRET_PATTERNS
        for m in rx.finditer(text)
        if not PLACEHOLDER.search(m.group(0))
    ]


def test_the_scanner_finds_what_it_looks_for() -> None:
    """Each pattern catches a made-up secret of its kind (built here, so none is stored whole)."""
    made_up = [
        "-----BEGIN " + "RSA PRIVATE KEY-----",
        "AKIA" + "Q" * 16,
        "ghp_" + "a1" * 18,
        "xoxb-" + "1234567890-abc",
        "sk_live_" + "a1b2" * 6,
        "AIza" + "B" * 35,
        "eyJ" + "a" * 12 + ".eyJ" + "b" * 12 + "." + "c" * 12,
        "qxs_" + "Z" * 43,
        '"app_secret": "' + "y" * 43 + '"',
        "QIXIN_SECRET_KEY=" + "k" * 44,
        "postgresql://qixin:" + "hunter2hunter2" + "@db.example.com/qixin",
    ]
    for sample in made_up:
        assert scan(sample), sample
    assert not scan("QIXIN_SECRET_KEY=${QIXIN_SECRET_KEY}  app_secret: …  qxs_…  postgresql://postgres@127.0.0.1")
    assert not scan("QIXIN_SECRET_KEY: REPLACE-WITH-BASE64-OF-32-RANDOM-BYTES")


def test_no_tracked_file_holds_a_real_secret() -> None:
    found: list[str] = []
    files = _tracked()
    assert len(files) > 100, "git ls-files listed almost nothing"
    for path in files:
        if path.suffix.lower() in BINARY or not path.is_file() or path == Path(__file__).resolve():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        found += [f"{path.relative_to(ROOT)}: {hit}" for hit in scan(text)]
    assert not found, "\n".join(found)


# -- logs of a run ------------------------------------------------------------------------------------

PHONE_RX = re.compile(r"(?<![0-9])(?:\+?86)?1[3-9][0-9]{9}(?![0-9])")


class Capture(logging.Handler):
    """Every record of every logger, formatted as a handler would write it (message, args, traceback)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def captured() -> Iterator[Capture]:
    cap = Capture()
    root = logging.getLogger()
    old = root.level
    root.addHandler(cap)
    root.setLevel(logging.DEBUG)
    try:
        with structlog.testing.capture_logs() as events:
            yield cap
        cap.lines += [str(e) for e in events]
    finally:
        root.removeHandler(cap)
        root.setLevel(old)


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Running]:
    settings = Settings(
        data_dir=tmp_path, sim_receipt_delay=(0.01, 0.05), compliance=TEST_COMPLIANCE, simulators=("smpp",)
    )
    r, server, task = await start_running(settings)
    try:
        yield r
    finally:
        for c in r.clients:
            await c.aclose()
        server.should_exit = True
        await task
        await r.runtime.stop()


async def test_no_log_line_holds_a_secret_or_a_whole_number(captured: Capture, platform: Running) -> None:
    r = platform
    numbers = [f"1390000{i:04d}" for i in range(20)]
    secrets: dict[str, str] = {}
    answers: list[str] = []  # HTTP bodies that must not carry an old or another secret

    api = r.account(balance_li=1_000_000)
    secrets["app secret"] = api.secret
    staff = r.platform.db.write_sync(lambda tx: create_staff(tx, "安全管理员", "admin"))
    secrets["staff token"] = staff["token"]
    secrets["console password"] = PASSWORD
    phone = "13900002222"
    await r.platform.console_users.create_user(Actor.cli(), api.account_id, "李四", phone, "owner", PASSWORD)

    # sends: single, batch, long text; receipts come back
    assert (await api.send(to=numbers[0], content="您的验证码是 246810", type="verification")).status_code == 200
    assert (await api.send(to=numbers[1:], content="通知：订单已发货" * 12)).status_code == 200
    await r.wait_final(len(numbers), timeout=60)

    # console login: a wrong password, then the right one and the SMS code
    users = r.platform.console_users
    with pytest.raises(QxError):
        await users.login(phone, "Wrong-Pass-2026!", "127.0.0.1")
    started = await users.login(phone, PASSWORD, "127.0.0.1")
    code = await wait_code(r.runtime, phone)
    secrets["console session token"] = started.token
    session = await users.verify_code(started.token, code, "127.0.0.1")
    assert session.stage == "full"
    secrets["console CSRF token"] = session.csrf
    secrets["login code"] = f"验证码{code}"  # the code alone (6 digits) could match any number in a log

    # key rotation over /admin; the old secret refused, the new one works
    async with httpx.AsyncClient(base_url=r.base) as http:
        bearer = {"Authorization": f"Bearer {staff['token']}"}
        resp = await http.post(f"/admin/keys/{api.app_key}/rotate", headers=bearer)
        assert resp.status_code == 200, resp.text
        new_secret = resp.json()["app_secret"]
        assert new_secret != api.secret
        secrets["rotated app secret"] = new_secret
        keys = await http.get(f"/admin/accounts/{api.account_id}/keys", headers=bearer)
        answers.append(keys.text)
        answers.append((await http.get("/admin/channels", headers=bearer)).text)
        old = await api.send(to=numbers[0], content="旧密钥")
        assert old.status_code == 401
        answers.append(old.text)
        api.secret = new_secret
        assert (await api.send(to=numbers[0], content="新密钥")).status_code == 200
        # a forged signature and a wrong staff token: refused, logged without what was tried
        body = b'{"to": "13900000001", "content": "x"}'
        forged = signed_headers(api.app_key, "not-the-secret", "POST", "/v1/sms", body)
        assert (await http.post("/v1/sms", content=body, headers=forged)).status_code == 401
        assert (await http.get("/admin/accounts", headers={"Authorization": "Bearer qxs_wrong"})).status_code == 401
    await r.wait_final(len(numbers) + 2, timeout=60)

    # the channel's login refused for a while, then the link reset: the errors logged name no credential
    sim = r.runtime.simulators["smpp-sim"]
    sim.config.refuse_logins = True
    sim.drop_connections()
    link = r.platform.channels.active["smpp-sim"]
    deadline = asyncio.get_running_loop().time() + 30
    while sim.stats.bind_failures < 2:
        assert asyncio.get_running_loop().time() < deadline, "no refused login"
        await asyncio.sleep(0.02)
    sim.config.refuse_logins = False
    while not link.up:
        assert asyncio.get_running_loop().time() < deadline + 30, "the channel did not come back"
        await asyncio.sleep(0.02)

    channel_secrets = await r.platform.db.read(lambda tx: tx.all("SELECT secret FROM channels"))
    for (value,) in channel_secrets:
        if value and len(value) >= 6:
            secrets[f"channel secret {value[:2]}…"] = value

    log = "\n".join(captured.lines)
    qixin_lines = [line for line in captured.lines if " qixin" in line]
    print(f"\n{len(captured.lines)} log lines captured, {len(qixin_lines)} from qixin:", *qixin_lines[:15], sep="\n")
    assert qixin_lines, "nothing was logged by qixin: the capture does not work"
    leaks = [name for name, value in secrets.items() if value in log]
    assert not leaks, f"secrets in the log: {leaks}"
    whole = sorted(set(PHONE_RX.findall(log)))
    assert not whole, f"unmasked phone numbers in the log: {whole[:10]}"
    for text in answers:
        assert api.secret not in text and secrets["app secret"] not in text and staff["token"] not in text, text
        assert not any(value in text for name, value in secrets.items() if name.startswith("channel")), text


def test_the_log_checks_can_fail() -> None:
    """The phone pattern catches whole numbers in the forms logs use, and lets masked ones pass."""
    for line in ("send to 13900001111", "+8613900001111 failed", "to=8613900001111,", "dest:13900001111"):
        assert PHONE_RX.findall(line), line
    for line in ("send to 139****1111", "message 1900000001234567 ok", "at 1796222128000"):
        assert not PHONE_RX.findall(line), line
