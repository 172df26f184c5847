"""`qixin channels`: add, change, list (with live health written by a running platform)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from qixin.cli import app
from qixin.gateway.manager import save_health
from qixin.settings import load_settings
from qixin.store.db import Database

runner = CliRunner(env={"COLUMNS": "200"})


def cli(*args: str) -> dict:  # type: ignore[type-arg]
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.output) if "--json" in args else {"text": result.output}


def test_channels_add_set_list(tmp_path: Path) -> None:
    d = str(tmp_path)
    ch = cli("channels", "add", "--name", "mobile-bj", "--protocol", "cmpp3", "--host", "10.1.1.1", "--port", "7890",
             "--username", "901234", "--secret", "s3cret", "--service-code", "1065800", "--carriers", "cmcc",
             "--tps", "200", "--window", "16", "--option", "service_id=MBJ0010", "--data-dir", d, "--json")  # fmt: skip
    assert ch["protocol"] == "cmpp3" and ch["carriers"] == ["cmcc"] and ch["options"] == {"service_id": "MBJ0010"}
    assert "secret" not in ch
    changed = cli("channels", "set", "mobile-bj", "--tps", "500", "--disabled", "--data-dir", d, "--json")
    assert changed["tps"] == 500 and changed["enabled"] is False and changed["version"] == 2
    bad = runner.invoke(app, ["channels", "set", "mobile-bj", "--window", "0", "--data-dir", d])
    assert bad.exit_code == 2 and "INVALID_REQUEST" in bad.output
    listed = cli("channels", "--data-dir", d, "--json")["channels"]
    assert [c["name"] for c in listed] == ["mobile-bj"] and listed[0]["live"] is None
    db = Database(load_settings(d).db_url)
    db.write_sync(lambda tx: save_health(tx, [{"name": "mobile-bj", "bound": 1, "submitted": 42}]))
    db.close()
    listed = cli("channels", "--data-dir", d, "--json")["channels"]
    assert listed[0]["live"]["submitted"] == 42
    text = cli("channels", "--data-dir", d)["text"]
    assert "mobile-bj" in text and "停用" in text
    cli("channels", "set", "mobile-bj", "--enabled", "--data-dir", d)
    assert "1/1 已连接" in cli("channels", "--data-dir", d)["text"]
