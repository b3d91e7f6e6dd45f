"""The signalling metrics: sockets, sessions and rooms of a real call, from the standalone
``telemed signal`` (its own ``/metrics`` on its port) and from the hub the application
embeds (``/ws/signal``, reported by the application's ``/metrics``)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import Engine

from signaling.tokens import mint_token
from telemed.observability.metrics import REGISTRY
from telemed.sessions import service
from telemed.settings import Settings
from tests.helpers import env_without_settings
from tests.metrics_helpers import parse, value
from tests.process_helpers import read_line
from tests.test_metrics_access import own_address
from tests.test_sessions_ws import hello, receive, serve

SECRET = "a-standalone-secret-" + "x" * 20
TOKEN = "scrape-" + "s" * 40


def ticket(settings: Settings, ws_url: str, participant: str) -> dict[str, str]:
    token = mint_token(
        service.signaling_secret(settings),
        room="consult-7",
        participant=participant,
        name="Sr L. Ntho",
        role="clinician",
    )
    return {"ws_url": ws_url, "room": "consult-7", "token": token}


def test_the_standalone_hub_serves_its_own_metrics(tmp_path: Path) -> None:
    env = env_without_settings()
    env.update(
        TELEMED_DATA_DIR=str(tmp_path), TELEMED_SECRET_KEY=SECRET, TELEMED_METRICS_TOKEN=TOKEN
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "telemed", "signal", "--host", "0.0.0.0", "--port", "0"],  # noqa: S104
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        port = json.loads(read_line(process, 30, "the hub's 'listening' line"))["port"]
        metrics_url = f"http://127.0.0.1:{port}/metrics"
        settings = Settings(secret_key=SECRET, data_dir=tmp_path)

        def scrape() -> dict[str, float]:
            response = httpx.get(metrics_url, timeout=10)
            assert response.status_code == 200, response.text
            assert response.headers["content-type"].startswith("text/plain; version=")
            samples = parse(response.text)
            return {k: value(samples, f"telemed_signaling_{k}") for k in ("connections", "rooms")}

        assert scrape() == {"connections": 0, "rooms": 0}

        async def call() -> None:
            url = f"ws://127.0.0.1:{port}/"
            nurse, _ = await hello(ticket(settings, url, "u-3"))
            doctor, _ = await hello(ticket(settings, url, "u-4"))
            during = await asyncio.to_thread(scrape)
            assert during == {"connections": 2, "rooms": 1}
            for ws in (nurse, doctor):
                await ws.send(json.dumps({"type": "leave", "rid": "9"}))
                await receive(ws, "ack")
                await ws.close()

        asyncio.run(call())
        assert scrape()["connections"] == 0
        # From the network: the token, as for the application's /metrics.
        remote = f"http://{own_address()}:{port}/metrics"
        assert httpx.get(remote, timeout=10).status_code == 401
        bad = httpx.get(remote, headers={"Authorization": "Bearer nope"}, timeout=10)
        assert bad.status_code == 403
        good = httpx.get(remote, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        assert good.status_code == 200
        assert "telemed_signaling_rooms" in good.text
    finally:
        process.terminate()
        process.wait(timeout=10)


def gauge(key: str) -> float | None:
    return REGISTRY.get_sample_value(f"telemed_signaling_{key}")


def test_the_embedded_hub_is_counted_by_the_application(settings: Settings, engine: Engine) -> None:
    with contextmanager(serve)(settings, engine) as url:
        ws_url = url.replace("http://", "ws://") + "/ws/signal"

        async def call() -> None:
            nurse, _ = await hello(ticket(settings, ws_url, "u-3"))
            # Each worker copies its hub's counts into its gauges after every sweep (1 s),
            # without a scrape: what a multi-process scrape sums.
            deadline = time.monotonic() + 10
            while gauge("connections") != 1:
                assert time.monotonic() < deadline, f"gauge stayed at {gauge('connections')}"
                await asyncio.sleep(0.1)
            response = await asyncio.to_thread(httpx.get, f"{url}/metrics", timeout=10)
            samples = parse(response.text)
            assert value(samples, "telemed_signaling_connections") == 1
            assert value(samples, "telemed_signaling_sessions") == 1
            assert value(samples, "telemed_signaling_rooms") == 1
            await nurse.send(json.dumps({"type": "leave", "rid": "9"}))
            await receive(nurse, "ack")
            await nurse.close()

        asyncio.run(call())
        after = parse(httpx.get(f"{url}/metrics", timeout=10).text)
        assert value(after, "telemed_signaling_connections") == 0
