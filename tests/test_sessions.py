"""Live sessions: who gets a call ticket, and the session record the hub's events build."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from signaling.events import SessionEvent
from signaling.tokens import TokenVerifier
from signaling.turn import credentials_valid
from telemed.accounts.models import Role, User
from telemed.app import create_app
from telemed.audit.models import AuditAction, AuditEntry
from telemed.consults import service as consults
from telemed.consults.models import Consult, ParticipantRelation
from telemed.sessions import service
from telemed.settings import Settings
from tests.conftest import LoginFn
from tests.helpers import ApiClient, Users, consult_payload


def involve(db: Session, consult_id: int, user: User, relation: ParticipantRelation) -> None:
    consult = db.get(Consult, consult_id)
    assert consult is not None
    consults.add_participant(db, consult, user, relation)
    db.commit()


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
