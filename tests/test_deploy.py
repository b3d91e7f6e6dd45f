"""The files of ``deploy/`` are accepted by the programs that read them (docs/deploy.md).

nginx checks ``deploy/nginx/telemed.conf`` (``nginx -t``) included in a minimal main config,
its certificate and static paths moved to a temporary directory; ``systemd-analyze verify``
checks the units, their program moved to this checkout's ``telemed``. Neither starts anything.
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from telemed.app import FORM_OVERHEAD_BYTES
from telemed.cli import main
from telemed.settings import Settings
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


def test_nginx_accepts_the_site_config(tmp_path: Path) -> None:
    nginx = _tool("nginx")
    text = NGINX_CONF.read_text()
    for path in (CERT_DIR, STATIC_DIR, ACME_DIR):
        assert path in text, f"{path} moved: update this test and docs/deploy.md"
    _self_signed(tmp_path)
    (tmp_path / "static").mkdir()
    site = tmp_path / "telemed.conf"
    site.write_text(
        text.replace(CERT_DIR, f"{tmp_path}/")
        .replace(STATIC_DIR, f"{tmp_path}/static/")
        .replace(ACME_DIR, str(tmp_path))
    )
    temp = {name: tmp_path / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    main_conf = tmp_path / "nginx.conf"
    main_conf.write_text(
        f"pid {tmp_path}/nginx.pid;\n"
        f"error_log {tmp_path}/error.log;\n"
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
    checked = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(main_conf)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr
    assert "[warn]" not in checked.stderr, checked.stderr


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
