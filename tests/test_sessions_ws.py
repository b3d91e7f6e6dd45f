"""Real WebSocket clients on the application's ``/ws/signal`` (uvicorn on a real port), with
tickets minted through the API; their session events land on the consult's record."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine
from sqlmodel import Session
from websockets.asyncio.client import ClientConnection, connect

from signaling.tokens import mint_token
from telemed.accounts.models import Role
from telemed.app import create_app
from telemed.consults.models import ParticipantRelation
from telemed.sessions import service
from telemed.settings import Settings
from tests.browser.conftest import free_port
from tests.helpers import PASSWORD, Users, consult_payload
from tests.test_sessions import involve


@pytest.fixture
def live_url(settings: Settings, engine: Engine) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, engine), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=15)


def http_login(url: str, email: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=url, timeout=10)
    response = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return client, response.json()["csrf_token"]


async def receive(ws: ClientConnection, type_: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == type_:
                return dict(frame)


async def hello(ticket: dict[str, Any]) -> tuple[ClientConnection, dict[str, Any]]:
    ws = await connect(ticket["ws_url"])
    await ws.send(
        json.dumps({"type": "hello", "rid": "1", "room": ticket["room"], "token": ticket["token"]})
    )
    return ws, await receive(ws, "welcome")


async def a_short_call(nurse_ticket: dict[str, Any], specialist_ticket: dict[str, Any]) -> None:
    nurse, welcome = await hello(nurse_ticket)
    assert welcome["peers"] == []
    specialist, welcome = await hello(specialist_ticket)
    assert [p["participant"] for p in welcome["peers"]] == [nurse_ticket["participant"]]
    assert welcome["peers"][0]["polite"] is True  # the later arrival is the polite one
    joined = await receive(nurse, "peer-joined")
    assert joined["peer"]["polite"] is False
    await specialist.send(json.dumps({"type": "media", "rid": "2", "mode": "audio-only"}))
    await receive(specialist, "ack")
    await receive(nurse, "peer-updated")
    stats = {"rtt_ms": 120, "loss": 0.01, "kbps_in": 48}
    await nurse.send(json.dumps({"type": "quality", "rid": "3", "stats": stats}))
    await receive(nurse, "ack")
    # A used token is refused.
    again = await connect(nurse_ticket["ws_url"])
    await again.send(
        json.dumps({"type": "hello", "room": nurse_ticket["room"], "token": nurse_ticket["token"]})
    )
    error = await receive(again, "error")
    assert error["code"] == "token_reused"
    await again.close()
    for ws in (specialist, nurse):
        await ws.send(json.dumps({"type": "leave", "rid": "9"}))
        await receive(ws, "ack")
        await ws.close()


def test_session_events_from_real_clients_land_on_the_consult(
    live_url: str, users: Users, db: Session
) -> None:
    nurse_user = users.make(Role.clinician)
    specialist_user = users.make(Role.specialist)
    nurse, nurse_csrf = http_login(live_url, nurse_user.email)
    specialist, specialist_csrf = http_login(live_url, specialist_user.email)
    created = nurse.post(
        "/api/v1/consults", json=consult_payload(), headers={"X-CSRF-Token": nurse_csrf}
    )
    consult_id = created.json()["id"]
    involve(db, consult_id, specialist_user, ParticipantRelation.assigned)

    def ticket(client: httpx.Client, csrf: str) -> dict[str, Any]:
        response = client.post(
            f"/api/v1/consults/{consult_id}/call", headers={"X-CSRF-Token": csrf}
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    nurse_ticket, specialist_ticket = ticket(nurse, nurse_csrf), ticket(specialist, specialist_csrf)
    assert nurse_ticket["ws_url"] == f"{live_url.replace('http', 'ws')}/ws/signal"
    asyncio.run(a_short_call(nurse_ticket, specialist_ticket))

    deadline = time.monotonic() + 20
    while True:  # events are written asynchronously, off the event loop
        sessions = nurse.get(f"/api/v1/consults/{consult_id}/sessions").json()
        kinds = [e["kind"] for s in sessions for e in s["events"]]
        if "ended" in kinds or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(sessions) == 1
    assert kinds == ["joined", "joined", "media", "quality", "left", "left", "ended"]
    events = sessions[0]["events"]
    assert [e["user_id"] for e in events[:2]] == [nurse_user.id, specialist_user.id]
    assert events[2]["detail"] == {"mode": "audio-only"}
    assert events[3]["detail"]["stats"]["rtt_ms"] == 120
    assert sessions[0]["ended_at"] is not None
    assert sessions[0]["duration_s"] is not None
    page = specialist.get(f"/consults/{consult_id}").text
    assert f"{specialist_user.full_name} switched to audio only" in page
    assert "call ended" in page
    nurse.close()
    specialist.close()


def test_telemed_signal_runs_the_hub_standalone(tmp_path: Path) -> None:
    secret = "a-standalone-secret-" + "x" * 20
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMED_")}
    env.update(TELEMED_DATA_DIR=str(tmp_path), TELEMED_SECRET_KEY=secret)
    process = subprocess.Popen(
        [sys.executable, "-m", "telemed", "signal", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        listening = json.loads(process.stdout.readline())
        assert listening["event"] == "listening"
        # A ticket minted by the application (same secret) admits to the standalone hub.
        token = mint_token(
            service.signaling_secret(Settings(secret_key=secret, data_dir=tmp_path)),
            room="consult-7",
            participant="u-3",
            name="Sr L. Ntho",
            role="clinician",
        )

        async def join_and_leave() -> None:
            ticket = {"ws_url": f"ws://127.0.0.1:{listening['port']}/", "room": "consult-7"}
            ws, welcome = await hello({**ticket, "token": token})
            assert welcome["participant"]["participant"] == "u-3"
            await ws.send(json.dumps({"type": "leave", "rid": "2"}))
            await receive(ws, "ack")
            await ws.close()

        asyncio.run(join_and_leave())
        kinds = []
        while "ended" not in kinds:  # one JSON line per session event
            record = json.loads(process.stdout.readline())
            assert (record["event"], record["room"]) == ("session", "consult-7")
            kinds.append(record["kind"])
        assert kinds == ["joined", "left", "ended"]
    finally:
        process.terminate()
        process.wait(timeout=10)
