"""The same action gets the same answer from every entry point, and every change made at the command
line is audited (issue "One application layer…").

The CLI runs in-process (typer's runner, in a worker thread) against the database of a platform that is
running behind real HTTP, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from conftest import Api, Running
from typer.testing import CliRunner

from qixin.cli import app as cli_app
from qixin.services.actor import Actor
from qixin.store import accounts as accounts_store
from qixin.store import staff as staff_store

runner = CliRunner()


def _env(running: Running) -> tuple[list[str], dict[str, str]]:
    s = running.platform.settings
    return ["--data-dir", str(s.data_dir)], {"QIXIN_DATABASE_URL": s.database_url}


async def cli(running: Running, *args: str) -> tuple[int, str]:
    extra, env = _env(running)
    result = await asyncio.to_thread(runner.invoke, cli_app, [*args, *extra], env=env)
    return result.exit_code, result.output


def code_of(output: str) -> str:
    """The error code the CLI printed (``{"code": …}`` on its last JSON line)."""
    for line in reversed(output.strip().splitlines()):
        if line.startswith("{"):
            return str(json.loads(line)["code"])
    raise AssertionError(f"no error printed: {output!r}")


async def audit_actions(running: Running) -> list[tuple[str, str, str]]:
    rows = await running.platform.db.read(lambda tx: staff_store.audit_page(tx, 1000))
    return [(r[1], r[3], r[4]) for r in rows]


@pytest.mark.parametrize(
    ("name", "code"),
    [("【A】", "SIGNATURE_NAME_INVALID"), ("A", "SIGNATURE_NAME_INVALID"), ("有 空格", "SIGNATURE_NAME_INVALID")],
)
async def test_an_invalid_signature_gets_the_same_code_from_http_and_cli(
    running: Running, name: str, code: str
) -> None:
    api = running.account()
    http = await api.request("POST", "/v1/signatures", {"name": name})
    assert http.status_code == 400 and http.json()["code"] == code
    status, out = await cli(running, "signature", "add", "--account", str(api.account_id), "--name", name)
    assert status == 2 and code_of(out) == code


async def test_an_invalid_template_gets_the_same_code_from_http_and_cli(running: Running) -> None:
    api = running.account()
    bad = {"name": "登录", "category": "verification", "content": "您好，欢迎${code}", "variables": {"code": "code"}}
    http = await api.request("POST", "/v1/templates", bad)
    assert http.status_code == 400, http.text
    status, out = await cli(
        running, "template", "add", "--account", str(api.account_id), "--name", bad["name"],
        "--category", bad["category"], "--content", bad["content"], "--var", "code=code",
    )  # fmt: skip
    assert status == 2 and code_of(out) == http.json()["code"] == "TEMPLATE_REVIEW_FAILED"
    # a good one passes both ways
    good = {"name": "登录", "category": "verification", "content": "您的验证码是${code}", "variables": {"code": "code"}}
    assert (await api.request("POST", "/v1/templates", good)).status_code == 201
    status, out = await cli(
        running, "template", "add", "--account", str(api.account_id), "--name", "登录2", "--category",
        "verification", "--content", good["content"], "--var", "code=code", "--json",
    )  # fmt: skip
    assert status == 0, out


async def test_every_state_changing_cli_command_writes_an_audit_row(running: Running) -> None:
    async def ok(*args: str) -> dict[str, Any]:
        status, out = await cli(running, *args)
        assert status == 0, (args, out)
        line = [x for x in out.strip().splitlines() if x.startswith("{")]
        return json.loads(line[-1]) if line else {}

    before = len(await audit_actions(running))
    acct = await ok("account", "create", "--name", "审计客户", "--signature", "企信", "--balance", "10", "--json")
    aid, app_key = str(acct["account_id"]), acct["app_key"]
    await ok("account", "topup", aid, "--amount", "5", "--ref", "audit-1")
    sig = await ok("signature", "add", "--account", aid, "--name", "审计签名", "--json")
    await ok("signature", "approve", str(sig["signature_id"]))
    sig2 = await ok("signature", "add", "--account", aid, "--name", "另一个签名", "--json")
    await ok("signature", "reject", str(sig2["signature_id"]), "--reason", "资质不全")
    tpl = await ok("template", "add", "--account", aid, "--name", "t", "--category", "notification",
                   "--content", "您的订单${n}已发货", "--var", "n=text:20", "--json")  # fmt: skip
    await ok("template", "approve", str(tpl["template_id"]))
    tpl2 = await ok("template", "add", "--account", aid, "--name", "t2", "--category", "notification",
                    "--content", "您的订单${n}已签收", "--var", "n=text:20", "--json")  # fmt: skip
    await ok("template", "reject", str(tpl2["template_id"]), "--reason", "重复")
    await ok("key", "callback", app_key, "http://127.0.0.1:9/hook")
    await ok("key", "allow-ip", app_key, "127.0.0.1")
    await ok("key", "rotate", app_key, "--json")
    await ok("key", "disable", app_key)
    await ok("key", "enable", app_key)
    await ok("key", "create", "--account", aid, "--json")
    staff = await ok("staff", "create", "--name", "审计员", "--role", "reviewer", "--json")
    await ok("staff", "revoke", str(staff["staff_id"]))
    await ok("channels", "add", "--name", "audit-ch", "--protocol", "smpp", "--host", "127.0.0.1", "--port", "9",
             "--username", "u", "--secret", "s3cret-channel", "--json")  # fmt: skip
    await ok("channels", "set", "audit-ch", "--tps", "5", "--json")
    await ok("billing", "sweep")
    await ok("stats", "rebuild")
    rows = (await audit_actions(running))[: len(await audit_actions(running)) - before]
    actions = {a for kind, a, _ in rows if kind == "cli"}
    expected = {
        "account.create", "account.topup", "signature.apply", "signatures.approve", "signatures.reject",
        "template.apply", "templates.approve", "templates.reject", "key.callback", "key.allow_ip", "key.rotate",
        "key.disable", "key.enable", "key.create", "staff.create", "staff.revoke", "channel.create",
        "channel.update", "billing.sweep", "stats.rebuild",
    }  # fmt: skip
    assert expected <= actions, expected - actions
    details = await running.platform.db.read(lambda tx: staff_store.audit_page(tx, 1000))
    assert not any("s3cret-channel" in r[5] for r in details), "a secret reached the audit log"


async def test_a_disabled_or_rotated_key_stops_authenticating(running: Running) -> None:
    api = running.account()
    assert (await api.get("/v1/account")).status_code == 200
    status, out = await cli(running, "key", "rotate", api.app_key, "--json")
    assert status == 0
    running.platform.directory.invalidate()  # the CLI is another process in real life: the cache TTL is 3 s
    assert (await api.get("/v1/account")).json()["code"] == "SIGNATURE_INVALID"
    api.secret = json.loads(out.strip().splitlines()[-1])["app_secret"]
    assert (await api.get("/v1/account")).status_code == 200
    await cli(running, "key", "disable", api.app_key)
    running.platform.directory.invalidate()
    assert (await api.get("/v1/account")).json()["code"] == "APPKEY_INVALID"


async def test_a_revoked_staff_token_is_refused_at_once(running: Running) -> None:
    admin = await running.platform.staff_users.create(Actor.cli(), "root", "admin")
    ops = await running.platform.staff_users.create(Actor.cli(), "ops-1", "ops")
    async with httpx.AsyncClient(base_url=running.base) as http:
        assert (await http.get("/admin/channels", headers=_bearer(ops))).status_code == 200
        assert (await http.get("/admin/staff", headers=_bearer(ops))).json()["code"] == "FORBIDDEN"
        r = await http.post(f"/admin/staff/{ops['staff_id']}/revoke", headers=_bearer(admin))
        assert r.status_code == 200 and r.json()["status"] == "revoked"
        assert (await http.get("/admin/channels", headers=_bearer(ops))).json()["code"] == "STAFF_TOKEN_INVALID"
    assert ("staff", "staff.revoke", f"staff:{ops['staff_id']}") in await audit_actions(running)


def _bearer(staff: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {staff['token']}"}


def test_the_example_webhook_receiver_listens_on_loopback_by_default() -> None:
    import os
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    from conftest import free_port

    port = free_port()
    script = Path(__file__).resolve().parent.parent / "examples" / "webhook_receiver.py"
    env = {**os.environ, "QIXIN_APP_KEY": "qx0123456789abcdef", "QIXIN_APP_SECRET": "hook-secret"}
    proc = subprocess.Popen([sys.executable, str(script), str(port)], stdout=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline and proc.poll() is None, "the receiver did not start"
            time.sleep(0.05)
        listening = [
            line.split()[1]
            for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
            if line.split()[3] == "0A" and line.split()[1].endswith(f":{port:04X}")
        ]
        assert listening == [f"0100007F:{port:04X}"], listening  # 127.0.0.1, not 0.0.0.0
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_app_secrets_are_sealed_at_rest(running: Running) -> None:
    status, out = await cli(running, "account", "create", "--name", "密钥客户", "--signature", "企信", "--json")
    assert status == 0, out
    created = json.loads(out.strip().splitlines()[-1])
    stored = await running.platform.db.read(
        lambda tx: accounts_store.key_row(tx, created["app_key"])[3]  # the app_secret column as stored
    )
    assert stored.startswith("enc1:") and created["app_secret"] not in stored
    api = Api(running.base, created["app_key"], created["app_secret"], created["account_id"])
    try:
        assert (await api.get("/v1/account")).status_code == 200  # the platform opens it to verify
    finally:
        await api.aclose()


async def test_a_secret_sealed_with_another_key_is_refused_not_a_crash(running: Running) -> None:
    from qixin.domain.secretbox import SecretBox
    from qixin.services.accounts import Directory

    api = running.account()
    other = Directory(running.platform.db, box=SecretBox.from_text(SecretBox.new_key_text()))
    assert await other.key(api.app_key) is None  # logged; the request is answered APPKEY_INVALID
    assert (await running.platform.directory.key(api.app_key)) is not None
