"""Debian's coturn on loopback, for relay-only tests (the recipe of the architecture page §11).

``start_coturn`` runs ``turnserver`` with TURN REST authentication on a free port, logs and pid
file in a temporary directory, waits until it answers a STUN binding request, and stops it
(SIGTERM, then SIGKILL) on exit.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

TURNSERVER = os.environ.get("TURNSERVER", "turnserver")
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
STUN_MAGIC = 0x2112A442


@dataclass(frozen=True)
class Coturn:
    host: str
    port: int
    secret: str
    realm: str
    log_dir: Path

    def log(self) -> str:
        """Everything coturn logged so far (for failure messages)."""
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))


def turnserver_path() -> str | None:
    return shutil.which(TURNSERVER) or (
        "/usr/bin/turnserver" if Path("/usr/bin/turnserver").exists() else None
    )


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


def stun_binding_answered(host: str, port: int, timeout_s: float = 0.2) -> bool:
    """True when a STUN binding request over UDP gets a success response."""
    txid = secrets.token_bytes(12)
    request = struct.pack("!HHI", 0x0001, 0, STUN_MAGIC) + txid
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.sendto(request, (host, port))
            data, _ = sock.recvfrom(2048)
        except OSError:  # timeout, or ICMP port unreachable before coturn listens
            return False
    return len(data) >= 20 and data[:2] == b"\x01\x01" and data[8:20] == txid


@contextlib.contextmanager
def start_coturn(
    executable: str, *, relay_ports: tuple[int, int] | None = None
) -> Iterator[Coturn]:
    secret = secrets.token_hex(16)
    realm = "telemed.test"
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="coturn-") as tmp:
        log_dir = Path(tmp)
        args = [
            executable,
            "-n",
            "--listening-ip=127.0.0.1",
            "--relay-ip=127.0.0.1",
            f"--listening-port={port}",
            "--use-auth-secret",
            f"--static-auth-secret={secret}",
            f"--realm={realm}",
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            "--allow-loopback-peers",
            "--fingerprint",
            f"--log-file={log_dir / 'turn.log'}",
            "--simple-log",
            "--no-stdout-log",
            f"--pidfile={log_dir / 'turn.pid'}",
            f"--userdb={log_dir / 'turndb'}",
        ]
        if relay_ports is not None:
            args += [f"--min-port={relay_ports[0]}", f"--max-port={relay_ports[1]}"]
        process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp
        )
        server = Coturn("127.0.0.1", port, secret, realm, log_dir)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not stun_binding_answered(server.host, port):
                if process.poll() is not None:
                    raise RuntimeError(f"turnserver exited ({process.returncode}):\n{server.log()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"turnserver did not answer STUN:\n{server.log()}")
            yield server
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(STOP_TIMEOUT_S)
