"""nginx (Debian's package) as a child process of a test, with ``deploy/nginx/telemed.conf``
as its site: the certificate, static files and temporary files moved into the test's
directory, and the upstreams pointed at the test's own processes.

Used by tests/test_deploy.py (one application behind nginx) and
tests/test_multi_instance.py (two web processes and two signalling hubs behind it): both
run the deploy file itself, so what they prove holds for the file an operator installs.
"""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from telemed.app import STATIC_DIR as PACKAGE_STATIC
from tests.conftest import require_service

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
NGINX_CONF = DEPLOY / "nginx" / "telemed.conf"
CERT_DIR = "/etc/letsencrypt/live/telemed.example.org.ls/"
STATIC_DIR = "/opt/telemed/static/"
ACME_DIR = "/var/www/html"
# The line each upstream of the deploy file has for one server (the application itself).
ONE_SERVER = "    server 127.0.0.1:8000;"
# Debian installs them in sbin, which a user's PATH may lack.
SYSTEM_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin"])


def tool(name: str) -> str:
    found = shutil.which(name, path=SYSTEM_PATH)
    if found is None:
        require_service(name, f"`{name}` is not installed (make system-packages)")
    assert found is not None
    return found


def self_signed(directory: Path) -> None:
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


def _upstream(text: str, name: str, ports: Sequence[int]) -> str:
    """The upstream ``name`` of the site config with its one-server line replaced by one
    line per port (as docs/deploy.md says to list several processes)."""
    start = text.index(f"upstream {name} {{")
    end = text.index("}", start)
    block = text[start:end]
    assert ONE_SERVER in block, f"upstream {name} changed: update tests/nginx_helpers.py"
    servers = "\n".join(f"    server 127.0.0.1:{port};" for port in ports)
    return text[:start] + block.replace(ONE_SERVER, servers, 1) + text[end:]


def nginx_config(
    tmp_path: Path,
    *,
    http_port: int = 80,
    https_port: int = 443,
    web: Sequence[int] = (),
    signal: Sequence[int] = (),
) -> Path:
    """deploy/nginx/telemed.conf in a minimal main config: certificate, static files and
    temporary files moved, and (``web``, ``signal``) the upstreams and ports moved to this
    test's. Returns the main config."""
    text = NGINX_CONF.read_text()
    for path in (CERT_DIR, STATIC_DIR, ACME_DIR):
        assert path in text, f"{path} moved: update this test and docs/deploy.md"
    self_signed(tmp_path)
    text = (
        text.replace(CERT_DIR, f"{tmp_path}/")
        .replace(STATIC_DIR, f"{PACKAGE_STATIC}/")
        .replace(ACME_DIR, str(tmp_path))
    )
    if web or signal:
        text = (
            _upstream(_upstream(text, "telemed_web", web), "telemed_signal", signal)
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


def nginx(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``nginx`` on the main config ``nginx_config`` wrote into ``tmp_path``: no arguments
    starts it (it daemonizes), ``-s stop`` stops it, ``-t`` checks the config."""
    main_conf = tmp_path / "nginx.conf"
    command = [tool("nginx"), "-p", str(tmp_path), "-e", str(tmp_path / "error.log")]
    return subprocess.run(
        [*command, "-c", str(main_conf), *args], capture_output=True, text=True, timeout=60
    )
