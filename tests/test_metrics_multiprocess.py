"""``telemed serve --workers 2``: two real worker processes, and ``/metrics`` reached through
either of them reports the requests both served (prometheus-client's multi-process mode)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from telemed.settings import Settings
from tests.browser.conftest import free_port
from tests.helpers import env_without_settings
from tests.metrics_helpers import parse, value
from tests.process_helpers import wait_healthy


def access_lines(log: Path) -> list[dict[str, object]]:
    found = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record["logger"] == "telemed.access" and record["path"] == "/healthz":
                found.append(record)
    return found


def workers_started(log: Path) -> int:
    return sum("Started server process" in line for line in log.read_text().splitlines())


@pytest.mark.parametrize("backend", ["postgresql"])  # several workers need PostgreSQL
def test_metrics_sum_every_worker(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    metrics_dir = data_dir / "prometheus-multiproc"
    metrics_dir.mkdir(parents=True)
    (metrics_dir / "histogram_1.db").write_bytes(b"left over from a previous run")
    port = free_port()
    env = env_without_settings()
    env.update(
        TELEMED_DATA_DIR=str(data_dir),
        TELEMED_DATABASE_URL=settings.sqlalchemy_url,
        TELEMED_SCHEDULER_ENABLED="false",
        TELEMED_ENV="test",
        TELEMED_PASSWORD_HASHING="light",
        TELEMED_REDIS_URL="redis://127.0.0.1:6379/0",  # and Redis, for the calls' rooms
    )
    log = tmp_path / "serve.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "telemed",
                "serve",
                "--port",
                str(port),
                "--no-demo",
                "--workers",
                "2",
                "--log-format",
                "json",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process, base, log, 120)  # two interpreters importing on a busy machine
        deadline = time.monotonic() + 60
        while workers_started(log) < 2:  # the second worker may still be importing
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)

        # A new connection per request, until both workers have answered some.
        sent = 1  # the readiness probe that succeeded
        while len({line["pid"] for line in access_lines(log)}) < 2:
            assert sent < 500, "one worker answered every request"
            assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
            sent += 1
        time.sleep(0.5)  # the last access line is written after the response
        per_worker = Counter(line["pid"] for line in access_lines(log))
        assert sum(per_worker.values()) == sent
        assert len(per_worker) == 2

        samples = parse(httpx.get(f"{base}/metrics", timeout=10).text)
        served = value(
            samples,
            "telemed_http_request_duration_seconds_count",
            route="/healthz",
            method="GET",
            status="200",
        )
        assert served == sent  # both workers' requests, whichever one answered the scrape
        assert max(per_worker.values()) < served
        assert value(samples, "telemed_database_up") == 1
        assert not (metrics_dir / "histogram_1.db").exists()  # emptied at start
        assert {f"histogram_{pid}.db" for pid in per_worker} <= {
            p.name for p in metrics_dir.iterdir()
        }
    finally:
        process.terminate()
        process.wait(timeout=30)
    # Workers that ended leave the live gauges' sum (their counters and histograms stay).
    assert not list(metrics_dir.glob("gauge_livesum_*.db"))
