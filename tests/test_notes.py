"""Consult notes: SOAP, ICD-10, signing locks, amendments as versions, outcomes, follow-ups."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlmodel import Session

from telemed.accounts.models import Role, User
from telemed.consults import service as consults
from telemed.consults.models import Consult, ParticipantRelation
from telemed.db import utcnow
from telemed.notes import icd10
from tests.conftest import LoginFn
from tests.helpers import ApiClient, Users, consult_payload

NOTE = {
    "subjective": "Fever for 6 days, irritable.",
    "objective": "Conjunctival injection, strawberry tongue, peeling fingers.",
    "assessment": "Complete Kawasaki disease.",
    "plan": "IV immunoglobulin 2 g/kg and aspirin; echocardiogram within 10 days.",
    "diagnoses": ["m303"],
    # A date ahead of any run (a fixed date would fall in the past one day and reorder
    # the case timeline, where a follow-up due sorts by its date).
    "follow_up_on": (utcnow().date() + timedelta(days=14)).isoformat(),
    "follow_up_instruction": "Repeat FBC and platelets; check for coronary symptoms.",
}


def assign(db: Session, consult_id: int, specialist: User) -> None:
    consult = db.get(Consult, consult_id)
    assert consult is not None
    consults.add_participant(db, consult, specialist, ParticipantRelation.assigned)
    db.commit()


@pytest.fixture
def setting(login: LoginFn, users: Users, db: Session) -> tuple[ApiClient, ApiClient, int]:
    nurse = login(users.make(Role.clinician))
    specialist_user = users.make(Role.specialist, timezone="Europe/London")
    consult_id = nurse.post("/api/v1/consults", consult_payload()).json()["id"]
    assign(db, consult_id, specialist_user)
    return nurse, login(specialist_user), consult_id


def test_icd10_codes_are_validated_and_searchable(login: LoginFn, users: Users) -> None:
    assert icd10.lookup(" m303 ").code == "M30.3"
    assert "Kawasaki" in icd10.lookup("M30.3").title
    api = login(users.make(Role.specialist))
    found = api.get("/api/v1/icd10", params={"q": "kawasaki"}).json()
    assert {"code": "M30.3", "title": "Mucocutaneous lymph node syndrome [Kawasaki]"} in found
    assert api.get("/api/v1/icd10", params={"q": "J45"}).json()[0]["code"] == "J45"
    assert api.get("/api/v1/icd10", params={"q": ""}).status_code == 422


def test_write_sign_and_amend_a_note(setting: tuple[ApiClient, ApiClient, int]) -> None:
    nurse, specialist, consult_id = setting
    base = f"/api/v1/consults/{consult_id}/notes"
    draft = specialist.post(base, NOTE)
    assert draft.status_code == 201, draft.text
    note = draft.json()
    assert note["status"] == "draft"
    assert note["diagnoses"] == [
        {"code": "M30.3", "title": "Mucocutaneous lymph node syndrome [Kawasaki]"}
    ]
    assert nurse.get(base).json() == []  # a draft is its author's alone
    edited = specialist.patch(f"{base}/{note['id']}", {**NOTE, "plan": NOTE["plan"] + " Admit."})
    assert edited.status_code == 200
    signed = specialist.post(f"{base}/{note['id']}/sign").json()
    assert signed["status"] == "signed"
    assert signed["signed_at"] is not None
    locked = specialist.patch(f"{base}/{note['id']}", NOTE)
    assert locked.status_code == 409
    assert "amend it instead" in locked.json()["error"]["message"]

    amended = specialist.post(
        f"{base}/{note['id']}/amendments",
        {**NOTE, "diagnoses": ["M30.3", "D69.6"], "reason": "platelet count came back low"},
    )
    assert amended.status_code == 201, amended.text
    version2 = amended.json()
    assert (version2["version"], version2["amends_id"], version2["series_id"]) == (
        2,
        note["id"],
        note["series_id"],
    )
    assert version2["amendment_reason"] == "platelet count came back low"
    specialist.post(f"{base}/{version2['id']}/sign")
    versions = nurse.get(base).json()
    assert [(v["version"], v["status"]) for v in versions] == [(1, "signed"), (2, "signed")]
    assert versions[0]["plan"].endswith("Admit.")  # version 1 stays readable as signed
    assert [d["code"] for d in versions[1]["diagnoses"]] == ["M30.3", "D69.6"]
    again = specialist.post(
        f"{base}/{note['id']}/amendments", {**NOTE, "reason": "amend the old one"}
    )
    assert again.status_code == 409
    assert "amend the latest version" in again.json()["error"]["message"]


def test_signing_needs_assessment_plan_and_a_diagnosis(
    setting: tuple[ApiClient, ApiClient, int],
) -> None:
    _nurse, specialist, consult_id = setting
    base = f"/api/v1/consults/{consult_id}/notes"
    note = specialist.post(base, {"subjective": "seen"}).json()
    refused = specialist.post(f"{base}/{note['id']}/sign")
    assert refused.status_code == 422
    assert "assessment and plan" in refused.json()["error"]["message"]
    specialist.patch(f"{base}/{note['id']}", {"assessment": "x", "plan": "y"})
    no_dx = specialist.post(f"{base}/{note['id']}/sign")
    assert no_dx.status_code == 422
    assert no_dx.json()["error"]["fields"][0]["field"] == "diagnoses"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"diagnoses": ["X99.99"]}, "diagnoses", "unknown ICD-10 code 'X99.99'"),
        ({"diagnoses": ["M30.3", "m303"]}, "diagnoses", "listed twice"),
        ({"follow_up_on": "next tuesday"}, "follow_up_on", "valid date"),
        ({"plan": 5}, "plan", "valid string"),
        ({"signature": "me"}, "signature", "Extra inputs"),
    ],
)
def test_bad_note_input_is_refused_and_nothing_is_stored(
    setting: tuple[ApiClient, ApiClient, int], change: dict[str, Any], field: str, message: str
) -> None:
    _nurse, specialist, consult_id = setting
    response = specialist.post(f"/api/v1/consults/{consult_id}/notes", {**NOTE, **change})
    assert response.status_code == 422
    assert any(
        f["field"] == field and message in f["message"] for f in response.json()["error"]["fields"]
    )
    assert specialist.get(f"/api/v1/consults/{consult_id}/notes").json() == []


def test_who_may_write_and_amend(
    setting: tuple[ApiClient, ApiClient, int], login: LoginFn, users: Users, db: Session
) -> None:
    nurse, specialist, consult_id = setting
    base = f"/api/v1/consults/{consult_id}/notes"
    offered_only = users.make(Role.specialist)
    consult = db.get(Consult, consult_id)
    assert consult is not None
    consults.add_participant(db, consult, offered_only, ParticipantRelation.offered)
    db.commit()
    assert login(offered_only).post(base, NOTE).status_code == 403
    clinician_note = nurse.post(base, {"subjective": "Mother reports improvement."})
    assert clinician_note.status_code == 201
    assert clinician_note.json()["author_role"] == "clinician"
    note = specialist.post(base, NOTE).json()
    assert nurse.post(f"{base}/{note['id']}/sign").status_code == 403
    assert nurse.patch(f"{base}/{note['id']}", NOTE).status_code == 403
    assert login(users.make(Role.coordinator)).post(base, NOTE).status_code == 403


def test_a_signed_note_is_locked_in_the_database(
    setting: tuple[ApiClient, ApiClient, int], db: Session
) -> None:
    _nurse, specialist, consult_id = setting
    base = f"/api/v1/consults/{consult_id}/notes"
    note = specialist.post(base, NOTE).json()
    specialist.post(f"{base}/{note['id']}/sign")
    for statement in (
        f"UPDATE consult_notes SET plan = 'forged' WHERE id = {note['id']}",
        f"DELETE FROM consult_notes WHERE id = {note['id']}",
        f"DELETE FROM note_diagnoses WHERE note_id = {note['id']}",
        f"INSERT INTO note_diagnoses (note_id, position, code, title) VALUES ({note['id']}, 5, 'A00', 'x')",
    ):
        with pytest.raises(Exception, match=r"locked|never deleted"):
            db.execute(text(statement))
        db.rollback()


def test_outcomes_are_recorded_by_the_clinician_and_kept(
    setting: tuple[ApiClient, ApiClient, int],
) -> None:
    nurse, specialist, consult_id = setting
    url = f"/api/v1/consults/{consult_id}/outcomes"
    assert specialist.post(url, {"outcome": "treated_locally"}).status_code == 403
    assert nurse.post(url, {"outcome": "cured"}).status_code == 422
    nurse.post(url, {"outcome": "referred", "detail": "to QMMH"})
    nurse.post(url, {"outcome": "referral_avoided", "detail": "treated after all"})
    assert [o["outcome"] for o in specialist.get(url).json()] == ["referred", "referral_avoided"]


def test_follow_ups_due_and_overdue_on_the_clinician_home(
    setting: tuple[ApiClient, ApiClient, int], login: LoginFn, users: Users
) -> None:
    nurse, specialist, consult_id = setting
    base = f"/api/v1/consults/{consult_id}/notes"
    today = datetime.now(ZoneInfo("Africa/Maseru")).date()  # the clinician's today
    note = specialist.post(
        base, {**NOTE, "follow_up_on": (today - timedelta(days=1)).isoformat()}
    ).json()
    assert nurse.get("/api/v1/follow-ups").json() == []  # drafts give no follow-up
    specialist.post(f"{base}/{note['id']}/sign")
    due = nurse.get("/api/v1/follow-ups").json()
    assert len(due) == 1
    assert due[0]["consult_id"] == consult_id
    assert due[0]["overdue"] is True
    home = nurse.client.get("/")
    assert "Follow-ups" in home.text
    assert "overdue" in home.text
    other_facility = login(users.make(Role.clinician, "PARAY"))
    assert other_facility.get("/api/v1/follow-ups").json() == []
    # Another role recorded with the facility does not see its patients (found by the
    # authorization matrix).
    for role in (Role.coordinator, Role.specialist, Role.admin):
        assert login(users.make(role, "MOTEBANG")).get("/api/v1/follow-ups").json() == []
    later = specialist.post(
        f"{base}/{note['id']}/amendments",
        {
            **NOTE,
            "follow_up_on": (today + timedelta(days=30)).isoformat(),
            "reason": "later review",
        },
    ).json()
    specialist.post(f"{base}/{later['id']}/sign")
    assert nurse.get("/api/v1/follow-ups").json() == []  # the amendment moved it a month on
    specialist.post(
        f"{base}/{later['id']}/amendments",
        {**NOTE, "follow_up_on": today.isoformat(), "reason": "sooner after all"},
    )
    specialist.post(f"{base}/{later['id'] + 1}/sign")
    assert nurse.get("/api/v1/follow-ups").json()[0]["overdue"] is False
    nurse.post(f"/api/v1/consults/{consult_id}/outcomes", {"outcome": "treated_locally"})
    assert nurse.get("/api/v1/follow-ups").json() == []  # the outcome closes the follow-up


def test_case_timeline_shows_versions_and_their_differences(
    setting: tuple[ApiClient, ApiClient, int],
) -> None:
    nurse, specialist, consult_id = setting
    base = f"/api/v1/consults/{consult_id}/notes"
    note = specialist.post(base, NOTE).json()
    specialist.post(f"{base}/{note['id']}/sign")
    amended = specialist.post(
        f"{base}/{note['id']}/amendments",
        {**NOTE, "plan": "IV immunoglobulin <b>now</b>.", "reason": "dose changed"},
    ).json()
    specialist.post(f"{base}/{amended['id']}/sign")
    nurse.post(f"/api/v1/consults/{consult_id}/messages", {"body": "IVIG started"})
    nurse.post(f"/api/v1/consults/{consult_id}/outcomes", {"outcome": "treated_locally"})
    case_id = nurse.get(f"/api/v1/consults/{consult_id}").json()["case_id"]
    page = nurse.client.get(f"/cases/{case_id}/timeline")
    assert page.status_code == 200
    html = page.text
    order = [
        html.index(s)
        for s in (
            "draft → requested",
            "Note version 1",
            "Note version 2",
            "IVIG started",
            "Outcome: Treated locally",
            "Follow-up due",
        )
    ]
    assert order == sorted(order)
    assert "IV immunoglobulin <del>2 g/kg and aspirin;" in html
    assert "<ins>&lt;b&gt;now&lt;/b&gt;.</ins>" in html
    assert "dose changed" in html
    assert specialist.client.get(f"/cases/{case_id}/timeline").status_code == 200
    assert nurse.client.get("/cases/9999/timeline").status_code == 404


def test_refused_note_writes_are_audited(
    setting: tuple[ApiClient, ApiClient, int], db: Session
) -> None:
    from sqlmodel import col, select

    from telemed.audit.models import AuditEntry

    nurse, specialist, consult_id = setting
    base = f"/api/v1/consults/{consult_id}/notes"
    assert specialist.post(base, {**NOTE, "diagnoses": ["X99.99"]}).status_code == 422
    note = specialist.post(base, NOTE).json()
    specialist.post(f"{base}/{note['id']}/sign")
    assert specialist.patch(f"{base}/{note['id']}", NOTE).status_code == 409
    assert (
        nurse.post(f"{base}/{note['id']}/amendments", {**NOTE, "reason": "not mine"}).status_code
        == 403
    )
    db.expire_all()
    denied = db.exec(
        select(AuditEntry).where(AuditEntry.action == "denied").order_by(col(AuditEntry.id))
    ).all()
    assert [(e.actor_id, e.object_id, e.detail.split(":")[0]) for e in denied] == [
        (specialist.user.id, "new", "validation_failed"),
        (specialist.user.id, str(note["id"]), "conflict"),
        (nurse.user.id, str(note["id"]), "forbidden"),
    ]
    assert "unknown ICD-10 code 'X99.99'" in denied[0].detail
    assert specialist.get(base).json()[0]["status"] == "signed"  # nothing half-written
