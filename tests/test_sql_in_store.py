"""SQL text lives only in qixin/store/: the delivery pipeline's services and the channel manager hold none."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "qixin"
SQL = re.compile(r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+(\s+\w+)?\s+SET|DELETE\s+FROM|ON\s+CONFLICT)\b", re.S)

# the pipeline's modules, the gateway and the composition root; other areas follow as they move
SQL_FREE = [
    "services/dispatch.py",
    "services/receipts.py",
    "services/webhooks.py",
    "services/uplink.py",
    "services/channels.py",
    "services/portability.py",
    "app.py",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "gateway").rglob("*.py")),
]


def sql_strings(path: Path) -> list[tuple[int, str]]:
    """String constants (f-string parts included) that read like SQL, with their line."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
            out.append((node.lineno, node.value[:80]))
    return out


def test_the_detector_sees_sql(tmp_path: Path) -> None:
    f = tmp_path / "x.py"
    f.write_text('q = "UPDATE dispatch_queue SET due_at = ?"\nr = f"SELECT id FROM t WHERE x IN ({1})"\n')
    assert len(sql_strings(f)) == 2
    f.write_text('"""Selects channels; inserts nothing. Update the docs."""\nmsg = "通道不存在"\n')
    assert sql_strings(f) == []


@pytest.mark.parametrize("module", SQL_FREE)
def test_module_has_no_sql(module: str) -> None:
    assert sql_strings(ROOT / module) == []
