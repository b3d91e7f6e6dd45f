"""The files of ``deploy/`` are accepted by the programs that read them (docs/deploy.md).

nginx checks ``deploy/nginx/telemed.conf`` (``nginx -t``) included in a minimal main config,
its certificate moved to a temporary directory; ``systemd-analyze verify`` checks the units,
their program moved to this checkout's ``telemed``. Then nginx runs the site config in front
of the application: the client address it passes on, static files, the WebSocket upgrade.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import re
import shutil
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
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine
from sqlmodel import Session, select

from telemed.accounts.models import LoginAttempt
from telemed.app import FORM_OVERHEAD_BYTES, create_app
from telemed.app import STATIC_DIR as PACKAGE_STATIC
from telemed.cli import main
from telemed.settings import Settings
from telemed.web.assets import ASSETS, IMMUTABLE
from tests.browser.conftest import free_port
from tests.conftest import require_service

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
NGINX_CONF = DEPLOY / "nginx" / "telemed.conf"
UNITS = DEPLOY / "systemd"
CERT_DIR = "/etc/letsencrypt/live/telemed.example.org.ls/"
STATIC_DIR = "/opt/telemed/static/"
ACME_DIR = "/var/www/html"
INSTALLED_TELEMED = "/opt/telemed/.venv/bin/telemed"
# Debian installs them in sbin, which a user's PATH may lack.
SYSTEM_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin"])


def _tool(name: str) -> str:
    found = shutil.which(name, path=SYSTEM_PATH)
    if found is None:
        require_service(name, f"`{name}` is not installed (make system-packages)")
    assert found is not None
    return found


def _self_signed(directory: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "telemed.example.org.ls")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (directory / "fullchain.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "privkey.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _nginx_config(
    tmp_path: Path, *, http_port: int = 80, https_port: int = 443, app: int = 0
) -> Path:
    """deploy/nginx/telemed.conf in a minimal main config: certificate, static files and
    temporary files moved, and (``app``) every upstream and port moved to this test's."""
    text = NGINX_CONF.read_text()
    for path in (CERT_DIR, STATIC_DIR, ACME_DIR):
        assert path in text, f"{path} moved: update this test and docs/deploy.md"
    _self_signed(tmp_path)
    text = (
        text.replace(CERT_DIR, f"{tmp_path}/")
        .replace(STATIC_DIR, f"{PACKAGE_STATIC}/")
        .replace(ACME_DIR, str(tmp_path))
    )
    if app:
        text = (
            text.replace("127.0.0.1:8000;", f"127.0.0.1:{app};")
            .replace("listen 443 ssl", f"listen 127.0.0.1:{https_port} ssl")
            .replace("listen 80;", f"listen 127.0.0.1:{http_port};")
            .replace("listen [::]:443 ssl http2;", "")
            .replace("listen [::]:80;", "")
        )
    site = tmp_path / "telemed.conf"
    site.write_text(text)
    temp = {name: tmp_path / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    main_conf = tmp_path / "nginx.conf"
    main_conf.write_text(
        # Workers as root here: they read this test's 0700 temporary directory.
        ("user root;\n" if os.geteuid() == 0 else "") + f"pid {tmp_path}/nginx.pid;\n"
        f"error_log {tmp_path}/error.log;\n"
        "worker_processes 1;\n"
        "events {}\n"
        "http {\n"
        f"  access_log {tmp_path}/access.log;\n"
        f"  client_body_temp_path {temp['body']};\n"
        f"  proxy_temp_path {temp['proxy']};\n"
        f"  fastcgi_temp_path {temp['fastcgi']};\n"
        f"  uwsgi_temp_path {temp['uwsgi']};\n"
        f"  scgi_temp_path {temp['scgi']};\n"
        f"  include {site};\n"
        "}\n"
    )
    return main_conf


def _nginx(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    main_conf = tmp_path / "nginx.conf"
    command = [_tool("nginx"), "-p", str(tmp_path), "-e", str(tmp_path / "error.log")]
    return subprocess.run(
        [*command, "-c", str(main_conf), *args], capture_output=True, text=True, timeout=60
    )


def test_nginx_accepts_the_site_config(tmp_path: Path) -> None:
    _nginx_config(tmp_path)
    checked = _nginx(tmp_path, "-t")
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
    _nginx_config(tmp_path, http_port=http_port, https_port=https_port, app=app_port)
    started = _nginx(tmp_path)
    assert started.returncode == 0, started.stderr
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield f"https://127.0.0.1:{https_port}"
    finally:
        _nginx(tmp_path, "-s", "stop")
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
    analyze = _tool("systemd-analyze")
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
