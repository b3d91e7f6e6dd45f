"""Who may read ``/metrics``: the loopback address; others only with the bearer token.

First through the ASGI client address (what uvicorn hands the app), then over real sockets:
uvicorn listening on every address, scraped from the loopback address and from this host's
own non-loopback address, and through a proxy on the loopback address that names the real
client in ``X-Forwarded-For`` (as nginx does).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from telemed.app import create_app
from telemed.observability.access import is_loopback
from telemed.settings import Settings
from tests.browser.conftest import free_port
from tests.helpers import ManualClock

TOKEN = "scrape-" + "k" * 40


def get(
    settings: Settings, engine: Engine, clock: ManualClock, host: str, **headers: str
) -> httpx.Response:
    with TestClient(create_app(settings, engine, clock), client=(host, 41000)) as client:
        return client.get("/metrics", headers=headers)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_the_loopback_address_may_scrape_without_a_token(
    settings: Settings, engine: Engine, clock: ManualClock, host: str
) -> None:
    assert is_loopback(host)
    response = get(settings, engine, clock, host)
    assert response.status_code == 200
    assert "telemed_consults" in response.text


def test_without_a_token_configured_nobody_else_may(
    settings: Settings, engine: Engine, clock: ManualClock
) -> None:
    assert settings.metrics_token is None
    for host in ("203.0.113.9", "10.0.0.5", "2001:db8::1", "testclient"):
        response = get(settings, engine, clock, host, Authorization=f"Bearer {TOKEN}")
        assert response.status_code == 403, host
        assert "loopback" in response.text
        assert "telemed_" not in response.text


def test_elsewhere_the_bearer_token_is_required_and_checked(
    settings: Settings, engine: Engine, clock: ManualClock
) -> None:
    guarded = settings.model_copy(update={"metrics_token": SecretStr(TOKEN)})
    outside = "203.0.113.9"
    missing = get(guarded, engine, clock, outside)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert get(guarded, engine, clock, outside, Authorization=f"Basic {TOKEN}").status_code == 401
    assert get(guarded, engine, clock, outside, Authorization="Bearer ").status_code == 401
    wrong = get(guarded, engine, clock, outside, Authorization=f"Bearer {TOKEN[:-1]}x")
    assert wrong.status_code == 403
    assert "telemed_" not in wrong.text
    right = get(guarded, engine, clock, outside, Authorization=f"bearer {TOKEN}")
    assert right.status_code == 200
    assert "telemed_database_up 1.0" in right.text


def own_address() -> str:
    """This host's address on its network (no packet is sent to connect a UDP socket)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))
            address = str(s.getsockname()[0])
    except OSError:
        pytest.skip("no network interface besides the loopback")
    if is_loopback(address):
        pytest.skip("no network interface besides the loopback")
    return address


@pytest.fixture
def listening(settings: Settings, engine: Engine) -> Iterator[int]:
    """The application in uvicorn on every address (as `telemed serve --host 0.0.0.0`)."""
    port = free_port()
    guarded = settings.model_copy(update={"metrics_token": SecretStr(TOKEN)})
    everywhere = "0.0.0.0"  # noqa: S104 - reached from this host's own network address
    config = uvicorn.Config(
        create_app(guarded, engine), host=everywhere, port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(timeout=15)


def test_over_real_sockets_from_here_from_the_network_and_through_a_proxy(
    listening: int,
) -> None:
    address = own_address()
    local = httpx.get(f"http://127.0.0.1:{listening}/metrics", timeout=10)
    assert local.status_code == 200
    # The same server reached on the network address: the client is that address, not
    # the loopback, and a forged X-Forwarded-For from it is not believed.
    remote = f"http://{address}:{listening}/metrics"
    assert httpx.get(remote, timeout=10).status_code == 401
    forged = httpx.get(remote, headers={"X-Forwarded-For": "127.0.0.1"}, timeout=10)
    assert forged.status_code == 401
    allowed = httpx.get(remote, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert allowed.status_code == 200
    assert "telemed_consults" in allowed.text
    # nginx on this host passes the real client on: it is refused like any outsider.
    proxied = httpx.get(
        f"http://127.0.0.1:{listening}/metrics",
        headers={"X-Forwarded-For": "203.0.113.9"},
        timeout=10,
    )
    assert proxied.status_code == 401
