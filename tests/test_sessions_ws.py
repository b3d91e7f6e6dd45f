"""Real WebSocket clients on the application's ``/ws/signal`` (uvicorn on a real port), with
tickets minted through the API; their session events land on the consult's record."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine
from sqlmodel import Session
from websockets.asyncio.client import ClientConnection, connect

from signaling.tokens import mint_token
from telemed.accounts.models import Role, User
from telemed.app import create_app
from telemed.consults.models import ParticipantRelation
from telemed.sessions import service
from telemed.settings import Settings
from tests.browser.conftest import free_port
from tests.helpers import PASSWORD, Users, consult_payload, env_without_settings
from tests.process_helpers import read_line
from tests.test_sessions import involve, schedule


@pytest.fixture
def live_url(settings: Settings, engine: Engine) -> Iterator[str]:
    yield from serve(settings, engine)


@pytest.fixture
def quick_url(settings: Settings, engine: Engine) -> Iterator[str]:
    """The application with a grace period of one second for participants who drop out."""
    yield from serve(settings.model_copy(update={"signal_grace_seconds": 1.0}), engine)


def serve(settings: Settings, engine: Engine) -> Iterator[str]:
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
    env = env_without_settings()
    env.update(TELEMED_DATA_DIR=str(tmp_path), TELEMED_SECRET_KEY=secret)
    process = subprocess.Popen(
        [sys.executable, "-m", "telemed", "signal", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        listening = json.loads(read_line(process, 30, "the hub's 'listening' line"))
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
            record = json.loads(read_line(process, 20, f"a session event after {kinds}"))
            assert (record["event"], record["room"]) == ("session", "consult-7")
            kinds.append(record["kind"])
        assert kinds == ["joined", "left", "ended"]
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- the call moves the consult: scheduled -> in_session -> scheduled or completed ----------


def wait_for(what: str, check: Callable[[], bool]) -> None:
    """Session events reach the database asynchronously, off the hub's event loop."""
    deadline = time.monotonic() + 20
    while not check():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.1)


def state_of(client: httpx.Client, consult_id: int) -> str:
    return str(client.get(f"/api/v1/consults/{consult_id}").json()["state"])


def scheduled_call(
    url: str, db: Session, engine: Engine, nurse_user: User, specialist_user: User
) -> tuple[int, list[tuple[httpx.Client, str]]]:
    """A scheduled consult and the nurse's and specialist's logged-in clients."""
    nurse, nurse_csrf = http_login(url, nurse_user.email)
    specialist, specialist_csrf = http_login(url, specialist_user.email)
    created = nurse.post(
        "/api/v1/consults", json=consult_payload(), headers={"X-CSRF-Token": nurse_csrf}
    )
    consult_id = int(created.json()["id"])
    involve(db, consult_id, specialist_user, ParticipantRelation.assigned)
    schedule(engine, consult_id)
    return consult_id, [(nurse, nurse_csrf), (specialist, specialist_csrf)]


def ticket_for(client: httpx.Client, csrf: str, consult_id: int) -> dict[str, Any]:
    response = client.post(f"/api/v1/consults/{consult_id}/call", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_both_sides_joined_make_it_in_session_and_the_end_of_the_call_scheduled(
    quick_url: str, users: Users, db: Session, engine: Engine
) -> None:
    consult_id, people = scheduled_call(
        quick_url, db, engine, users.make(Role.clinician), users.make(Role.specialist)
    )
    (nurse, nurse_csrf), (specialist, specialist_csrf) = people
    nurse_ticket = ticket_for(nurse, nurse_csrf, consult_id)
    specialist_ticket = ticket_for(specialist, specialist_csrf, consult_id)

    async def call() -> None:
        nurse_ws, _ = await hello(nurse_ticket)
        await asyncio.to_thread(wait_for, "the first join", lambda: len(sessions()) == 1)
        assert state_of(nurse, consult_id) == "scheduled"  # one side is not a session
        specialist_ws, _ = await hello(specialist_ticket)
        await receive(nurse_ws, "peer-joined")
        await asyncio.to_thread(
            wait_for, "in_session", lambda: state_of(nurse, consult_id) == "in_session"
        )
        # Both drop out without a word: the call ends once their grace period is over.
        await nurse_ws.close()
        await specialist_ws.close()

    def sessions() -> list[dict[str, Any]]:
        return list(nurse.get(f"/api/v1/consults/{consult_id}/sessions").json())

    asyncio.run(call())
    wait_for("scheduled again", lambda: state_of(nurse, consult_id) == "scheduled")
    record = sessions()[-1]
    kinds = [e["kind"] for e in record["events"]]
    assert kinds[:2] == ["joined", "joined"]
    assert kinds[-3:] == ["left", "left", "ended"]
    assert {e["detail"].get("reason") for e in record["events"] if e["kind"] == "left"} == {"gone"}
    moves = [
        (e["from_state"], e["to_state"], e["actor_id"])
        for e in nurse.get(f"/api/v1/consults/{consult_id}/events").json()
    ][-2:]
    assert moves == [("scheduled", "in_session", None), ("in_session", "scheduled", None)]
    nurse.close()
    specialist.close()


def test_end_consult_on_the_call_page_completes_it_and_the_call_end_keeps_it(
    live_url: str, users: Users, db: Session, engine: Engine
) -> None:
    specialist_user = users.make(Role.specialist)
    consult_id, people = scheduled_call(
        live_url, db, engine, users.make(Role.clinician), specialist_user
    )
    (nurse, nurse_csrf), (specialist, specialist_csrf) = people
    stranger, stranger_csrf = http_login(live_url, users.make(Role.specialist).email)
    end = f"/consults/{consult_id}/call/end"

    def end_consult(client: httpx.Client, csrf: str) -> httpx.Response:
        return client.post(end, data={"csrf_token": csrf}, follow_redirects=False)

    nurse_ticket = ticket_for(nurse, nurse_csrf, consult_id)
    specialist_ticket = ticket_for(specialist, specialist_csrf, consult_id)

    async def call() -> None:
        nurse_ws, _ = await hello(nurse_ticket)
        specialist_ws, _ = await hello(specialist_ticket)
        await asyncio.to_thread(
            wait_for, "in_session", lambda: state_of(nurse, consult_id) == "in_session"
        )
        assert end_consult(stranger, stranger_csrf).status_code == 404  # not on the consult
        assert end_consult(nurse, nurse_csrf).status_code == 403  # not the specialist
        response = end_consult(specialist, specialist_csrf)
        assert response.status_code == 303
        assert state_of(nurse, consult_id) == "completed"
        for ws in (specialist_ws, nurse_ws):
            await ws.send(json.dumps({"type": "leave", "rid": "9"}))
            await receive(ws, "ack")
            await ws.close()

    asyncio.run(call())
    wait_for(
        "the end of the call",
        lambda: (
            nurse.get(f"/api/v1/consults/{consult_id}/sessions").json()[-1]["ended_at"] is not None
        ),
    )
    assert state_of(nurse, consult_id) == "completed"
    events = nurse.get(f"/api/v1/consults/{consult_id}/events").json()
    assert [(e["to_state"], e["actor_id"]) for e in events[-2:]] == [
        ("in_session", None),
        ("completed", specialist_user.id),
    ]
    for client in (nurse, specialist, stranger):
        client.close()
