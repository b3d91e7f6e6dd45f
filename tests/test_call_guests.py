"""A third participant in a consult's call (issue 14, item 4): a coordinator or the assigned
specialist invites an interpreter or a second specialist; the invitee gets a call ticket
within the call window only, until revoked; everything audited; the invitee sees the call
and nothing else of the consult."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, col, select

from signaling.tokens import TokenVerifier
from telemed.accounts.models import Role, User
from telemed.appointments.models import Appointment
from telemed.audit.models import AuditAction, AuditEntry
from telemed.consults.models import CallGuest, ParticipantRelation
from telemed.notifications.models import Notification
from telemed.sessions import service
from telemed.settings import Settings
from tests.conftest import LoginFn
from tests.directory_helpers import Specialists
from tests.helpers import ApiClient, ManualClock, Users, consult_payload
from tests.test_sessions import involve


def _setup(
    login: LoginFn, users: Users, db: Session
) -> tuple[ApiClient, ApiClient, ApiClient, int]:
    """A requested consult: its clinician, its assigned specialist, a coordinator."""
    nurse = login(users.make(Role.clinician))
    specialist = users.make(Role.specialist)
    consult_id = nurse.post("/api/v1/consults", consult_payload()).json()["id"]
    involve(db, consult_id, specialist, ParticipantRelation.assigned)
    return nurse, login(specialist), login(users.make(Role.coordinator)), consult_id


def audit_of(db: Session, object_type: str) -> list[AuditEntry]:
    db.rollback()
    return list(
        db.exec(
            select(AuditEntry)
            .where(AuditEntry.object_type == object_type)
            .order_by(col(AuditEntry.id))
        )
    )


def test_invite_ticket_and_revoke(
    login: LoginFn, users: Users, db: Session, settings: Settings
) -> None:
    nurse, specialist, coordinator, consult_id = _setup(login, users, db)
    interpreter = users.make(Role.clinician, facility="QUTHING")  # another clinic's nurse
    interpreter.language = "st"
    db.add(interpreter)
    db.commit()
    guest_api = login(interpreter)
    url = f"/api/v1/consults/{consult_id}/guests"
    # Not invited yet: the consult does not exist for them.
    assert guest_api.post(f"/api/v1/consults/{consult_id}/call").status_code == 404

    invited = specialist.post(url, {"user_id": interpreter.id, "role": "interpreter"})
    assert invited.status_code == 201, invited.text
    body = invited.json()
    assert (body["role"], body["signal_role"], body["active"]) == (
        "interpreter",
        "interpreter",
        True,
    )
    # A retry is the same invitation.
    again = specialist.post(url, {"user_id": interpreter.id, "role": "interpreter"})
    assert (again.status_code, again.json()["id"]) == (200, body["id"])
    # The invitee is told, in their language, with the link to the call.
    db.rollback()
    [notice] = db.exec(
        select(Notification).where(
            Notification.user_id == interpreter.id, Notification.kind == "call_invitation"
        )
    ).all()
    assert notice.link == f"/consults/{consult_id}/call"
    assert "Memo" in notice.subject  # Sesotho: "Memo ea ho letsetsa ..."

    # A ticket for the room of three, as interpreter; the others' tickets say 3 as well.
    ticket = guest_api.post(f"/api/v1/consults/{consult_id}/call")
    assert ticket.status_code == 200, ticket.text
    claims = TokenVerifier(service.signaling_secret(settings)).verify(ticket.json()["token"])
    assert (claims.role, claims.capacity) == ("interpreter", 3)
    assert nurse.post(f"/api/v1/consults/{consult_id}/call").json()["capacity"] == 3
    # The call page, and nothing else of the consult (least privilege).
    page = guest_api.get(f"/consults/{consult_id}/call")
    assert page.status_code == 200
    assert 'id="guest-summary"' in page.text
    assert 'id="photo-form"' not in page.text
    for path in (
        f"/api/v1/consults/{consult_id}",
        f"/api/v1/consults/{consult_id}/messages",
        f"/api/v1/consults/{consult_id}/call/feed",
        f"/consults/{consult_id}",
    ):
        assert guest_api.get(path).status_code == 404, path
    # Their home lists the call.
    assert f'href="/consults/{consult_id}/call"' in guest_api.get("/").text

    # Revoked by the coordinator: no more tickets; a repeat changes nothing.
    revoked = coordinator.post(f"{url}/{body['id']}/revoke")
    assert revoked.status_code == 200
    assert revoked.json()["active"] is False
    assert (
        coordinator.post(f"{url}/{body['id']}/revoke").json()["revoked_at"]
        == (revoked.json()["revoked_at"])
    )
    assert guest_api.post(f"/api/v1/consults/{consult_id}/call").status_code == 404
    assert nurse.post(f"/api/v1/consults/{consult_id}/call").json()["capacity"] == 2
    # The row stays (no delete), listed as withdrawn.
    listed = nurse.get(url).json()
    assert [(g["user_id"], g["active"]) for g in listed] == [(interpreter.id, False)]
    db.rollback()
    assert len(db.exec(select(CallGuest)).all()) == 1

    # Audited: the invitation, its revocation, the ticket.
    rows = audit_of(db, "call_guest")
    assert [(r.actor_id, r.action) for r in rows] == [
        (specialist.user.id, AuditAction.create),
        (coordinator.user.id, AuditAction.update),
    ]
    assert all(r.consult_id == consult_id for r in rows)
    tickets = audit_of(db, "call_token")
    assert any(r.actor_id == interpreter.id and r.detail == "role interpreter" for r in tickets)


def test_who_may_invite_and_whom(
    login: LoginFn, users: Users, db: Session, settings: Settings
) -> None:
    nurse, specialist, coordinator, consult_id = _setup(login, users, db)
    url = f"/api/v1/consults/{consult_id}/guests"
    other = users.make(Role.clinician, facility="QUTHING")
    # The requesting clinician does not invite; nor does a stranger (404: not their consult).
    refused = nurse.post(url, {"user_id": other.id, "role": "interpreter"})
    assert refused.status_code == 403
    stranger = login(users.make(Role.specialist))
    assert stranger.post(url, {"user_id": other.id, "role": "interpreter"}).status_code == 404
    # Bad input names the field.
    for payload, field in (
        ({"user_id": 0, "role": "interpreter"}, "user_id"),
        ({"user_id": other.id, "role": "chaperone"}, "role"),
        ({"user_id": 99999, "role": "interpreter"}, "user_id"),
        ({"user_id": nurse.user.id, "role": "interpreter"}, "user_id"),  # in the call already
        ({"user_id": users.make(Role.admin).id, "role": "interpreter"}, "user_id"),
        ({"user_id": other.id, "role": "second_specialist"}, "user_id"),  # not a specialist
    ):
        response = coordinator.post(url, payload)
        assert response.status_code == 422, (payload, response.text)
        assert field in response.text, (payload, response.text)
    # A second specialist must be verified.
    specialists = Specialists(db, settings, users)
    unverified = specialists.make(verified=False)
    response = coordinator.post(url, {"user_id": unverified.id, "role": "second_specialist"})
    assert response.status_code == 422
    verified = specialists.make()
    second = specialist.post(url, {"user_id": verified.id, "role": "second_specialist"})
    assert second.status_code == 201, second.text
    assert second.json()["signal_role"] == "observer"
    # Another role for someone invited already: revoke first.
    clash = coordinator.post(url, {"user_id": verified.id, "role": "interpreter"})
    assert clash.status_code == 409
    ticket = login(verified).post(f"/api/v1/consults/{consult_id}/call").json()
    assert (ticket["role"], ticket["capacity"]) == ("observer", 3)
    # An invitation of another consult is not found through this one.
    other_consult = nurse.post("/api/v1/consults", consult_payload()).json()["id"]
    revoke = coordinator.post(
        f"/api/v1/consults/{other_consult}/guests/{second.json()['id']}/revoke"
    )
    assert revoke.status_code == 404


def test_the_guest_ticket_is_for_the_call_window_only(
    login: LoginFn, users: Users, db: Session, clock: ManualClock
) -> None:
    _nurse, specialist, _coordinator, consult_id = _setup(login, users, db)
    interpreter: User = users.make(Role.specialist)
    guest_api = login(interpreter)
    url = f"/api/v1/consults/{consult_id}/guests"
    assert (
        specialist.post(url, {"user_id": interpreter.id, "role": "interpreter"}).status_code == 201
    )
    start = clock.set_midday() + timedelta(hours=3)
    db.add(
        Appointment(
            consult_id=consult_id,
            specialist_id=specialist.user.id,
            starts_at=start,
            ends_at=start + timedelta(minutes=30),
        )
    )
    db.commit()
    call = f"/api/v1/consults/{consult_id}/call"
    early = guest_api.post(call)
    assert early.status_code == 409
    assert "the call opens at" in early.json()["error"]["message"]
    clock.set(start - timedelta(minutes=5))
    assert guest_api.post(call).status_code == 200
    clock.set(start + timedelta(hours=2))
    assert guest_api.post(call).status_code == 409
