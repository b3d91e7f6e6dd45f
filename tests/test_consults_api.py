"""Consult requests through the JSON API: creation, lifecycle, visibility, bad input."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from telemed.accounts.models import Role
from telemed.cases.models import Case
from telemed.consults import service
from telemed.consults.models import Consult, ConsultEvent, ConsultState, ParticipantRelation
from telemed.db import make_engine, utcnow
from telemed.errors import Conflict, InvalidTransition
from tests.conftest import LoginFn
from tests.helpers import Users, consult_payload


def _count(db: Session, model: type[Any]) -> int:
    db.expire_all()
    return int(db.exec(select(func.count()).select_from(model)).one())


def test_clinician_requests_a_consult_with_everything_the_specialist_needs(
    login: LoginFn, users: Users
) -> None:
    nurse = login(users.make(Role.clinician))
    payload = consult_payload(
        examination="Bilateral conjunctival injection.",
        current_treatment="Paracetamol.",
        vitals={
            "bp_systolic": 95,
            "bp_diastolic": 60,
            "pulse_bpm": 140,
            "respiratory_rate": 30,
            "temperature_c": 39.2,
            "spo2_percent": 97,
            "weight_kg": 14.5,
        },
    )
    response = nurse.post("/api/v1/consults", payload)
    assert response.status_code == 201, response.text
    consult = response.json()
    assert consult["state"] == "requested"
    assert consult["requested_at"] is not None
    assert consult["vitals"]["weight_kg"] == 14.5
    assert consult["case"]["patient_ref"] == "MOT-1"
    assert consult["case"]["facility_id"] == nurse.user.facility_id
    assert [(e["from_state"], e["to_state"]) for e in consult["events"]] == [
        (None, "draft"),
        ("draft", "requested"),
    ]
    assert all(e["actor_id"] == nurse.user.id for e in consult["events"])
    fetched = nurse.get(f"/api/v1/consults/{consult['id']}").json()
    assert fetched == consult


def test_a_known_patient_reference_reuses_the_case(
    login: LoginFn, users: Users, db: Session
) -> None:
    nurse = login(users.make(Role.clinician))
    first = nurse.post("/api/v1/consults", consult_payload()).json()
    second = nurse.post("/api/v1/consults", consult_payload(specialty="dermatology")).json()
    assert first["case_id"] == second["case_id"]
    by_id = nurse.post(
        "/api/v1/consults", {**consult_payload(case=None), "case_id": first["case_id"]}
    )
    assert by_id.status_code == 201
    assert by_id.json()["case_id"] == first["case_id"]
    assert _count(db, Case) == 1


def test_draft_edit_submit_and_cancel(login: LoginFn, users: Users) -> None:
    nurse = login(users.make(Role.clinician))
    draft = nurse.post("/api/v1/consults", consult_payload(submit=False)).json()
    assert draft["state"] == "draft"
    assert draft["requested_at"] is None
    edited = nurse.patch(
        f"/api/v1/consults/{draft['id']}", {"urgency": "emergency", "vitals": {"pulse_bpm": 170}}
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["urgency"] == "emergency"
    assert edited.json()["vitals"]["pulse_bpm"] == 170
    submitted = nurse.post(f"/api/v1/consults/{draft['id']}/submit")
    # An emergency that no verified specialist can take goes to the coordinators at once.
    assert submitted.json()["state"] == "escalated"
    too_late = nurse.patch(f"/api/v1/consults/{draft['id']}", {"urgency": "routine"})
    assert too_late.status_code == 409
    assert "only a draft" in too_late.json()["error"]["message"]
    no_reason = nurse.post(f"/api/v1/consults/{draft['id']}/cancel", {"reason": " "})
    assert no_reason.status_code == 422
    cancelled = nurse.post(
        f"/api/v1/consults/{draft['id']}/cancel", {"reason": "patient transferred"}
    )
    assert cancelled.json()["state"] == "cancelled"
    assert cancelled.json()["events"][-1]["reason"] == "patient transferred"


def test_illegal_transitions_are_refused_with_a_clear_error(login: LoginFn, users: Users) -> None:
    nurse = login(users.make(Role.clinician))
    consult = nurse.post("/api/v1/consults", consult_payload()).json()
    again = nurse.post(f"/api/v1/consults/{consult['id']}/submit")
    assert again.status_code == 409
    error = again.json()["error"]
    assert error["code"] == "invalid_transition"
    assert "'requested' cannot become 'requested'" in error["message"]
    nurse.post(f"/api/v1/consults/{consult['id']}/cancel", {"reason": "not needed"})
    after_cancel = nurse.post(f"/api/v1/consults/{consult['id']}/submit")
    assert after_cancel.status_code == 409
    assert "final state" in after_cancel.json()["error"]["message"]
    events = nurse.get(f"/api/v1/consults/{consult['id']}/events").json()
    assert [e["to_state"] for e in events] == ["draft", "requested", "cancelled"]


def test_transition_service_records_the_actor_and_refuses_a_lost_race(
    db: Session, users: Users, engine: Any
) -> None:
    from telemed.consults.schemas import ConsultCreate

    nurse = users.make(Role.clinician)
    specialist = users.make(Role.specialist)
    consult = service.create_consult(
        db, nurse, ConsultCreate.model_validate(consult_payload(consent=None)), utcnow()
    )
    service.add_participant(db, consult, specialist, ParticipantRelation.offered)
    service.transition(
        db, consult, ConsultState.offered, actor=None, reason="best match", at=utcnow()
    )
    db.commit()
    # A second reader holds the consult as it was before the first accept.
    url = engine.url.render_as_string(hide_password=False)
    with Session(make_engine(url, sqlite_immediate=False), expire_on_commit=False) as other:
        stale = other.get(Consult, consult.id)
        assert stale is not None
        other.commit()  # the object keeps what it read: state "offered"
        service.transition(
            db, consult, ConsultState.accepted, actor=specialist, reason="accepted", at=utcnow()
        )
        db.commit()
        with pytest.raises(Conflict, match="changed while you were working"):
            service.transition(other, stale, ConsultState.accepted, actor=specialist, at=utcnow())
        other.rollback()
    with pytest.raises(InvalidTransition):
        service.transition(db, consult, ConsultState.draft, actor=nurse, at=utcnow())
    events = db.exec(select(ConsultEvent).where(ConsultEvent.consult_id == consult.id)).all()
    assert [(e.to_state, e.actor_id, e.reason) for e in events][-2:] == [
        ("offered", None, "best match"),
        ("accepted", specialist.id, "accepted"),
    ]


def test_events_and_messages_are_append_only_in_the_database(
    login: LoginFn, users: Users, db: Session
) -> None:
    nurse = login(users.make(Role.clinician))
    consult = nurse.post("/api/v1/consults", consult_payload()).json()
    nurse.post(f"/api/v1/consults/{consult['id']}/messages", {"body": "hello"})
    for statement in (
        "UPDATE consult_events SET reason = 'forged'",
        "DELETE FROM consult_events",
        "UPDATE messages SET body = 'forged'",
        "DELETE FROM messages",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            db.execute(text(statement))
        db.rollback()


def test_visibility_by_role(login: LoginFn, users: Users, db: Session) -> None:
    motebang = login(users.make(Role.clinician, "MOTEBANG"))
    mokhotlong = login(users.make(Role.clinician, "MOKHOTLONG"))
    mine = motebang.post("/api/v1/consults", consult_payload()).json()
    theirs = mokhotlong.post("/api/v1/consults", consult_payload()).json()
    assert [c["id"] for c in motebang.get("/api/v1/consults").json()["items"]] == [mine["id"]]
    other_facility = motebang.get(f"/api/v1/consults/{theirs['id']}")
    assert other_facility.status_code == 404
    assert (
        motebang.post(f"/api/v1/consults/{theirs['id']}/messages", {"body": "hi"}).status_code
        == 404
    )
    assert (
        motebang.post(f"/api/v1/consults/{theirs['id']}/cancel", {"reason": "x"}).status_code == 404
    )

    specialist_user = users.make(Role.specialist)
    specialist = login(specialist_user)
    assert specialist.get("/api/v1/consults").json()["items"] == []
    assert specialist.get(f"/api/v1/consults/{mine['id']}").status_code == 404
    consult = db.get(Consult, mine["id"])
    assert consult is not None
    service.add_participant(db, consult, specialist_user, ParticipantRelation.offered)
    db.commit()
    assert [c["id"] for c in specialist.get("/api/v1/consults").json()["items"]] == [mine["id"]]
    assert specialist.get(f"/api/v1/consults/{mine['id']}").status_code == 200
    cancel = specialist.post(
        f"/api/v1/consults/{mine['id']}/cancel", {"reason": "not mine to cancel"}
    )
    assert cancel.status_code == 403

    coordinator = login(users.make(Role.coordinator))
    assert {c["id"] for c in coordinator.get("/api/v1/consults").json()["items"]} == {
        mine["id"],
        theirs["id"],
    }
    assert coordinator.post("/api/v1/consults", consult_payload()).status_code == 403

    admin = login(users.make(Role.admin))
    assert admin.get("/api/v1/consults").json()["items"] == []
    assert admin.get(f"/api/v1/consults/{mine['id']}").status_code == 404


def test_list_is_newest_first_and_paginated(login: LoginFn, users: Users) -> None:
    nurse = login(users.make(Role.clinician))
    ids = [
        nurse.post(
            "/api/v1/consults",
            consult_payload(case={"patient_ref": f"P{i}", "age_years": 30, "sex": "male"}),
        ).json()["id"]
        for i in range(5)
    ]
    first = nurse.get("/api/v1/consults", params={"page_size": 2}).json()
    second = nurse.get("/api/v1/consults", params={"page_size": 2, "page": 2}).json()
    last = nurse.get("/api/v1/consults", params={"page_size": 2, "page": 3}).json()
    assert [c["id"] for c in first["items"] + second["items"] + last["items"]] == ids[::-1]
    assert first["has_next"]
    assert second["has_next"]
    assert not last["has_next"]
    assert nurse.get("/api/v1/consults", params={"state": "requested"}).json()["items"]
    assert nurse.get("/api/v1/consults", params={"state": "draft"}).json()["items"] == []
    assert nurse.get("/api/v1/consults", params={"state": "sleeping"}).status_code == 422
    assert nurse.get("/api/v1/consults", params={"page": 0}).status_code == 422


BAD_INPUTS = [
    pytest.param(
        {"specialty": "astrology"},
        "specialty",
        "unknown specialty 'astrology'",
        id="unknown-specialty",
    ),
    pytest.param({"urgency": "whenever"}, "urgency", "Input should be", id="bad-enum"),
    pytest.param({"question": None}, "question", "valid string", id="wrong-type"),
    pytest.param(
        {"vitals": {"pulse_bpm": "fast"}},
        "vitals.pulse_bpm",
        "valid integer",
        id="wrong-vital-type",
    ),
    pytest.param(
        {"vitals": {"spo2_percent": 140}},
        "vitals.spo2_percent",
        "less than or equal to 100",
        id="impossible-spo2",
    ),
    pytest.param(
        {"vitals": {"bp_systolic": 80, "bp_diastolic": 120}}, "vitals", "systolic", id="bp-inverted"
    ),
    pytest.param(
        {"case": {"patient_ref": "X", "sex": "male"}},
        "case",
        "age in years or birth year",
        id="no-age",
    ),
    pytest.param(
        {"case": {"patient_ref": "Lerato Mokoena", "age_years": 4, "sex": "female"}},
        "case.patient_ref",
        "pattern",
        id="name-as-reference",
    ),
    pytest.param({"case_id": 1}, "body", "exactly one of case_id or case", id="two-cases"),
    pytest.param({"diagnosis": "x"}, "diagnosis", "Extra inputs", id="unknown-field"),
]


@pytest.mark.parametrize(("change", "field", "message"), BAD_INPUTS)
def test_bad_input_names_the_problem_and_writes_nothing(
    login: LoginFn, users: Users, db: Session, change: dict[str, Any], field: str, message: str
) -> None:
    nurse = login(users.make(Role.clinician))
    response = nurse.post("/api/v1/consults", consult_payload(**change))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert any(f["field"] == field and message in f["message"] for f in error["fields"]), error
    assert _count(db, Consult) == 0
    assert _count(db, Case) == 0


def test_malformed_json_and_missing_fields(login: LoginFn, users: Users, db: Session) -> None:
    nurse = login(users.make(Role.clinician))
    malformed = nurse.client.post(
        "/api/v1/consults",
        content=b'{"specialty": ',
        headers={"X-CSRF-Token": nurse.csrf, "content-type": "application/json"},
    )
    assert malformed.status_code == 422
    assert "malformed JSON" in malformed.json()["error"]["message"]
    missing = nurse.post(
        "/api/v1/consults", {"case": {"patient_ref": "A", "age_years": 1, "sex": "male"}}
    )
    assert missing.status_code == 422
    fields = {f["field"] for f in missing.json()["error"]["fields"]}
    assert {"specialty", "urgency", "mode", "language", "question"} <= fields
    assert _count(db, Consult) == 0


def test_another_facilitys_case_cannot_be_used(login: LoginFn, users: Users, db: Session) -> None:
    a = login(users.make(Role.clinician, "MOTEBANG"))
    b = login(users.make(Role.clinician, "QUTHING"))
    case_id = a.post("/api/v1/consults", consult_payload()).json()["case_id"]
    response = b.post("/api/v1/consults", {**consult_payload(case=None), "case_id": case_id})
    assert response.status_code == 404
    assert response.json()["error"]["fields"][0]["field"] == "case_id"
    assert _count(db, Consult) == 1


def test_health_and_readiness(client: Any) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok", "database": "ok"}


def test_openapi_documents_the_api(client: Any) -> None:
    schema = client.get("/openapi.json").json()
    for path in (
        "/api/v1/consults",
        "/api/v1/consults/{consult_id}/messages",
        "/api/v1/auth/login",
        "/api/v1/consults/{consult_id}/submit",
        "/api/v1/specialties",
    ):
        assert path in schema["paths"]
    assert "Request a consult" in schema["paths"]["/api/v1/consults"]["post"]["description"]
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "/static/swagger/swagger-ui-bundle.js" in docs.text
    assert client.get("/static/swagger/swagger-ui-bundle.js").status_code == 200
