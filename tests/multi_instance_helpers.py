"""The several-machines deployment of docs/deploy.md, on loopback, as child processes.

:func:`cluster` starts, against one throwaway PostgreSQL database and the real Redis (its
keys under a prefix of its own): two ``telemed serve`` (the web processes), two
``telemed signal --store`` (standalone signalling hubs), two ``telemed scheduler`` (leader
and standby), all with one settings environment as ``/etc/telemed/telemed.env`` gives every
unit, and Debian's nginx in front with ``deploy/nginx/telemed.conf``, its two upstreams
listing them. E-mail goes to an aiosmtpd server in this process (:class:`HoldingSmtp`).

Each process writes its output to a file of its own: the tests read which hub took which
socket ("joined" events) and which scheduler is leader from there, as an operator reads the
journal.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.smtp import SMTP, Envelope, Session
from redis import Redis

from telemed.db import make_engine
from telemed.migrate import upgrade
from tests.browser.conftest import free_port
from tests.conftest import throwaway_postgres
from tests.helpers import env_without_settings
from tests.nginx_helpers import nginx, nginx_config
from tests.notification_helpers import SmtpServer, _Collector
from tests.process_helpers import stop, wait_healthy

REDIS_URL = os.environ.get("TELEMED_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
LEADER = re.compile(r"Scheduler is leader \(pid (\d+)\)")
STANDBY = re.compile(r"Scheduler on standby \(pid (\d+)\)")
ROLE = re.compile(f"{LEADER.pattern}|{STANDBY.pattern}")
START_S = 120.0  # a Python process importing the application on a busy 2-core machine
HOLD_S = 300.0  # the longest an e-mail is held: the test releases it long before


def wait_until(what: str, check: Callable[[], bool], seconds: float = 60.0) -> None:
    """Poll ``check`` until true; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.1)


class _HoldFirst(_Collector):
    """Keeps every message, and holds the first one at the end of DATA (before the reply)
    until the test releases it: a scheduler that sends it is caught mid-send."""

    def __init__(self) -> None:
        super().__init__()
        self.held = threading.Event()  # the first message arrived and is being held
        self.release = threading.Event()

    async def handle_DATA(  # noqa: N802 - the aiosmtpd hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        if not self.held.is_set():
            self.held.set()
            await asyncio.to_thread(self.release.wait, HOLD_S)
        return reply


class HoldingSmtp(SmtpServer):
    """aiosmtpd on loopback that holds the first message it receives (``held``) until
    ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.handler: _HoldFirst = _HoldFirst()

    @property
    def held(self) -> threading.Event:
        return self.handler.held

    @property
    def release(self) -> threading.Event:
        return self.handler.release

    @property
    def received(self) -> list[EmailMessage]:
        return self.messages


@dataclass
class Process:
    """One child process and the file its output goes to."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    port: int = 0

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL, as a machine that loses power or an OOM kill: nothing is cleaned up."""
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=30)

    def events(self, kind: str) -> list[dict[str, Any]]:
        """The session events of ``kind`` a signalling hub printed (JSON lines)."""
        found = []
        for line in self.output().splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if record.get("event") == "session" and record.get("kind") == kind:
                    found.append(record)
        return found


@dataclass
class Cluster:
    base: str  # nginx's https URL: everything a client sees goes through it
    database_url: str
    web: list[Process]
    hubs: list[Process]
    schedulers: list[Process]
    smtp: HoldingSmtp
    nginx_dir: Path
    env: dict[str, str] = field(default_factory=dict)

    def leader(self) -> Process | None:
        """The living scheduler whose latest role line says leader."""
        for process in self.schedulers:
            if process.popen.poll() is not None:
                continue
            roles = [m.group(0) for m in ROLE.finditer(process.output())]
            if roles and roles[-1].startswith("Scheduler is leader"):
                return process
        return None


def _spawn(name: str, args: list[str], env: dict[str, str], logs: Path) -> Process:
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [sys.executable, "-m", "telemed", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Process(name, popen, log)


def _wait_hub(process: Process) -> None:
    """Until the hub answers GET /metrics on its port (it is listening)."""

    def up() -> bool:
        assert process.popen.poll() is None, process.output()[-3000:]
        try:
            url = f"http://127.0.0.1:{process.port}/metrics"
            return httpx.get(url, timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(f"signalling hub {process.name}", up, START_S)


def _wait_role(process: Process, pattern: re.Pattern[str]) -> None:
    def said() -> bool:
        assert process.popen.poll() is None, process.output()[-3000:]
        return pattern.search(process.output()) is not None

    wait_until(f"{process.name} to say {pattern.pattern}", said, START_S)


def _forget_keys(prefix: str) -> None:
    """The used tickets and whatever else the hubs left in Redis under this run's prefix."""
    client = Redis.from_url(REDIS_URL)
    try:
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
    finally:
        client.close()


def hub_gauge(process: Process, name: str) -> float:
    """One of a hub's own gauges (``telemed_signaling_<name>``), from its /metrics."""
    text = httpx.get(f"http://127.0.0.1:{process.port}/metrics", timeout=5).text
    found = re.search(rf"^telemed_signaling_{name} (\S+)$", text, re.M)
    assert found is not None, text
    return float(found.group(1))


@contextmanager
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Everything started, in the order an operator would (schema first, then the units,
    then nginx); everything stopped (and the database dropped) afterwards."""
    logs = tmp_path / "logs"
    logs.mkdir()
    nginx_dir = tmp_path / "nginx"
    nginx_dir.mkdir()
    with ExitStack() as stack:
        url = stack.enter_context(throwaway_postgres("telemed_multi"))
        engine = make_engine(url)
        upgrade(engine)  # `telemed db upgrade`, once, before the services
        engine.dispose()
        smtp = HoldingSmtp()
        smtp.start()
        stack.callback(smtp.stop)
        stack.callback(smtp.release.set)  # a held handler never outlives the test

        http_port, https_port = free_port(), free_port()
        base = f"https://127.0.0.1:{https_port}"
        # One settings environment for every process, as /etc/telemed/telemed.env.
        env = env_without_settings()
        prefix = f"test-multi-{secrets.token_hex(6)}:"
        stack.callback(_forget_keys, prefix)
        env.update(
            PYTHONUNBUFFERED="1",  # each line reaches the log file when printed
            TELEMED_ENV="test",
            TELEMED_PASSWORD_HASHING="light",
            TELEMED_SECRET_KEY=secrets.token_urlsafe(48),
            TELEMED_DATABASE_URL=url,
            TELEMED_DATA_DIR=str(tmp_path / "data"),  # the shared (NFS) store
            TELEMED_REDIS_URL=REDIS_URL,
            TELEMED_REDIS_PREFIX=prefix,
            TELEMED_SCHEDULER_ENABLED="false",  # jobs only in `telemed scheduler`
            TELEMED_SCHEDULER_STANDBY_POLL_SECONDS="1",
            TELEMED_PUBLIC_BASE_URL=base,
            TELEMED_SMTP_HOST=smtp.host,
            TELEMED_SMTP_PORT=str(smtp.port),
            TELEMED_SMTP_STARTTLS="false",
            # The leader waits for the held message's reply until it is killed, rather than
            # time out and retry it (SMTP's own at-least-once case, not the handover's).
            TELEMED_SMTP_TIMEOUT_SECONDS=str(HOLD_S),
            TELEMED_MAIL_FROM="Telemed <noreply@example.org>",
            # The accepted consult's appointment is at the specialist's next free slot,
            # hours away: the call may start now.
            TELEMED_CALL_OPEN_BEFORE_MINUTES=str(7 * 24 * 60),
        )
        processes: list[Process] = []

        def started(process: Process) -> Process:
            processes.append(process)
            return process

        def stop_all() -> None:
            for process in reversed(processes):
                stop(process.popen, 15)

        stack.callback(stop_all)
        web = []
        for n in (1, 2):
            port = free_port()
            args = ["serve", "--port", str(port), "--no-demo"]
            process = started(_spawn(f"web{n}", args, env, logs))
            process.port = port
            web.append(process)
        hubs = []
        for n in (1, 2):
            port = free_port()
            args = ["signal", "--port", str(port), "--store"]
            process = started(_spawn(f"signal{n}", args, env, logs))
            process.port = port
            hubs.append(process)
        # Both schedulers at once, as two machines booting: one wins the lock.
        schedulers = [started(_spawn(f"scheduler{n}", ["scheduler"], env, logs)) for n in (1, 2)]
        for process in web:
            wait_healthy(process.popen, f"http://127.0.0.1:{process.port}", process.log, START_S)
        for process in hubs:
            _wait_hub(process)
        for process in schedulers:
            _wait_role(process, ROLE)

        nginx_config(
            nginx_dir,
            http_port=http_port,
            https_port=https_port,
            web=[p.port for p in web],
            signal=[p.port for p in hubs],
        )
        begun = nginx(nginx_dir)
        assert begun.returncode == 0, begun.stderr
        stack.callback(nginx, nginx_dir, "-s", "stop")
        yield Cluster(base, url, web, hubs, schedulers, smtp, nginx_dir, env)
