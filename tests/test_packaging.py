"""The package as an operator installs it: every imported library declared, and a wheel
built with `pip wheel .` serving every page from a fresh virtual environment, outside the
source tree (templates and static files ship inside the package)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import sysconfig
import time
import tomllib
from pathlib import Path

import httpx
import pytest

from tests.browser.conftest import free_port
from tests.helpers import env_without_settings
from tests.process_helpers import read_line

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("telemed", "scheduling", "signaling")


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = set()
    for requirement in project["dependencies"]:
        name = re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]
        names.add(_normal(name))
    return names


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_top_level_modules() -> set[str]:
    found: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    found.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - set(PACKAGES)


def test_every_imported_library_is_a_declared_dependency() -> None:
    """A library imported directly but only installed as someone else's dependency breaks
    the day that someone drops it (numpy came with ortools; starlette with fastapi)."""
    distributions = importlib.metadata.packages_distributions()
    declared = _declared()
    modules = _imported_top_level_modules()
    assert {"numpy", "fastapi", "sqlalchemy"} <= modules  # the walk found the imports
    undeclared = {
        module: distributions.get(module, ["?"])
        for module in modules
        if not declared & {_normal(d) for d in distributions.get(module, [])}
    }
    assert undeclared == {}, f"imported but not in pyproject's dependencies: {undeclared}"


def test_make_run_installs_only_what_running_needs(tmp_path: Path) -> None:
    """A newcomer who only wants to run the product waits for no pytest, Playwright or mypy
    (issue 15): `make run` installs the package alone, `make lint`/`make test` the extras.
    Read from make's plan for a venv that does not exist yet (nothing is run)."""

    def plan(target: str) -> str:
        return subprocess.run(
            ["make", "-n", target, f"VENV={tmp_path / 'venv'}"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout

    run = plan("run")
    assert "pip install --quiet -e .\n" in run
    assert "[dev]" not in run
    assert "pip install --quiet -e '.[dev]'" in plan("lint")
    assert not _declared() & {"pytest", "playwright", "mypy", "ruff"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel installed without its dependencies into a fresh venv that borrows the
    development venv's libraries through a .pth line (no download; the editable install's
    hook is not processed there, so `telemed` comes from the wheel alone)."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(work)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    [wheel] = work.glob("telemed-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    (Path(site) / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
        timeout=300,
    )
    return venv


def test_the_wheel_holds_its_templates_and_static_files(installed: Path) -> None:
    python = installed / "bin" / "python"
    where = subprocess.run(
        [str(python), "-c", "import telemed, sys; print(telemed.__file__)"],
        cwd=installed,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    package = Path(where).parent
    assert str(package).startswith(str(installed)), where  # not the source tree
    assert (package / "templates" / "consult_detail.html").is_file()
    assert (package / "static" / "call.js").is_file()
    assert (package / "static" / "call" / "peers.js").is_file()


PAGES = {
    "clinician@demo.telemed.org.ls": ["/", "/consults/new", "/consults/1", "/consults/1/call"],
    "specialist@demo.telemed.org.ls": ["/offers", "/schedule", "/specialists/availability"],
    "coordinator@demo.telemed.org.ls": ["/coordinator/specialists", "/coordinator/escalations"],
}
PASSWORDS = {
    "clinician@demo.telemed.org.ls": "clinician-demo-2026",
    "specialist@demo.telemed.org.ls": "specialist-demo-2026",
    "coordinator@demo.telemed.org.ls": "coordinator-demo-2026",
}


def test_the_installed_wheel_serves_every_role_its_pages(installed: Path, tmp_path: Path) -> None:
    """`telemed serve` from the wheel, started in an empty directory: the demo's pages
    render (a wheel without its templates answers 500 here)."""
    port = free_port()
    env = env_without_settings()
    env["TELEMED_DATA_DIR"] = str(tmp_path / "data")
    env.pop("PYTHONPATH", None)
    env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(
        [str(installed / "bin" / "telemed"), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        line = ""
        while "Telemed on http" not in line:
            line = read_line(process, 120, "telemed serve's start-up line")
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "telemed serve from the wheel never became ready"
            time.sleep(0.2)
        for email, paths in PAGES.items():
            with httpx.Client(base_url=base, timeout=30) as browser:
                form = browser.get("/login")
                assert form.status_code == 200
                token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
                assert token is not None, form.text[:500]
                logged_in = browser.post(
                    "/login",
                    data={"email": email, "password": PASSWORDS[email], "csrf_token": token[1]},
                )
                assert logged_in.status_code == 303, logged_in.text[:500]
                assert logged_in.headers["location"] == "/"
                for path in paths:
                    page = browser.get(path)
                    assert page.status_code == 200, (email, path, page.text[:300])
                    assert "</html>" in page.text
                static = browser.get("/static/call.js")
                assert static.status_code == 200
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
