"""The files of ``deploy/`` are accepted by the programs that read them (docs/deploy.md).

nginx checks ``deploy/nginx/telemed.conf`` (``nginx -t``) included in a minimal main config,
its certificate moved to a temporary directory; ``systemd-analyze verify`` checks the units,
their program moved to this checkout's ``telemed``. Then nginx runs the site config in front
of the application: the client address it passes on, static files, the WebSocket upgrade.
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
import websockets
from click.testing import CliRunner
from sqlalchemy import Engine
from sqlmodel import Session, select

from telemed.accounts.models import LoginAttempt
from telemed.app import FORM_OVERHEAD_BYTES, create_app
from telemed.cli import main
from telemed.settings import Settings
from telemed.web.assets import ASSETS, IMMUTABLE
from tests.browser.conftest import free_port
from tests.nginx_helpers import DEPLOY, NGINX_CONF, nginx, nginx_config, tool

UNITS = DEPLOY / "systemd"
INSTALLED_TELEMED = "/opt/telemed/.venv/bin/telemed"


def test_nginx_accepts_the_site_config(tmp_path: Path) -> None:
    nginx_config(tmp_path)
    checked = nginx(tmp_path, "-t")
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr
    assert "[warn]" not in checked.stderr, checked.stderr


@pytest.fixture
def behind_nginx(settings: Settings, engine: Engine, tmp_path: Path) -> Iterator[str]:
    """The application in uvicorn (as `telemed serve`, proxy headers from 127.0.0.1) behind
    nginx with the site config; yields nginx's https base URL."""
    app_port, http_port, https_port = free_port(), free_port(), free_port()
    config = uvicorn.Config(
        create_app(settings, engine), host="127.0.0.1", port=app_port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    nginx_config(
        tmp_path, http_port=http_port, https_port=https_port, web=[app_port], signal=[app_port]
    )
    started = nginx(tmp_path)
    assert started.returncode == 0, started.stderr
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield f"https://127.0.0.1:{https_port}"
    finally:
        nginx(tmp_path, "-s", "stop")
        server.should_exit = True
        thread.join(timeout=15)


# What nginx and uvicorn do with the headers does not depend on the database: one backend.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_through_nginx_the_application_sees_the_client_and_the_socket_upgrades(
    behind_nginx: str, engine: Engine
) -> None:
    # From 127.0.0.2 (not a trusted proxy) with a forged X-Forwarded-For: the failed login
    # is counted against the address nginx saw, not the one the client wrote.
    transport = httpx.HTTPTransport(local_address="127.0.0.2", verify=False)
    with httpx.Client(base_url=behind_nginx, transport=transport, timeout=20) as client:
        page = client.get("/login")
        assert page.status_code == 200
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        refused = client.post(
            "/login",
            data={"csrf_token": token.group(1), "email": "who@example.org", "password": "x"},
            headers={"X-Forwarded-For": "203.0.113.66", "Origin": behind_nginx},
        )
        assert refused.status_code == 401
        static = client.get("/static/app.css")  # from disk: revalidated without a version
        assert static.status_code == 200
        assert static.headers["cache-control"] == "no-cache"
        versioned = client.get(ASSETS.url("app.css"))  # as the pages name it: a year
        assert versioned.headers["cache-control"] == IMMUTABLE
        script = client.get(ASSETS.url("call.js"))  # from the application: imports versioned
        assert script.headers["cache-control"] == IMMUTABLE
        assert f'from "./i18n.js?v={ASSETS.version("i18n.js")}"' in script.text
    with Session(engine) as session:
        attempts = session.exec(
            select(LoginAttempt).where(LoginAttempt.email == "who@example.org")
        ).all()
    assert [a.client_address for a in attempts] == ["127.0.0.2"]

    async def signal() -> str:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        url = behind_nginx.replace("https://", "wss://") + "/ws/signal"
        async with websockets.connect(url, ssl=context) as socket:
            await socket.send('{"type":"hello?"}')
            return str(await asyncio.wait_for(socket.recv(), 20))

    assert '"type":"error"' in asyncio.run(signal())


def _megabytes(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kKmM]?)", value).groups()  # type: ignore[union-attr]
    return int(number) * {"": 1, "k": 1024, "m": 1024 * 1024}[unit.lower()]


def test_nginx_takes_every_body_the_application_takes() -> None:
    """nginx lets through the largest upload the application accepts, and not much more:
    a bigger one reaches the application, whose 413 names the field."""
    found = re.search(r"^\s*client_max_body_size\s+(\S+);", NGINX_CONF.read_text(), re.M)
    assert found is not None
    nginx_limit = _megabytes(found.group(1))
    app_limit = Settings().max_upload_bytes + FORM_OVERHEAD_BYTES
    assert app_limit <= nginx_limit <= app_limit + 1024 * 1024


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    """Unknown or misspelt options are only warnings for systemd: any output fails too."""
    analyze = tool("systemd-analyze")
    program = Path(sys.executable).parent / "telemed"
    names = []
    for unit in sorted(UNITS.glob("*.service")):
        text = unit.read_text()
        assert INSTALLED_TELEMED in text, unit.name
        name = unit.name.replace("@.", "@8101.")  # a template is checked as an instance
        (tmp_path / name).write_text(text.replace(INSTALLED_TELEMED, str(program)))
        names.append(name)
    assert names == [
        "telemed-scheduler.service",
        "telemed-signal@8101.service",
        "telemed-web.service",
    ]
    checked = subprocess.run(
        [analyze, "verify", *names],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0"},
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr.strip() == "", checked.stderr


@pytest.mark.parametrize("value", ["10.20.0.5,nginx.local", "10.20.0.300", ""])
def test_serve_refuses_a_proxy_that_is_not_an_address(value: str) -> None:
    result = CliRunner().invoke(main, ["serve", "--forwarded-allow-ips", value])
    assert result.exit_code == 2
    assert "--forwarded-allow-ips" in result.output
    assert "is not an IP address or network" in result.output
