"""The scheduling library stays a library: no application, web or database imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import scheduling

FORBIDDEN = ("telemed", "fastapi", "starlette", "sqlalchemy", "sqlmodel", "alembic", "psycopg")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_source_file_imports_the_application_or_a_database() -> None:
    package = Path(scheduling.__file__).parent
    files = sorted(package.rglob("*.py"))
    assert len(files) >= 5
    for path in files:
        bad = {m for m in imported_modules(path) if m.split(".")[0] in FORBIDDEN}
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_importing_the_package_loads_none_of_them() -> None:
    code = (
        "import sys, scheduling\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=Path(scheduling.__file__).parent.parent,
    )
    assert out.stdout.strip() == "[]"
