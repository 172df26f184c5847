#!/usr/bin/env python3
"""Rewrite the route table in docs/roles.md from the app's routes (tests/test_role_matrix.py checks it).

    .venv/bin/python scripts/roles_doc.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from qixin.api.app import create_api
from qixin.api.areas import roles_table
from qixin.app import build
from qixin.settings import Settings

DOC = Path(__file__).resolve().parents[1] / "docs" / "roles.md"
BEGIN, END = "<!-- route table: scripts/roles_doc.py -->", "<!-- end of route table -->"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        table = roles_table(create_api(build(Settings(data_dir=tmp))))
    text = DOC.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{BEGIN}\n{table}{END}{tail}", encoding="utf-8")
    print(f"{DOC}: {table.count(chr(10)) - 2} routes")


if __name__ == "__main__":
    main()
