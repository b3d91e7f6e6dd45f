"""Fixtures of the 2G lab (lab.py): the namespaces, `telemed serve` in the server's, and
headless Chromium in each (the clinic's browser behind the thin link; a specialist's next to
the server, for the call). Outside CI a machine that cannot make the lab (not root, no
``ip netns``) skips these tests with the reason; in CI (CI=true) that is a failure.

The figures the tests measure are printed as they go (``-s``) and again at the end of the run,
as rows of the "Thin link" table of docs/PERFORMANCE.md.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import CHROMIUM_ARGS, Server, serve
from tests.conftest import require_service
from tests.netlab.lab import CHROMIUM, PORT, SERVER_IP, Lab, LabUnavailable, Wire, lab

FIGURES: list[str] = []


def record(row: str) -> None:
    """One row of the thin-link table: printed now and in the run's summary."""
    FIGURES.append(row)
    print(f"THIN LINK | {row}")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("Thin link (tests/netlab): rows for docs/PERFORMANCE.md")
        for row in FIGURES:
            terminalreporter.write_line(f"| {row} |")


def settled(the_lab: Lab, quiet_s: float = 1.0, limit_s: float = 30.0) -> Wire:
    """The counters once nothing has crossed the link for ``quiet_s`` (the last ACKs and
    the queue drained), so that a measurement starts and ends on a still link."""
    last = the_lab.wire()
    still_since = time.monotonic()
    deadline = still_since + limit_s
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = the_lab.wire()
        if now != last:
            last, still_since = now, time.monotonic()
        elif time.monotonic() - still_since >= quiet_s:
            break
    return last


@pytest.fixture(scope="session")
def the_lab() -> Iterator[Lab]:
    try:
        with lab() as made:
            yield made
    except LabUnavailable as exc:
        require_service("The 2G lab", str(exc))


@pytest.fixture(scope="session")
def lab_server(the_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`telemed serve` (embedded default, demo data) inside the server's namespace, one for
    the whole lab: starting it takes a minute or more on a loaded machine, and the tests
    each work on a patient or file of their own."""

    def get(url: str, timeout: float) -> httpx.Response:
        return the_lab.run_in(the_lab.server_ns, lambda: httpx.get(url, timeout=timeout))

    with serve(
        tmp_path_factory.mktemp("netlab-data"),
        host=SERVER_IP,
        port=PORT,
        prefix=("ip", "netns", "exec", the_lab.server_ns),
        get=get,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        require_service("Chromium", f"{CHROMIUM} not found (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


def chromium(playwright: Any, the_lab: Lab, ns: str, directory: Path, *extra: str) -> Any:
    """Chromium started inside namespace ``ns`` (``extra``: more command-line switches)."""
    return playwright.chromium.launch(
        executable_path=str(the_lab.chromium_in(ns, directory)),
        headless=True,
        # The camera and microphone need a secure context: production is served over HTTPS,
        # the lab over plain HTTP on an address that is not localhost.
        args=[
            *CHROMIUM_ARGS,
            f"--unsafely-treat-insecure-origin-as-secure={the_lab.url}",
            *extra,
        ],
    )


@pytest.fixture(scope="module")
def clinic_browser(
    the_lab: Lab, playwright_driver: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """Chromium at the clinic: everything it fetches crosses the shaped link."""
    browser = chromium(
        playwright_driver, the_lab, the_lab.client_ns, tmp_path_factory.mktemp("clinic")
    )
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def hospital_browser(
    the_lab: Lab, playwright_driver: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """Chromium on the server's side of the link (the specialist of a call)."""
    browser = chromium(
        playwright_driver, the_lab, the_lab.server_ns, tmp_path_factory.mktemp("hospital")
    )
    yield browser
    browser.close()
