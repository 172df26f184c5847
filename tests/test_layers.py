"""The layering rules of docs/architecture.md that a linter cannot see.

- SQL text lives only in qixin/store/: any string literal elsewhere in the package that reads as SQL
  (SELECT … FROM, INSERT INTO, UPDATE … SET, DELETE FROM, COPY … FROM) fails this test. Docstrings are
  prose and are not checked.
- The import contracts themselves run in ``make lint`` (lint-imports, contracts in pyproject.toml);
  this test runs them too, so ``make test`` alone also catches an upward import.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "qixin"
SQL = re.compile(
    r"\bSELECT\b[\s\S]+\bFROM\b|\bINSERT\s+INTO\b|\bUPDATE\s+\w+\s+SET\b|\bDELETE\s+FROM\b|\bCOPY\s+\w+[\s\S]*\bFROM\b"
)


def _docstrings(tree: ast.AST) -> set[int]:
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def sql_literals(path: Path) -> list[tuple[int, str]]:
    """(line, text) of each string literal in ``path`` that reads as SQL (f-strings by their constant parts)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "x" for v in node.values)
            if SQL.search(text):
                found.append((node.lineno, text))
        elif (
            isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
            and SQL.search(node.value)
        ):  # fmt: skip
            found.append((node.lineno, node.value))
    return found


def test_no_sql_outside_store() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("qixin/store/"):
            continue
        offenders += [f"{rel}:{line}: {text[:60]!r}" for line, text in sql_literals(path)]
    assert not offenders, "SQL outside qixin/store/:\n" + "\n".join(offenders)


def test_the_sql_detector_finds_sql(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        '"""SELECT x FROM y in a docstring is prose."""\n'
        'A = "SELECT id FROM accounts WHERE id = ?"\n'
        'B = f"UPDATE {t} SET status = ?"\n'
        'C = "INSERT INTO ledger (a) VALUES (?)"\n'
        'D = "选择 the channel FROM the list"\n',
        encoding="utf-8",
    )
    assert [line for line, _ in sql_literals(probe)] == [2, 3, 4]


def test_import_contracts_hold() -> None:
    exe = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(exe)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
