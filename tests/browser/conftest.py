"""Headless Debian Chromium driven by Playwright, and the product served by `telemed serve`."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import require_service
from tests.helpers import env_without_settings

CHROMIUM = os.environ.get("TELEMED_TEST_CHROMIUM", "/usr/bin/chromium")
#: The mapping `make run` gives the demo (its facilities are the demo's).
DHIS2_EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "dhis2" / "mapping.example.toml"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
    "--disable-quic",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    page: Any, function: str, arg: object = None, timeout_ms: int = 30_000, every_ms: int = 250
) -> None:
    """Poll ``function`` (JavaScript taking ``arg``, returning a value or a promise) in the
    page until it is truthy. Playwright's own ``wait_for_function`` compiles the predicate
    with ``eval`` in the page once it has to poll, which our Content-Security-Policy (no
    ``unsafe-eval``) refuses; ``evaluate`` goes through DevTools and is allowed."""
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        if page.evaluate(function, arg):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout_ms} ms: {function}")
        time.sleep(every_ms / 1000)


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]
    log: Path
    started: datetime  # the server's clock when it started (faked or real)


TIMETRAVEL = Path(__file__).resolve().parents[1] / "timetravel"


def real_time() -> float:
    """The machine's real clock, also inside a run moved to another day (the offset is
    relative to it, see tests/timetravel)."""
    return time.time() - float(os.environ.get("TELEMED_TEST_CLOCK_OFFSET", "0"))


def clock_starting_at(start: datetime) -> dict[str, str]:
    """Environment that starts a Python process's wall clock at ``start`` and lets it tick
    (tests/timetravel/sitecustomize.py): the machine's date as that process sees it."""
    return {
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(TIMETRAVEL), os.environ.get("PYTHONPATH")])
        ),
        "TELEMED_TEST_CLOCK_OFFSET": repr(start.timestamp() - real_time()),
    }


@contextmanager
def serve(
    data: Path,
    *,
    at: datetime | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    prefix: Sequence[str] = (),
    get: Callable[..., httpx.Response] = httpx.get,
) -> Iterator[Server]:
    """`telemed serve` on the embedded default in ``data``, as the README's first command
    starts it, until the block ends; on a machine whose clock starts at ``at`` if given.

    ``prefix`` runs it through another command (tests/netlab: ``ip netns exec NS``, in a
    network namespace of its own), and ``get`` is then how the readiness probe reaches it."""
    port = port or free_port()
    env = env_without_settings()
    env["TELEMED_DATA_DIR"] = str(data)
    env["TELEMED_PASSWORD_HASHING"] = "light"  # the demo's accounts, cheaply (tests only)
    env["TELEMED_DHIS2_MAPPING"] = str(DHIS2_EXAMPLE)  # as `make run` sets it
    if at is not None:
        env.update(clock_starting_at(at))
    log = data / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                *prefix,
                sys.executable,
                "-m",
                "telemed",
                "serve",
                "--host",
                host,
                "--port",
                str(port),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    url = f"http://{host}:{port}"
    # Generous: a busy 2-core CI machine takes tens of seconds to import the app and seed
    # the demo. This bounds a hang; it measures nothing.
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"telemed serve exited: {log.read_text()}")
        try:
            if get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail(f"telemed serve did not become ready: {log.read_text()}")
    try:
        yield Server(url, process, log, at or datetime.now(UTC))
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The embedded default, exactly as the README's first command starts it."""
    with serve(tmp_path_factory.mktemp("browser-data")) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        require_service("Chromium", f"{CHROMIUM} not found (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()
