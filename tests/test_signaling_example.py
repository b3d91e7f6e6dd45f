"""The example client of the protocol page (``examples/signaling_client.py``) holds a call on
the application's own ``/ws/signal`` with the aiortc test peer, from a ticket of the real API.

The example joins first, so it is impolite toward the specialist and must offer when the
specialist arrives (``peer-joined``); the peer waits, as the polite side. Each side's chat
message must cross the call page's data channel (label ``chat``, negotiated, id 0).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from signaling.testing.peer import AiortcPeer
from telemed.accounts.models import Role
from telemed.consults.models import ParticipantRelation
from telemed.settings import Settings
from tests.helpers import Users, consult_payload
from tests.process_helpers import read_line
from tests.test_sessions import involve
from tests.test_sessions_ws import http_login, serve

EXAMPLE = Path(__file__).parent.parent / "examples" / "signaling_client.py"


@pytest.fixture
def app_url(settings: Settings, engine: Engine) -> Iterator[str]:
    yield from serve(settings, engine)


def tickets(url: str, users: Users, db: Session) -> tuple[dict[str, Any], dict[str, Any]]:
    """Call tickets of a new consult's clinician and its assigned specialist."""
    nurse, nurse_csrf = http_login(url, users.make(Role.clinician).email)
    specialist_user = users.make(Role.specialist)
    specialist, specialist_csrf = http_login(url, specialist_user.email)
    created = nurse.post(
        "/api/v1/consults", json=consult_payload(), headers={"X-CSRF-Token": nurse_csrf}
    )
    consult_id = created.json()["id"]
    involve(db, consult_id, specialist_user, ParticipantRelation.assigned)
    answers = [
        client.post(f"/api/v1/consults/{consult_id}/call", headers={"X-CSRF-Token": csrf})
        for client, csrf in ((nurse, nurse_csrf), (specialist, specialist_csrf))
    ]
    nurse.close()
    specialist.close()
    assert [a.status_code for a in answers] == [200, 200], answers[0].text
    return answers[0].json(), answers[1].json()


@pytest.mark.postgres_only  # nothing here depends on the database
def test_the_example_client_holds_a_call_on_the_in_app_path(
    app_url: str, users: Users, db: Session, tmp_path: Path
) -> None:
    nurse_ticket, specialist_ticket = tickets(app_url, users, db)
    ticket_file = tmp_path / "ticket.json"
    ticket_file.write_text(json.dumps(nurse_ticket))
    example = subprocess.Popen(
        [sys.executable, str(EXAMPLE), str(ticket_file), "--say", "Dumela", "--seconds", "60"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        asyncio.run(call_the_example(example, nurse_ticket, specialist_ticket))
        example.send_signal(signal.SIGINT)  # the example sends leave and exits
        assert example.wait(15) == 0
    finally:
        if example.poll() is None:
            example.kill()
            example.wait()


async def call_the_example(
    example: subprocess.Popen[str], nurse: dict[str, Any], specialist: dict[str, Any]
) -> None:
    """The specialist's side: joins second (polite), waits for the example's offer, gets its
    chat message over the data channel and sends one back."""

    async def event() -> dict[str, Any]:
        while True:  # the first frame of each track ("media") comes at its own moment
            line = await asyncio.to_thread(read_line, example, 30, "the example's next event")
            found = dict(json.loads(line))
            if found["event"] != "media":
                return found

    assert await event() == {"event": "joined", "participant": nurse["participant"]}
    peer = AiortcPeer(
        specialist["ws_url"], specialist["room"], specialist["token"], data_channel=True
    )
    try:
        welcome = await peer.join()
        assert [(p["participant"], p["polite"]) for p in welcome["peers"]] == [
            (nurse["participant"], True)
        ]
        them = specialist["participant"]
        assert await event() == {"event": "peer", "participant": them, "polite": False}
        await peer.wait_connected()
        [said] = await peer.wait_message(1)
        assert json.loads(said) == {"type": "chat", "name": nurse["name"], "text": "Dumela"}
        await peer.wait_frames("audio", 5)  # the example's silence arrives
        reply = {"type": "chat", "name": specialist["name"], "text": "Ke teng"}
        peer.send_message(json.dumps(reply))
        events = [await event(), await event()]  # in either order
        assert {"event": "connected", "participant": them} in events
        assert {"event": "message", "participant": them, "data": reply} in events
    finally:
        await peer.leave()
        await peer.close()
