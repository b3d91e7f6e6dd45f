"""The layering of docs/architecture.md holds, and `make lint` would refuse a new upward
import: lint-imports runs on a copy of the code with one such import added."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tree / ".importlinter"), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("layers")
    for package in ("telemed", "scheduling", "signaling"):
        shutil.copytree(
            ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__", "static")
        )
    shutil.copy(ROOT / ".importlinter", copy / ".importlinter")
    return copy


def test_the_code_keeps_its_layers(tree: Path) -> None:
    done = _lint(tree)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # a service reaching up for a page
        ("telemed/notes/service.py", "import telemed.offers.views", "never import views"),
        # a lower domain importing a higher one
        ("telemed/consults/service.py", "import telemed.offers.service", "form layers"),
        # a library importing the application
        ("scheduling/errors.py", "import telemed.settings", "scheduling/ is a library"),
        ("signaling/protocol.py", "import scheduling.errors", "signaling/ is a library"),
    ],
)
def test_an_upward_import_breaks_the_lint(
    tree: Path, tmp_path: Path, module: str, line: str, broken: str
) -> None:
    changed = tmp_path / "tree"
    shutil.copytree(tree, changed)
    target = changed / module
    target.write_text(target.read_text() + f"\n{line}  # added by the test\n")
    done = _lint(changed)
    assert done.returncode != 0, done.stdout
    assert broken in done.stdout.replace("\n", " "), done.stdout


WEB_MODULES = ("fastapi", "starlette", "telemed.web")


def _web_imports(source: str) -> list[str]:
    """The modules of the web framework (or of our web layer) that ``source`` imports."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found += [n for n in names if any(n == w or n.startswith(w + ".") for w in WEB_MODULES)]
    return found


def test_the_error_hierarchy_knows_no_web_framework() -> None:
    """Jobs and the command line raise and catch these errors: ``telemed/errors.py`` stays
    the hierarchy only, and ``telemed/web/errors.py`` maps it to HTTP."""
    sample = (
        "import fastapi\nfrom starlette.exceptions import HTTPException\n"
        "def f():\n    from telemed.web.templating import render\n"
        "from telemed.settings import Settings\nimport starlettish\n"
    )
    assert _web_imports(sample) == ["fastapi", "starlette.exceptions", "telemed.web.templating"]
    assert _web_imports((ROOT / "telemed" / "errors.py").read_text()) == []
