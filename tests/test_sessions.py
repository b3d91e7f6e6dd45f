"""Live sessions: who gets a call ticket, and the session record the hub's events build."""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import Engine, create_engine
from sqlmodel import Session, col, select

from signaling.events import SessionEvent
from signaling.tokens import TokenVerifier
from signaling.turn import credentials_valid
from telemed.accounts.models import Role, User
from telemed.app import create_app
from telemed.audit.models import AuditAction, AuditEntry
from telemed.consults import service as consults
from telemed.consults.models import Consult, ConsultState, ParticipantRelation
from telemed.db import make_engine, utcnow
from telemed.sessions import service
from telemed.sessions.models import CallEventKind
from telemed.settings import Settings
from tests.conftest import LoginFn
from tests.helpers import ApiClient, Users, consult_payload


def involve(db: Session, consult_id: int, user: User, relation: ParticipantRelation) -> None:
    """Adds the participant in a transaction of its own that takes SQLite's write lock first
    (as the application's do): the application may be writing at that moment (offering the
    consult just created), and the test's deferred session would then read a snapshot it
    cannot turn into a write ("database is locked" at once, whatever the busy timeout)."""
    own = make_engine(db.get_bind().engine.url.render_as_string(hide_password=False))
    try:
        with Session(own) as session:
            consult = session.get(Consult, consult_id)
            assert consult is not None
            consults.add_participant(session, consult, user, relation)
            session.commit()
    finally:
        own.dispose()
    db.rollback()  # the test's session sees the participant from here on


def denied(db: Session, object_type: str) -> list[AuditEntry]:
    db.rollback()  # a fresh snapshot: the application wrote these in its own transactions
    return list(
        db.exec(
            select(AuditEntry)
            .where(AuditEntry.action == AuditAction.denied, AuditEntry.object_type == object_type)
            .order_by(col(AuditEntry.id))
        )
    )


@pytest.fixture
def call(login: LoginFn, users: Users, db: Session) -> tuple[ApiClient, ApiClient, int]:
    """A requested consult with a clinician and an assigned specialist."""
    nurse = login(users.make(Role.clinician))
    specialist = users.make(Role.specialist, timezone="Europe/London")
    consult_id = nurse.post("/api/v1/consults", consult_payload()).json()["id"]
    involve(db, consult_id, specialist, ParticipantRelation.assigned)
    return nurse, login(specialist), consult_id


def test_participants_get_a_single_use_ticket(
    call: tuple[ApiClient, ApiClient, int], settings: Settings
) -> None:
    nurse, specialist, consult_id = call
    verifier = TokenVerifier(service.signaling_secret(settings))
    for client, role in ((nurse, "clinician"), (specialist, "specialist")):
        response = client.post(f"/api/v1/consults/{consult_id}/call")
        assert response.status_code == 200, response.text
        ticket = response.json()
        assert ticket["room"] == f"consult-{consult_id}"
        assert ticket["participant"] == f"u-{client.user.id}"
        assert ticket["role"] == role
        assert ticket["capacity"] == 2
        assert ticket["ws_url"] == "ws://testserver/ws/signal"
        assert ticket["ice_servers"] == []  # no TURN or STUN configured by default
        assert ticket["thread_url"] == f"/consults/{consult_id}#thread"
        claims = verifier.verify(ticket["token"])
        assert (claims.room, claims.participant, claims.role, claims.capacity) == (
            ticket["room"],
            ticket["participant"],
            role,
            2,
        )
        expires = datetime.fromisoformat(ticket["expires_at"])
        assert timedelta(0) < expires - datetime.now(UTC) <= timedelta(seconds=121)
    # Two tickets are two tokens.
    first = nurse.post(f"/api/v1/consults/{consult_id}/call").json()["token"]
    assert nurse.post(f"/api/v1/consults/{consult_id}/call").json()["token"] != first


def test_a_ticket_needs_the_csrf_header(call: tuple[ApiClient, ApiClient, int]) -> None:
    nurse, _specialist, consult_id = call
    response = nurse.client.post(f"/api/v1/consults/{consult_id}/call")
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]


def test_only_participants_get_a_ticket_and_refusals_are_audited(
    call: tuple[ApiClient, ApiClient, int], login: LoginFn, users: Users, db: Session
) -> None:
    _nurse, _specialist, consult_id = call
    offered = users.make(Role.specialist)
    involve(db, consult_id, offered, ParticipantRelation.offered)
    # Offered: may read the consult, may not join its call.
    response = login(offered).post(f"/api/v1/consults/{consult_id}/call")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    coordinator = login(users.make(Role.coordinator))
    assert coordinator.post(f"/api/v1/consults/{consult_id}/call").status_code == 403
    refusals = denied(db, "call")
    assert [r.actor_id for r in refusals] == [offered.id, coordinator.user.id]
    assert all(r.consult_id == consult_id for r in refusals)
    # Not on the consult at all: it does not exist for them (404, audited as a consult read).
    stranger = login(users.make(Role.specialist))
    other_facility = login(users.make(Role.clinician, facility="QUTHING"))
    for client in (stranger, other_facility):
        response = client.post(f"/api/v1/consults/{consult_id}/call")
        assert response.status_code == 404
    assert [r.actor_id for r in denied(db, "consult")][-2:] == [
        stranger.user.id,
        other_facility.user.id,
    ]
    assert stranger.get(f"/api/v1/consults/{consult_id}/call").status_code == 405
    # The API document says so (it said 403 for everyone; issue 14).
    described = stranger.client.app.openapi()["paths"]["/api/v1/consults/{consult_id}/call"]
    text = described["post"]["description"]
    assert "gets 404" in text
    assert "get 403" in text
    # The page refuses the same way.
    assert login(offered).get(f"/consults/{consult_id}/call").status_code == 403


def test_an_observer_makes_a_room_of_three(
    call: tuple[ApiClient, ApiClient, int], login: LoginFn, users: Users, db: Session
) -> None:
    nurse, _specialist, consult_id = call
    interpreter = users.make(Role.specialist)
    involve(db, consult_id, interpreter, ParticipantRelation.observer)
    ticket = login(interpreter).post(f"/api/v1/consults/{consult_id}/call").json()
    assert (ticket["role"], ticket["capacity"]) == ("observer", 3)
    assert nurse.post(f"/api/v1/consults/{consult_id}/call").json()["capacity"] == 3


def test_draft_cancelled_and_closed_consults_have_no_call(
    login: LoginFn, users: Users, db: Session
) -> None:
    nurse = login(users.make(Role.clinician))
    draft = nurse.post("/api/v1/consults", consult_payload(submit=False)).json()["id"]
    response = nurse.post(f"/api/v1/consults/{draft}/call")
    assert response.status_code == 409
    assert "draft" in response.json()["error"]["message"]
    cancelled = nurse.post("/api/v1/consults", consult_payload()).json()["id"]
    nurse.post(f"/api/v1/consults/{cancelled}/cancel", {"reason": "patient recovered"})
    assert nurse.post(f"/api/v1/consults/{cancelled}/call").status_code == 409
    closed = nurse.post("/api/v1/consults", consult_payload()).json()["id"]
    db.rollback()
    consult = db.get(Consult, closed)
    assert consult is not None
    consult.state = "closed"  # type: ignore[assignment]  # no API closes a consult yet
    db.add(consult)
    db.commit()
    response = nurse.post(f"/api/v1/consults/{closed}/call")
    assert response.status_code == 409
    assert "closed" in response.json()["error"]["message"]
    page = nurse.get(f"/consults/{closed}")
    assert "Start / join call" not in page.text


def test_turn_credentials_and_turns_on_443(
    settings: Settings, engine: Engine, db: Session, users: Users
) -> None:
    configured = settings.model_copy(
        update={
            "turn_host": "turn.example.org",
            "turn_secret": "a-shared-secret-of-some-length",
            "stun_urls": ["stun:stun.example.org:3478"],
        }
    )
    nurse_user = users.make(Role.clinician)
    with TestClient(create_app(configured, engine)) as client:
        nurse = ApiClient(client, nurse_user)
        consult_id = nurse.post("/api/v1/consults", consult_payload()).json()["id"]
        servers = nurse.post(f"/api/v1/consults/{consult_id}/call").json()["ice_servers"]
    assert servers[0] == {
        "urls": ["stun:stun.example.org:3478"],
        "username": None,
        "credential": None,
    }
    turn = servers[1]
    assert turn["urls"] == [
        "turn:turn.example.org:3478?transport=udp",
        "turn:turn.example.org:3478?transport=tcp",
        "turns:turn.example.org:443?transport=tcp",
    ]
    assert turn["username"].endswith(f":u-{nurse_user.id}")
    assert credentials_valid("a-shared-secret-of-some-length", turn["username"], turn["credential"])


def _event(
    kind: str, room: str, participant: str | None, at: datetime, **detail: object
) -> SessionEvent:
    return SessionEvent(
        kind=kind,  # type: ignore[arg-type]
        room=room,
        participant=participant,
        role="clinician" if participant else None,
        session="s-1" if participant else None,
        at=at,
        node="test",
        detail=detail,
    )


def test_hub_events_become_the_call_record_on_the_consult(
    call: tuple[ApiClient, ApiClient, int], engine: Engine
) -> None:
    nurse, specialist, consult_id = call
    room = service.room_of(consult_id)
    n, s = (
        service.participant_of(nurse.user.id or 0),
        service.participant_of(specialist.user.id or 0),
    )
    t0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    for event in [
        _event("joined", room, n, t0, rejoined=False),
        _event("joined", room, s, t0 + timedelta(seconds=20), rejoined=False),
        _event("media", room, n, t0 + timedelta(seconds=60), mode="audio-only"),
        _event("reconnecting", room, s, t0 + timedelta(seconds=70)),
        _event("reconnected", room, s, t0 + timedelta(seconds=75)),
        _event("quality", room, s, t0 + timedelta(seconds=80), stats={"rtt_ms": 180, "loss": 0.02}),
        _event("left", room, s, t0 + timedelta(seconds=290), reason="left"),
        _event("left", room, n, t0 + timedelta(seconds=295), reason="gone"),
        _event("ended", room, None, t0 + timedelta(seconds=300)),
        _event("joined", "not-a-consult", n, t0),  # not ours: ignored
    ]:
        service.record_event(engine, event)
    sessions = specialist.get(f"/api/v1/consults/{consult_id}/sessions").json()
    assert len(sessions) == 1
    record = sessions[0]
    assert record["duration_s"] == 300
    assert datetime.fromisoformat(record["started_at"]) == t0
    assert [e["kind"] for e in record["events"]] == [
        "joined",
        "joined",
        "media",
        "reconnecting",
        "reconnected",
        "quality",
        "left",
        "left",
        "ended",
    ]
    assert record["events"][2]["detail"] == {"mode": "audio-only"}
    assert record["events"][0]["user_id"] == nurse.user.id
    page = nurse.get(f"/consults/{consult_id}").text
    assert "Start / join call" in page
    assert f"{nurse.user.full_name} switched to audio only" in page
    assert "quality: round trip 180 ms, loss 2.0%" in page
    assert "dropped out and did not come back" in page
    assert "5 min" in page
    # A later join opens a second call.
    service.record_event(engine, _event("joined", room, n, t0 + timedelta(hours=1)))
    sessions = nurse.get(f"/api/v1/consults/{consult_id}/sessions").json()
    assert [x["ended_at"] is None for x in sessions] == [False, True]


def test_session_events_are_append_only(
    call: tuple[ApiClient, ApiClient, int], engine: Engine, db: Session
) -> None:
    nurse, _specialist, consult_id = call
    at = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    row = service.record_event(
        engine, _event("joined", service.room_of(consult_id), f"u-{nurse.user.id}", at)
    )
    assert row is not None
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    with pytest.raises(DBAPIError), engine.begin() as connection:
        connection.execute(text("DELETE FROM call_session_events"))


# --- the call moves the consult -----------------------------------------------------------


def to_state(engine: Engine, consult_id: int, *states: ConsultState) -> None:
    """Walk the consult through ``states`` as scheduling would (system actor).

    On the application's engine: on SQLite its transactions take the write lock up front, so
    this waits for a running application's writers instead of failing to upgrade a read.
    """
    with Session(engine) as session:
        consult = session.get(Consult, consult_id)
        assert consult is not None
        for state in states:
            consults.transition(session, consult, state, actor=None, reason="test", at=utcnow())
        session.commit()


def schedule(engine: Engine, consult_id: int) -> None:
    to_state(engine, consult_id, ConsultState.accepted, ConsultState.scheduled)


def state_of(client: ApiClient, consult_id: int) -> str:
    return str(client.get(f"/api/v1/consults/{consult_id}").json()["state"])


def _presence(kind: str, room: str, participant: str, role: str, at: datetime) -> SessionEvent:
    detail = {"rejoined": False} if kind == "joined" else {"reason": "gone"}
    return SessionEvent(
        kind=kind,  # type: ignore[arg-type]
        room=room,
        participant=participant,
        role=role,
        session=f"s-{participant}",
        at=at,
        node="test",
        detail=detail,
    )


def test_both_sides_in_the_room_put_a_scheduled_consult_in_session_and_back(
    call: tuple[ApiClient, ApiClient, int], engine: Engine, users: Users
) -> None:
    nurse, specialist, consult_id = call
    schedule(engine, consult_id)
    room = service.room_of(consult_id)
    n, s = f"u-{nurse.user.id}", f"u-{specialist.user.id}"
    colleague = f"u-{users.make(Role.clinician).id}"  # same facility as the nurse
    t0 = datetime.now(UTC)
    # Two clinicians are not both sides.
    service.record_event(engine, _presence("joined", room, n, "clinician", t0))
    service.record_event(engine, _presence("joined", room, colleague, "clinician", t0))
    assert state_of(nurse, consult_id) == "scheduled"
    service.record_event(engine, _presence("left", room, colleague, "clinician", t0))
    service.record_event(
        engine, _presence("joined", room, s, "specialist", t0 + timedelta(seconds=10))
    )
    assert state_of(nurse, consult_id) == "in_session"
    # One side drops out: still in session until the room is empty.
    service.record_event(
        engine, _presence("left", room, n, "clinician", t0 + timedelta(seconds=60))
    )
    assert state_of(nurse, consult_id) == "in_session"
    service.record_event(
        engine, _presence("left", room, s, "specialist", t0 + timedelta(seconds=90))
    )
    service.record_event(engine, _event("ended", room, None, t0 + timedelta(seconds=91)))
    assert state_of(nurse, consult_id) == "scheduled"
    # Both moves are on the consult's timeline, made by the system at the call's times.
    events = nurse.get(f"/api/v1/consults/{consult_id}/events").json()
    moves = [(e["from_state"], e["to_state"], e["actor_id"], e["reason"]) for e in events[-2:]]
    assert moves == [
        ("scheduled", "in_session", None, "both sides joined the call"),
        ("in_session", "scheduled", None, "the call ended"),
    ]
    assert datetime.fromisoformat(events[-2]["at"]) == t0 + timedelta(seconds=10)
    page = specialist.get(f"/consults/{consult_id}").text
    assert "scheduled → in session" in page
    assert "in session → scheduled" in page
    # The line dropped before the specialist ended the consult: they end it from its page.
    assert "End consult (completed)" in page
    assert "End consult" not in nurse.get(f"/consults/{consult_id}").text
    assert end_consult(specialist, consult_id).status_code == 303
    assert state_of(nurse, consult_id) == "completed"


def test_an_accepted_consult_keeps_its_state_through_a_call(
    call: tuple[ApiClient, ApiClient, int], engine: Engine
) -> None:
    nurse, specialist, consult_id = call
    to_state(engine, consult_id, ConsultState.accepted)  # asynchronous: they may still talk
    room = service.room_of(consult_id)
    t0 = datetime.now(UTC)
    service.record_event(engine, _presence("joined", room, f"u-{nurse.user.id}", "clinician", t0))
    service.record_event(
        engine, _presence("joined", room, f"u-{specialist.user.id}", "specialist", t0)
    )
    assert state_of(nurse, consult_id) == "accepted"
    service.record_event(engine, _event("ended", room, None, t0 + timedelta(seconds=30)))
    assert state_of(nurse, consult_id) == "accepted"


def test_a_failed_move_is_logged_and_never_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = create_engine(f"sqlite:///{tmp_path / 'missing' / 'telemed.db'}")
    with caplog.at_level(logging.ERROR, logger="telemed.sessions.service"):
        moved = service.follow_call(unreachable, 1, 1, CallEventKind.joined, datetime.now(UTC))
    assert moved is None
    assert "consult 1 did not follow its call (joined event)" in caplog.text


def end_consult(client: ApiClient, consult_id: int) -> httpx.Response:
    """The call page's form (the page sends the CSRF token as a form field)."""
    return client.client.post(
        f"/consults/{consult_id}/call/end",
        data={"csrf_token": client.csrf},
        follow_redirects=False,
    )


def test_the_specialist_ends_the_consult_from_the_call_page(
    call: tuple[ApiClient, ApiClient, int],
    engine: Engine,
    login: LoginFn,
    users: Users,
) -> None:
    nurse, specialist, consult_id = call
    schedule(engine, consult_id)
    end = f"/consults/{consult_id}/call/end"
    assert "End consult" in specialist.get(f"/consults/{consult_id}/call").text
    assert "End consult" not in nurse.get(f"/consults/{consult_id}/call").text
    # Not in session yet: nothing to end.
    response = specialist.post(end)
    assert response.status_code == 409
    assert "no session was held" in response.text
    to_state(engine, consult_id, ConsultState.in_session)
    # Not the specialist, or not on the consult at all.
    assert nurse.post(end).status_code == 403
    stranger = login(users.make(Role.specialist))
    assert stranger.post(end).status_code == 404
    assert stranger.get(f"/consults/{consult_id}/call").status_code == 404
    assert state_of(nurse, consult_id) == "in_session"
    # Without the CSRF token: refused.
    assert specialist.client.post(end).status_code == 403
    response = end_consult(specialist, consult_id)
    assert response.status_code == 303
    assert response.headers["location"] == f"/consults/{consult_id}"
    assert state_of(nurse, consult_id) == "completed"
    last = nurse.get(f"/api/v1/consults/{consult_id}/events").json()[-1]
    assert (last["from_state"], last["to_state"], last["actor_id"]) == (
        "in_session",
        "completed",
        specialist.user.id,
    )


def test_the_end_of_the_call_leaves_a_completed_consult_completed(
    call: tuple[ApiClient, ApiClient, int], engine: Engine
) -> None:
    nurse, specialist, consult_id = call
    schedule(engine, consult_id)
    room = service.room_of(consult_id)
    t0 = datetime.now(UTC)
    service.record_event(engine, _presence("joined", room, f"u-{nurse.user.id}", "clinician", t0))
    service.record_event(
        engine, _presence("joined", room, f"u-{specialist.user.id}", "specialist", t0)
    )
    assert end_consult(specialist, consult_id).status_code == 303
    service.record_event(engine, _event("ended", room, None, t0 + timedelta(minutes=5)))
    assert state_of(nurse, consult_id) == "completed"


# --- photos shared in the call and the thread feed -----------------------------------------


def small_jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, "JPEG")
    return out.getvalue()


def share(client: ApiClient, consult_id: int, data: bytes, filename: str) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/consults/{consult_id}/call/photos",
        {"filename": filename, "length": len(data), "media_type": "image/jpeg"},
    )
    assert response.status_code == 201, response.text
    created = client.post(
        f"/api/v1/consults/{consult_id}/uploads",
        {
            "filename": filename,
            "length": len(data),
            "media_type": "image/jpeg",
            "message_id": response.json()["message_id"],
        },
    )
    assert created.status_code == 201, created.text
    done = client.client.patch(
        created.json()["url"],
        content=data,
        headers={
            "X-CSRF-Token": client.csrf,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert done.status_code == 200, done.text
    return {**response.json(), "attachment": done.json()["attachment"]}


def test_a_photo_shared_in_the_call_is_on_the_thread_and_the_call_record(
    call: tuple[ApiClient, ApiClient, int], engine: Engine, login: LoginFn, users: Users
) -> None:
    nurse, specialist, consult_id = call
    room = service.room_of(consult_id)
    t0 = datetime.now(UTC)
    service.record_event(engine, _presence("joined", room, f"u-{nurse.user.id}", "clinician", t0))
    before = nurse.get(f"/api/v1/consults/{consult_id}/call/feed").json()
    after_message = max([0, *(m["id"] for m in before["messages"])])
    shared = share(nurse, consult_id, small_jpeg(), "rash hands.jpg")
    attachment = shared["attachment"]
    assert shared["body"] == "shared a photo during the call: rash hands.jpg"
    assert attachment["message_id"] == shared["message_id"]
    assert attachment["preview_url"] is not None
    # The other side reads it from the thread when its data channel is down.
    feed = specialist.get(
        f"/api/v1/consults/{consult_id}/call/feed", {"after_message": after_message}
    ).json()
    assert [(m["id"], m["body"]) for m in feed["messages"]] == [
        (shared["message_id"], shared["body"])
    ]
    assert [(a["id"], a["kind"], a["uploader_name"]) for a in feed["attachments"]] == [
        (attachment["id"], "image", nurse.user.full_name)
    ]
    later = specialist.get(
        f"/api/v1/consults/{consult_id}/call/feed",
        {"after_message": shared["message_id"], "after_attachment": attachment["id"]},
    ).json()
    assert later == {"messages": [], "attachments": []}
    assert specialist.get(attachment["preview_url"]).status_code == 200
    # The call's record has the share, with a link to the photo on the consult page.
    events = nurse.get(f"/api/v1/consults/{consult_id}/sessions").json()[-1]["events"]
    assert events[-1]["kind"] == "photo"
    assert events[-1]["user_id"] == nurse.user.id
    assert events[-1]["detail"] == {
        "message_id": shared["message_id"],
        "filename": "rash hands.jpg",
    }
    page = specialist.get(f"/consults/{consult_id}").text
    assert f"{nurse.user.full_name} shared a photo: rash hands.jpg" in page
    assert f'href="#attachment-{attachment["id"]}"' in page
    # A share whose upload never finished says so.
    lost = {"filename": "lost.jpg", "length": 2000, "media_type": "image/jpeg"}
    assert nurse.post(f"/api/v1/consults/{consult_id}/call/photos", lost).status_code == 201
    page = specialist.get(f"/consults/{consult_id}").text
    assert "shared a photo: lost.jpg" in page
    assert "(no photo received)" in page
    # Nobody outside the consult reads the feed.
    stranger = login(users.make(Role.specialist))
    assert stranger.get(f"/api/v1/consults/{consult_id}/call/feed").status_code == 404


def test_only_photos_of_allowed_size_are_shared_and_nothing_is_left_behind(
    call: tuple[ApiClient, ApiClient, int], settings: Settings, login: LoginFn, users: Users
) -> None:
    nurse, _specialist, consult_id = call
    url = f"/api/v1/consults/{consult_id}/call/photos"
    response = nurse.post(
        url, {"filename": "labs.pdf", "length": 100, "media_type": "application/pdf"}
    )
    assert response.status_code == 422
    assert "not a photo" in response.json()["error"]["message"]
    too_big = settings.max_upload_bytes + 1
    response = nurse.post(url, {"filename": "a.jpg", "length": too_big, "media_type": "image/jpeg"})
    assert response.status_code == 422
    assert "the limit is" in response.json()["error"]["message"]
    response = nurse.post(url, {"filename": "a.jpg", "length": 0, "media_type": "image/jpeg"})
    assert response.status_code == 422
    messages = nurse.get(f"/api/v1/consults/{consult_id}/messages").json()
    assert not any("shared a photo" in m["body"] for m in messages)
    # Only the call's participants share photos in it.
    coordinator = login(users.make(Role.coordinator))
    jpeg = {"filename": "a.jpg", "length": 10, "media_type": "image/jpeg"}
    assert coordinator.post(url, jpeg).status_code == 403


def test_the_call_page_starts_in_the_profile_of_the_pre_call_test(
    call: tuple[ApiClient, ApiClient, int],
) -> None:
    nurse, specialist, consult_id = call
    page = nurse.get(f"/consults/{consult_id}/call").text
    assert 'data-profile=""' in page  # no test yet: video, as always
    assert 'value="normal" checked' in page
    # A slow clinic link: about 300 kbit/s, 3 % loss, 500 ms round trip.
    measured = {
        "rtt_ms": 500,
        "probes_sent": 100,
        "probes_received": 97,
        "up_kbps": 300,
        "down_kbps": 400,
    }
    assert nurse.post("/api/v1/network-tests", measured).status_code == 201
    profile = nurse.get("/api/v1/network-tests/recommendation").json()["profile"]
    assert profile == "low"
    page = nurse.get(f"/consults/{consult_id}/call").text
    assert 'data-profile="low"' in page
    assert 'value="low" checked' in page
    assert 'value="normal" checked' not in page
    assert "Chosen from your connection test" in page
    # The specialist's own link was not tested: the clinic's result is not theirs.
    assert 'value="normal" checked' in specialist.get(f"/consults/{consult_id}/call").text


def test_the_standalone_secret_is_derived_as_the_protocol_page_says() -> None:
    """docs/signaling-protocol.md §1: what to give ``python -m signaling`` (SIGNALING_SECRET)
    so that it accepts the application's tickets."""
    key = "an operator's TELEMED_SECRET_KEY, 40 chars"
    documented = hmac.new(key.encode(), b"telemed/signaling/v1", hashlib.sha256).hexdigest()
    assert service.signaling_secret(Settings(secret_key=key)) == documented
