"""docs/settings.md lists every setting — its environment variable, default and meaning — exactly as
qixin/settings.py declares it, and every setting can be set from the environment.

After adding or changing a setting, regenerate the table:

    .venv/bin/python tests/test_settings_doc.py
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic_settings import BaseSettings

from qixin.settings import ChannelSettings, ComplianceSettings, NumberCheckSettings, Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_MD = ROOT / "docs" / "settings.md"
START, END = "<!-- settings:start -->", "<!-- settings:end -->"
NESTED = {"channel": ChannelSettings, "compliance": ComplianceSettings, "numcheck": NumberCheckSettings}
HOLDER = {model: name for name, model in NESTED.items()}


def _default(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or "(empty)"
    if isinstance(value, bool):
        return "on" if value else "off"
    if value in ("", None):
        return "(empty)"
    return str(value)


def _rows(model: type[BaseSettings]) -> list[tuple[str, str, str]]:
    prefix = str(model.model_config.get("env_prefix", ""))
    rows = []
    for name, f in model.model_fields.items():
        if name in NESTED:
            continue
        rows.append(
            (f"{prefix}{name}".upper(), _default(f.get_default(call_default_factory=True)), f.description or "")
        )
    return rows


def settings_table() -> str:
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for model in (Settings, *NESTED.values()):
        lines += [f"| `{env}` | `{default}` | {meaning} |" for env, default, meaning in _rows(model)]
    return "\n".join(lines)


def test_settings_md_matches_the_declarations() -> None:
    text = SETTINGS_MD.read_text(encoding="utf-8")
    documented = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert documented == settings_table(), "docs/settings.md is stale: run .venv/bin/python tests/test_settings_doc.py"


def test_every_setting_has_a_meaning() -> None:
    for model in (Settings, *NESTED.values()):
        for name, f in model.model_fields.items():
            assert f.description, f"{model.__name__}.{name} has no description"


@pytest.mark.parametrize(("env", "value", "read"), [
    ("QIXIN_MAX_PARTS", "7", lambda s: s.max_parts == 7),
    ("QIXIN_SMPP_PORT", "2775", lambda s: s.channel.port == 2775),
    ("QIXIN_SENDING_WINDOWS", "off", lambda s: s.compliance.sending_windows is False),
    ("QIXIN_HOLIDAYS", "2027-01-01,2027-02-06", lambda s: s.holidays == ("2027-01-01", "2027-02-06")),
    ("QIXIN_WEBHOOK_BACKOFF", "1,2,3", lambda s: s.webhook_backoff == (1, 2, 3)),
    ("QIXIN_OPTOUT_WORDS", "TD,退订", lambda s: s.compliance.optout_words == ("TD", "退订")),
    ("QIXIN_CLAIM_BATCH", "50", lambda s: s.claim_batch == 50),
    ("QIXIN_NODE_ID", "17", lambda s: s.node_id == 17),
])  # fmt: skip
def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, env: str, value: str, read: Any) -> None:
    monkeypatch.setenv(env, value)
    assert read(load_settings())


def test_every_declared_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each documented variable changes its setting (none is declared but ignored)."""
    monkeypatch.delenv("QIXIN_GC_FREEZE", raising=False)  # conftest turns it off for the test process
    base = load_settings()
    for model in (Settings, *NESTED.values()):
        for name, f in model.model_fields.items():
            if name in NESTED:
                continue
            env = f"{model.model_config.get('env_prefix', '')}{name}".upper()
            default = f.get_default(call_default_factory=True)
            probe = {bool: "0" if default else "1", int: "3", float: "2.5", str: "probe"}.get(type(default))
            if isinstance(default, tuple):
                probe = "1,2" if name in ("webhook_backoff", "sim_receipt_delay") else "X,Y"
            if isinstance(default, dict):
                probe = '{"x": "real"}'
            if name == "provider":
                probe = "none"
            if probe is None:
                probe = "3" if name == "node_id" else "/tmp/qixin-probe"
            with monkeypatch.context() as mp:
                mp.setenv(env, probe)
                changed = load_settings()
            target = changed if model is Settings else getattr(changed, HOLDER[model])
            original = base if model is Settings else getattr(base, HOLDER[model])
            assert getattr(target, name) != getattr(original, name), f"{env} did not change {name}"


def _value(s: Settings, model: type[BaseSettings], name: str) -> Any:
    holder: Any = s if model is Settings else getattr(s, HOLDER[model])
    return getattr(holder, name)


if __name__ == "__main__":
    text = SETTINGS_MD.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    SETTINGS_MD.write_text(f"{head}{START}\n{settings_table()}\n{END}{tail}", encoding="utf-8")
    print(f"regenerated {SETTINGS_MD.relative_to(ROOT)}")
