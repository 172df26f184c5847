"""Direct connections as data: `qixin connection add|list|set|remove` and /admin/connections call the
same use case; secrets are write-only (never answered, never in the audit log); roles are checked."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from conftest import Running
from typer.testing import CliRunner

from qixin.cli import app
from qixin.services.staff import create_staff
from qixin.settings import load_settings
from qixin.store.db import Database

runner = CliRunner(env={"COLUMNS": "200", "QIXIN_SMPP_SERVER_PORT": "2775"})  # what add reports as the port


def cli(*args: str) -> dict:  # type: ignore[type-arg]
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.output) if "--json" in args or args[1] in ("list", "set") else {"text": result.output}


def test_cli_add_list_set_remove(tmp_path: Path) -> None:
    d = str(tmp_path)
    acct = cli("account", "create", "--name", "直连客户", "--signature", "企信", "--balance", "10", "--price", "0.04",
               "--json", "--data-dir", d)  # fmt: skip
    out = cli("connection", "add", "--account", str(acct["account_id"]), "--protocol", "smpp", "--login", "cust01",
              "--secret", "topsecr8", "--ip", "10.0.0.0/24", "--ip", "192.168.1.7", "--max-connections", "2",
              "--tps", "50", "--json", "--data-dir", d)  # fmt: skip
    assert out["login"] == "cust01" and out["protocol"] == "smpp" and out["port"] == 2775 and "secret" not in out
    dup = runner.invoke(app, ["connection", "add", "--account", str(acct["account_id"]), "--protocol", "smpp",
                              "--login", "cust01", "--secret", "x", "--data-dir", d])  # fmt: skip
    assert dup.exit_code == 2 and "CONFLICT" in dup.output
    bad = runner.invoke(app, ["connection", "add", "--account", str(acct["account_id"]), "--protocol", "cmpp",
                              "--login", "abc", "--secret", "x", "--data-dir", d])  # fmt: skip
    assert bad.exit_code == 2 and "INVALID_REQUEST" in bad.output
    (row,) = cli("connection", "list", "--data-dir", d)["connections"]
    assert row["ip_allowlist"] == ["10.0.0.0/24", "192.168.1.7"] and row["tps"] == 50 and "secret" not in row
    changed = cli("connection", "set", str(out["id"]), "--tps", "0", "--any-ip", "--secret", "newpass", "--data-dir", d)
    assert changed["tps"] == 0 and changed["ip_allowlist"] == [] and "secret" not in changed
    cli("connection", "remove", str(out["id"]), "--data-dir", d)
    assert cli("connection", "list", "--data-dir", d)["connections"] == []
    db = Database(load_settings(d).db_url)
    try:
        stored = db.read_sync(lambda tx: tx.all("SELECT detail FROM audit_log WHERE action LIKE 'connection.%'"))
        sealed = db.read_sync(lambda tx: tx.all("SELECT 1 FROM audit_log WHERE detail LIKE '%topsecr8%'"))
    finally:
        db.close()
    assert len(stored) == 3 and sealed == []


async def test_admin_api(running: Running) -> None:
    api = running.account()
    ops = running.platform.db.write_sync(lambda tx: create_staff(tx, "ops-user", "ops"))
    rev = running.platform.db.write_sync(lambda tx: create_staff(tx, "rev-user", "reviewer"))
    async with (
        httpx.AsyncClient(base_url=running.base, headers={"Authorization": f"Bearer {ops['token']}"}) as o,
        httpx.AsyncClient(base_url=running.base, headers={"Authorization": f"Bearer {rev['token']}"}) as rv,
    ):
        body = {"account_id": api.account_id, "protocol": "cmpp", "login": "901234", "secret": "s3cret", "tps": 10}
        refused = await rv.post("/admin/connections", json=body)
        assert refused.status_code == 403 and refused.json()["code"] == "FORBIDDEN"
        created = await o.post("/admin/connections", json=body)
        assert created.status_code == 201, created.text
        cid = created.json()["id"]
        got = (await rv.get(f"/admin/connections/{cid}")).json()
        assert got["login"] == "901234" and "secret" not in got
        patched = await o.patch(f"/admin/connections/{cid}", json={"status": "disabled", "secret": "other"})
        assert patched.json()["status"] == "disabled" and "secret" not in patched.json()
        listed = (await o.get(f"/admin/connections?account_id={api.account_id}")).json()["connections"]
        assert [c["id"] for c in listed] == [cid]
        assert (await o.delete(f"/admin/connections/{cid}")).json()["deleted"] is True
        assert (await o.get(f"/admin/connections/{cid}")).status_code == 404
