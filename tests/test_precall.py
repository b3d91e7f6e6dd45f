"""The pre-call network test: a real aiortc client against the application's echo peer
(uvicorn on a real port), the stored results and the recommendation the server computes, the
limits of the echo peers, and the coordinators' view of every facility's link."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from aioice.ice import get_host_addresses
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcdatachannel import RTCDataChannel
from fastapi import FastAPI
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from telemed.accounts.models import Role, User
from telemed.app import create_app
from telemed.db import utcnow
from telemed.precall import service
from telemed.precall.echo import EchoPool
from telemed.settings import Settings
from telemed.web.assets import ASSETS
from tests.browser.conftest import free_port
from tests.conftest import LoginFn
from tests.helpers import PASSWORD, Users

TIMEOUT = 15.0


@dataclass
class Live:
    url: str
    app: FastAPI

    @property
    def pool(self) -> EchoPool:
        pool: EchoPool = self.app.state.network_echo
        return pool


@contextmanager
def serving(settings: Settings, engine: Engine) -> Iterator[Live]:
    """The application under uvicorn on a real port, in a thread with its own event loop."""
    app = create_app(settings, engine)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield Live(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture
def live(settings: Settings, engine: Engine) -> Iterator[Live]:
    with serving(settings, engine) as running:
        yield running


def wait_until(condition: Any, what: str, timeout_s: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def host_address() -> str:
    """The address the test peer's host candidate has: the HTTP requests come from it too,
    as a browser's do from the address its candidates list (the echo peer answers only
    that address)."""
    return get_host_addresses(use_ipv4=True, use_ipv6=False)[0]


async def log_in(url: str, user: User) -> tuple[httpx.AsyncClient, dict[str, str]]:
    transport = httpx.AsyncHTTPTransport(local_address=host_address())
    client = httpx.AsyncClient(base_url=url, timeout=TIMEOUT, transport=transport)
    response = await client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return client, {"X-CSRF-Token": response.json()["csrf_token"]}


# ------------------------------------------------------------------ a Python test client


async def opened(channel: RTCDataChannel) -> None:
    if channel.readyState == "open":
        return
    event = asyncio.Event()
    channel.once("open", event.set)
    await event.wait()


async def drained(channel: RTCDataChannel, threshold: int) -> None:
    event = asyncio.Event()
    channel.bufferedAmountLowThreshold = threshold
    channel.once("bufferedamountlow", event.set)
    await event.wait()


@dataclass
class EchoClient:
    """What precall.js does, with aiortc: the same channels and the same messages."""

    pc: RTCPeerConnection
    probe: RTCDataChannel
    bulk: RTCDataChannel
    echoes: asyncio.Queue[str | bytes] = field(default_factory=asyncio.Queue)
    control: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    downloaded: list[int] = field(default_factory=list)

    @classmethod
    def make(cls) -> EchoClient:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        client = cls(
            pc,
            pc.createDataChannel("probe", ordered=False, maxRetransmits=0),
            pc.createDataChannel("bulk"),
        )
        client.probe.on("message", client.echoes.put_nowait)

        @client.bulk.on("message")
        def _bulk(message: str | bytes) -> None:
            if isinstance(message, bytes):
                client.downloaded.append(len(message))
            else:
                client.control.put_nowait(json.loads(message))

        return client

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        assert self.pc.localDescription is not None
        return self.pc.localDescription.sdp

    async def connect(self, http: httpx.AsyncClient, csrf: dict[str, str]) -> None:
        response = await http.post(
            "/api/v1/network-tests/offer",
            json={"type": "offer", "sdp": await self.offer()},
            headers=csrf,
        )
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["type"] == "answer"
        assert "a=candidate:" in answer["sdp"]  # complete: every candidate is in the SDP
        await self.pc.setRemoteDescription(RTCSessionDescription(**answer))
        async with asyncio.timeout(TIMEOUT):
            await asyncio.gather(opened(self.probe), opened(self.bulk))

    async def reply(self, kind: str) -> dict[str, Any]:
        async with asyncio.timeout(TIMEOUT):
            while True:
                message = await self.control.get()
                if message.get("type") == kind:
                    return message

    async def close(self) -> None:
        await self.pc.close()


async def measure(client: EchoClient, plan: dict[str, Any]) -> dict[str, Any]:
    """Probes, upload, download, as the page does; returns the numbers it would submit."""
    rtts = []
    for seq in range(plan["probes"]):
        sent = time.perf_counter()
        client.probe.send(f"p{seq} ".ljust(plan["probe_bytes"], "."))
        async with asyncio.timeout(TIMEOUT):
            echo = await client.echoes.get()
        assert str(echo).startswith(f"p{seq} ")
        rtts.append((time.perf_counter() - sent) * 1000)

    chunk = bytes(plan["chunk_bytes"])
    uploaded = 0
    while uploaded < plan["up_max_bytes"]:
        client.bulk.send(chunk)
        uploaded += len(chunk)
        if client.bulk.bufferedAmount >= plan["buffer_bytes"]:
            async with asyncio.timeout(TIMEOUT):
                await drained(client.bulk, plan["buffer_bytes"] // 2)
    client.bulk.send(json.dumps({"type": "up-done"}))
    up = await client.reply("up-result")
    assert up["total"] == uploaded  # every byte arrived, in order
    assert 0 < up["bytes"] < uploaded  # the first chunk only starts the clock

    client.bulk.send(json.dumps({"type": "down"}))
    down = await client.reply("down-done")
    assert 0 < down["bytes"] <= plan["down_max_bytes"]  # the server keeps to the plan
    assert sum(client.downloaded) == down["bytes"]

    return {
        "connected": True,
        "rtt_ms": sorted(rtts)[len(rtts) // 2],
        "jitter_ms": 0.0,
        "probes_sent": plan["probes"],
        "probes_received": len(rtts),
        "up_kbps": up["bytes"] * 8 / max(up["ms"], 1),
        "down_kbps": 1000.0,
    }


# ------------------------------------------------------------------ the echo peer


def test_a_real_client_measures_the_link_and_the_result_is_stored(
    live: Live, users: Users, db: Session
) -> None:
    nurse = users.make(Role.clinician)

    async def scenario() -> dict[str, Any]:
        http, csrf = await log_in(live.url, nurse)
        setup = (await http.get("/api/v1/network-tests/setup")).json()
        assert setup["ice_servers"] == []  # no STUN or TURN configured in the tests
        client = EchoClient.make()
        try:
            await client.connect(http, csrf)
            measured = await measure(client, setup["plan"])
            client.bulk.send(json.dumps({"type": "bye"}))
            stored = await http.post("/api/v1/network-tests", json=measured, headers=csrf)
            assert stored.status_code == 201, stored.text
            return {"measured": measured, "stored": stored.json()}
        finally:
            await client.close()
            await http.aclose()

    result = asyncio.run(scenario())
    measured, stored = result["measured"], result["stored"]
    assert 0 <= measured["rtt_ms"] < TIMEOUT * 1000
    assert stored["loss_percent"] == 0.0  # loopback loses nothing
    assert stored["probes_received"] == stored["probes_sent"] == service.PLAN.probes
    assert stored["facility_id"] == nurse.facility_id
    assert stored["user_id"] == nurse.id
    assert stored["recommendation"] == service.recommend(
        connected=True,
        rtt_ms=measured["rtt_ms"],
        loss=0.0,
        up_kbps=measured["up_kbps"],
        down_kbps=measured["down_kbps"],
    )
    wait_until(lambda: live.pool.active == 0, "the echo peer to close after bye")
    row = db.execute(
        text("SELECT user_agent, recommendation FROM network_tests WHERE id = :id"),
        {"id": stored["id"]},
    ).one()
    assert row.user_agent.startswith("python-httpx")
    assert row.recommendation == stored["recommendation"]


def test_test_peers_are_bounded_and_closed(live: Live, users: Users) -> None:
    nurse = users.make(Role.clinician)
    specialist = users.make(Role.specialist)
    coordinator = users.make(Role.coordinator)
    live.pool.max_peers = 1
    live.pool.timeout_s = 1.0

    async def offer(who: User) -> httpx.Response:
        http, csrf = await log_in(live.url, who)
        client = EchoClient.make()
        try:
            return await http.post(
                "/api/v1/network-tests/offer",
                json={"type": "offer", "sdp": await client.offer()},
                headers=csrf,
            )
        finally:
            await client.close()
            await http.aclose()

    assert asyncio.run(offer(nurse)).status_code == 200
    # The same user again replaces their test: still one peer.
    assert asyncio.run(offer(nurse)).status_code == 200
    assert live.pool.active == 1
    busy = asyncio.run(offer(specialist))
    assert busy.status_code == 429
    assert busy.headers["retry-after"] == "60"
    assert "busy" in busy.json()["error"]["message"]
    # A peer that never connects is closed at its hard timeout; then there is room again.
    wait_until(lambda: live.pool.active == 0, "the unconnected peer to time out")
    assert asyncio.run(offer(specialist)).status_code == 200
    # Coordinators do not run the test.
    assert asyncio.run(offer(coordinator)).status_code == 403


def test_stopping_the_application_closes_its_test_peers(
    settings: Settings, engine: Engine, users: Users
) -> None:
    nurse = users.make(Role.clinician)
    with serving(settings, engine) as running:
        pool = running.pool
        pool.timeout_s = 600.0

        async def offer_and_walk_away() -> None:
            http, csrf = await log_in(running.url, nurse)
            client = EchoClient.make()
            response = await http.post(
                "/api/v1/network-tests/offer",
                json={"type": "offer", "sdp": await client.offer()},
                headers=csrf,
            )
            assert response.status_code == 200
            await client.close()
            await http.aclose()

        asyncio.run(offer_and_walk_away())
        assert pool.active == 1  # never connected: it would wait for its timeout
    assert pool.active == 0  # the application's shutdown closed it


def test_offers_that_are_not_data_channel_offers_are_refused(login: LoginFn, users: Users) -> None:
    nurse = login(users.make(Role.clinician))

    async def audio_offer() -> str:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver("audio")
        pc.createDataChannel("probe")
        await pc.setLocalDescription(await pc.createOffer())
        assert pc.localDescription is not None
        sdp = pc.localDescription.sdp
        await pc.close()
        return sdp

    response = nurse.post("/api/v1/network-tests/offer", {"sdp": "hello, this is not SDP"})
    assert response.status_code == 422
    assert response.json()["error"]["fields"] == [
        {"field": "sdp", "message": "the offer is not an SDP session description"}
    ]
    response = nurse.post("/api/v1/network-tests/offer", {"sdp": asyncio.run(audio_offer())})
    assert response.status_code == 422
    assert "data channels only" in response.json()["error"]["message"]
    broken = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nm=application 9 UDP/DTLS/SCTP x\r\n"
    response = nurse.post("/api/v1/network-tests/offer", {"sdp": broken})
    assert response.status_code == 422
    # (refused before it reaches the peer: it names no candidate at the requester's address)
    assert response.json()["error"]["fields"][0]["field"] == "sdp"
    assert nurse.client.app.state.network_echo.active == 0
    no_csrf = nurse.client.post("/api/v1/network-tests/offer", json={"sdp": broken})
    assert no_csrf.status_code == 403


def test_not_logged_in_is_401(client: Any) -> None:
    for url in ("/api/v1/network-tests/offer", "/api/v1/network-tests"):
        response = client.post(url, json={})
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "not_authenticated"
    assert client.get("/api/v1/network-tests/setup").status_code == 401
    page = client.get("/network-test", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/network-test"


# ------------------------------------------------------------------ results


def good_link(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "connected": True,
        "rtt_ms": 80.0,
        "jitter_ms": 5.0,
        "probes_sent": 15,
        "probes_received": 15,
        "up_kbps": 2000.0,
        "down_kbps": 3000.0,
    }
    body.update(overrides)
    return body


RECOMMENDATIONS: list[tuple[dict[str, object], str]] = [
    (good_link(), "normal"),
    (good_link(up_kbps=300.0), "low"),
    (good_link(rtt_ms=550.0), "low"),
    (good_link(down_kbps=100.0), "audio-only"),
    (good_link(probes_received=13), "audio-only"),  # 13.3% loss
    (good_link(up_kbps=None), "asynchronous"),  # the upload never answered
    (good_link(rtt_ms=None, probes_received=0), "asynchronous"),
    ({"connected": False}, "asynchronous"),
    # The client's own label is ignored: 40% loss cannot carry a call.
    (good_link(probes_received=9, recommendation="video"), "asynchronous"),
]


def test_the_server_computes_the_recommendation(login: LoginFn, users: Users) -> None:
    nurse = login(users.make(Role.clinician))
    for measured, expected in RECOMMENDATIONS:
        response = nurse.post("/api/v1/network-tests", measured)
        assert response.status_code == 201, response.text
        stored = response.json()
        assert stored["recommendation"] == expected, measured
        assert stored["label"] == service.LABELS[service.NetworkRecommendation(expected)]
        mine = nurse.get("/api/v1/network-tests/recommendation").json()
        assert mine["based_on"]["id"] == stored["id"]
        assert mine["profile"] == ("audio-only" if expected == "asynchronous" else expected)
    assert stored["loss_percent"] == 40.0


BAD_MEASUREMENTS: list[tuple[dict[str, object], str]] = [
    (good_link(rtt_ms=-1), "rtt_ms"),
    (good_link(up_kbps=-5), "up_kbps"),
    (good_link(down_kbps=1e12), "down_kbps"),
    (good_link(rtt_ms=3_600_000), "rtt_ms"),
    (good_link(probes_sent=5, probes_received=6), "body"),
    (good_link(probes_sent=0, probes_received=0, rtt_ms=None), "body"),
    (good_link(probes_sent=100_000), "probes_sent"),
    (good_link(loss_percent=0), "loss_percent"),  # computed by the server, not sent
    (good_link(rtt_ms="fast"), "rtt_ms"),
]


def test_bad_measurements_are_422(login: LoginFn, users: Users) -> None:
    nurse = login(users.make(Role.clinician))
    for body, name in BAD_MEASUREMENTS:
        response = nurse.post("/api/v1/network-tests", body)
        assert response.status_code == 422, response.text
        fields = [f["field"] for f in response.json()["error"]["fields"]]
        assert name in fields, (body, fields)
    for raw in ("NaN", "Infinity", "1e999"):
        text_body = json.dumps(good_link()).replace('"rtt_ms": 80.0', f'"rtt_ms": {raw}')
        response = nurse.client.post(
            "/api/v1/network-tests",
            content=text_body,
            headers={"X-CSRF-Token": nurse.csrf, "Content-Type": "application/json"},
        )
        assert response.status_code == 422, (raw, response.text)
    assert nurse.get("/api/v1/network-tests/recommendation").json()["profile"] is None


def test_recommended_profile_uses_the_user_then_the_facility(
    login: LoginFn, users: Users, db: Session
) -> None:
    first = users.make(Role.clinician)
    colleague = users.make(Role.clinician)  # same facility (MOTEBANG)
    elsewhere = users.make(Role.clinician, facility="QUTHING")
    specialist = users.make(Role.specialist)
    now = utcnow()
    for user in (first, colleague, elsewhere, specialist):
        assert service.recommended_profile(db, user, now) is None  # no test yet

    login(first).post("/api/v1/network-tests", good_link(up_kbps=300.0))
    db.rollback()  # a fresh snapshot: the application wrote
    assert service.recommended_profile(db, first, utcnow()) == "low"
    assert service.recommended_profile(db, colleague, utcnow()) == "low"  # the facility's
    assert service.recommended_profile(db, elsewhere, utcnow()) is None

    # The colleague's own test counts before the facility's latest.
    login(colleague).post("/api/v1/network-tests", good_link())
    login(first).post("/api/v1/network-tests", good_link(down_kbps=60.0))
    db.rollback()  # a fresh snapshot: the application wrote
    assert service.recommended_profile(db, colleague, utcnow()) == "normal"
    assert service.recommended_profile(db, first, utcnow()) == "audio-only"

    # A specialist has no facility: only their own tests count.
    login(specialist).post("/api/v1/network-tests", {"connected": False})
    db.rollback()  # a fresh snapshot: the application wrote
    assert service.recommended_profile(db, specialist, utcnow()) == "audio-only"
    stored = db.execute(
        text("SELECT facility_id FROM network_tests WHERE user_id = :id"), {"id": specialist.id}
    ).one()
    assert stored.facility_id is None

    # Results older than 30 days no longer count.
    later = utcnow() + timedelta(days=31)
    assert service.recommended_profile(db, first, later) is None


def test_results_are_append_only(login: LoginFn, users: Users, db: Session) -> None:
    login(users.make(Role.clinician)).post("/api/v1/network-tests", good_link())
    with pytest.raises(DBAPIError):
        db.execute(text("UPDATE network_tests SET recommendation = 'normal'"))
    db.rollback()
    with pytest.raises(DBAPIError):
        db.execute(text("DELETE FROM network_tests"))
    db.rollback()


# ------------------------------------------------------------------ pages


def test_coordinators_see_each_facilitys_latest_result(login: LoginFn, users: Users) -> None:
    nurse = login(users.make(Role.clinician))
    coordinator = login(users.make(Role.coordinator))
    nurse.post("/api/v1/network-tests", good_link())
    nurse.post(
        "/api/v1/network-tests",
        good_link(rtt_ms=612.0, up_kbps=180.0, down_kbps=240.0, probes_received=14),
    )

    links = coordinator.get("/api/v1/network-tests/facilities").json()
    motebang = next(f for f in links if f["code"] == "MOTEBANG")
    assert motebang["tests"] == 2
    assert motebang["latest"]["rtt_ms"] == 612.0
    assert motebang["latest"]["recommendation"] == "audio-only"
    assert all(f["latest"] is None for f in links if f["code"] != "MOTEBANG")

    page = coordinator.get("/coordinator/network")
    assert page.status_code == 200
    row = page.text.split('id="facility-MOTEBANG"')[1].split("</tr>")[0]
    assert "612 ms" in row
    assert "6.7%" in row
    assert "180 / 240 kbit/s" in row
    assert "audio only" in row
    assert "<td>2</td>" in row
    assert "1 of" in page.text  # facilities tested

    for other in (nurse, login(users.make(Role.specialist))):
        assert other.get("/coordinator/network").status_code == 403
        assert other.get("/api/v1/network-tests/facilities").status_code == 403


def test_the_test_page_shows_the_last_result(login: LoginFn, users: Users) -> None:
    first = login(users.make(Role.clinician))
    colleague = login(users.make(Role.clinician))
    page = first.get("/network-test")
    assert page.status_code == 200
    assert 'id="precall-setup"' in page.text
    assert "No test in the last 30 days" in page.text
    assert f'<script type="module" src="{ASSETS.url("precall.js")}"></script>' in page.text

    first.post("/api/v1/network-tests", good_link(up_kbps=300.0))
    assert "low-bandwidth video" in first.get("/network-test").text
    shared = colleague.get("/network-test").text
    assert "Last result of your facility" in shared
    assert "low-bandwidth video" in shared

    coordinator = login(users.make(Role.coordinator))
    assert coordinator.get("/network-test").status_code == 403
    assert coordinator.post("/api/v1/network-tests", good_link()).status_code == 403


def test_the_echo_peer_keeps_only_the_requesters_candidates_and_mdns_names() -> None:
    """The echo peer must not be made to send UDP to hosts the offer names: only the
    request's own address and mDNS names (which answer on the server's link alone) stay."""
    import pytest

    from telemed.errors import ValidationFailed
    from telemed.precall.echo import only_candidates_at

    offer = "\r\n".join(
        [
            "v=0",
            "a=candidate:1 1 udp 2122260223 10.0.0.7 50000 typ host",
            "a=candidate:2 1 udp 2122260223 3f1c0d2e-9a4b-4c1e-8d7f-2b6a1c9e0f11.local 50001 typ host",
            "a=candidate:3 1 udp 1686052607 41.203.1.9 50002 typ srflx raddr 0.0.0.0 rport 0",
        ]
    )
    kept = only_candidates_at(offer, "41.203.1.9")
    assert "10.0.0.7" not in kept
    assert ".local 50001" in kept
    assert "41.203.1.9 50002" in kept
    with pytest.raises(ValidationFailed) as refused:
        only_candidates_at("v=0\r\na=candidate:1 1 udp 1 10.0.0.7 5 typ host", "41.203.1.9")
    assert refused.value.field == "sdp"


def test_a_request_from_this_machine_keeps_only_this_machines_addresses() -> None:
    """A browser on the server itself (requests from loopback) offers the machine's own
    interface addresses: kept, and still nothing else."""
    import ifaddr

    from telemed.precall.echo import only_candidates_at

    own = next(
        ip.ip
        for adapter in ifaddr.get_adapters()
        for ip in adapter.ips
        if isinstance(ip.ip, str) and not ip.ip.startswith("127.")
    )
    offer = "\r\n".join(
        [
            "v=0",
            f"a=candidate:1 1 udp 2122260223 {own} 50000 typ host",
            "a=candidate:2 1 udp 2122260223 198.51.100.77 50001 typ host",
        ]
    )
    kept = only_candidates_at(offer, "127.0.0.1")
    assert f"{own} 50000" in kept
    assert "198.51.100.77" not in kept
