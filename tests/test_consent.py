"""Consent: recorded with the request or on the consult page, append-only, and enforced by
the offers (no offer, no assignment without sharing consent) and the calls (no ticket
without call consent); on the timeline and in the audit trail."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, text
from sqlmodel import Session, col, select

from telemed.accounts.models import Role
from telemed.audit.models import AuditAction, AuditEntry
from telemed.consent import service as consent
from telemed.consent.models import ConsentAction, ConsentMethod, ConsentRecord, ConsentScope
from telemed.consent.schemas import ConsentIn
from telemed.consults.models import Consult, ConsultParticipant, ConsultState, ParticipantRelation
from telemed.db import pk, utcnow
from telemed.demo.seed import seed_demo
from telemed.offers import service as offers
from telemed.offers.models import OfferStatus
from telemed.offers.policy import OfferPolicy
from telemed.offers.service import DueReport
from telemed.settings import Settings
from telemed.uow import Units
from tests.conftest import LoginFn
from tests.directory_helpers import Specialists, offers_of
from tests.helpers import ApiClient, ManualClock, Users, consult_payload
from tests.test_attachments import jpeg, two_colour_photo
from tests.test_sessions import involve

SHARING_ONLY = {"sharing": True, "call": False, "method": "verbal"}


@pytest.fixture
def specialists(db: Session, settings: Settings, users: Users) -> Specialists:
    return Specialists(db, settings, users)


def due(units: Units, db: Session, now: datetime, policy: OfferPolicy) -> DueReport:
    db.rollback()  # the test's session holds no stale read while the job writes
    return offers.process_due_offers(units, now, policy)


def state_of(db: Session, consult_id: int) -> str:
    db.rollback()
    consult = db.get(Consult, consult_id, populate_existing=True)
    assert consult is not None
    return str(consult.state)


def consent_rows(db: Session) -> list[ConsentRecord]:
    db.rollback()
    return list(db.exec(select(ConsentRecord).order_by(col(ConsentRecord.id))))


def audit_rows(db: Session, object_type: str) -> list[AuditEntry]:
    db.rollback()
    return list(
        db.exec(
            select(AuditEntry)
            .where(AuditEntry.object_type == object_type)
            .order_by(col(AuditEntry.id))
        )
    )


def error_of(response: Any) -> tuple[int, str, str | None]:
    body = response.json()["error"]
    fields = body.get("fields") or [{}]
    return response.status_code, body["code"], fields[0].get("field")


def new_consult(nurse: ApiClient, **overrides: object) -> dict[str, Any]:
    response = nurse.post("/api/v1/consults", consult_payload(**overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def attach_photo(nurse: ApiClient, consult_id: int) -> int:
    """The signed form's photo, through the consult page's upload form."""
    response = nurse.client.post(
        f"/consults/{consult_id}/attachments",
        data={"csrf_token": nurse.csrf},
        files={"file": ("consent-form.jpg", jpeg(two_colour_photo()), "image/jpeg")},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    [attachment] = nurse.get(f"/api/v1/consults/{consult_id}/attachments").json()
    return int(attachment["id"])


# --- recording ---------------------------------------------------------------------------


def test_consent_taken_with_the_request_and_on_the_consult_is_recorded(
    login: LoginFn, users: Users, clock: ManualClock
) -> None:
    t0 = clock.set_midday()
    nurse = login(users.make(Role.clinician))
    consult = new_consult(nurse)
    url = f"/api/v1/consults/{consult['id']}/consents"
    listed = nurse.get(url).json()
    assert listed["current"]["sharing_given"]
    assert listed["current"]["call_given"]
    sharing, call = listed["records"]
    assert (sharing["scope"], call["scope"]) == ("sharing", "call")
    for row in (sharing, call):
        assert row["action"] == "given"
        assert (row["consenter"], row["guardian_name"], row["guardian_relationship"]) == (
            "guardian",
            "'Mamosa",
            "mother",
        )
        assert row["method"] == "verbal"
        assert row["recorded_by_id"] == nurse.user.id
        assert datetime.fromisoformat(row["given_at"]) == t0
        assert datetime.fromisoformat(row["recorded_at"]) == t0

    # Later, before a witness, said by the patient herself: a new version, none replaced.
    clock.advance(timedelta(minutes=10))
    earlier = t0 + timedelta(minutes=5)
    witnessed = nurse.post(
        url,
        {
            "scope": "sharing",
            "consenter": "patient",
            "method": "witnessed",
            "witness_name": "Sister Palesa",
            "given_at": earlier.isoformat(),
        },
    )
    assert witnessed.status_code == 201, witnessed.text
    assert witnessed.json()["witness_name"] == "Sister Palesa"
    assert datetime.fromisoformat(witnessed.json()["given_at"]) == earlier
    after = nurse.get(url).json()
    assert [r["id"] for r in after["records"]][:2] == [sharing["id"], call["id"]]
    assert after["current"]["sharing"]["id"] == witnessed.json()["id"]


def test_written_consent_needs_a_photo_of_this_consult(
    login: LoginFn, users: Users, db: Session
) -> None:
    nurse = login(users.make(Role.clinician))
    consult_id = new_consult(nurse, consent=None)["id"]
    other_id = new_consult(nurse, consent=None)["id"]
    photo_id = attach_photo(nurse, consult_id)
    url = f"/api/v1/consults/{consult_id}/consents"
    body = {"scope": "sharing", "method": "written"}
    assert error_of(nurse.post(url, body)) == (422, "validation_failed", "photo_attachment_id")
    elsewhere = nurse.post(
        f"/api/v1/consults/{other_id}/consents", body | {"photo_attachment_id": photo_id}
    )
    assert error_of(elsewhere) == (404, "not_found", "photo_attachment_id")
    written = nurse.post(url, body | {"photo_attachment_id": photo_id})
    assert written.status_code == 201, written.text
    assert written.json()["photo_attachment_id"] == photo_id
    assert [r.consult_id for r in consent_rows(db)] == [consult_id]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scope": "sharing"}, "method"),
        ({"scope": "sharing", "method": "telepathy"}, "method"),
        ({"scope": "sharing", "method": "witnessed"}, "witness_name"),
        ({"scope": "sharing", "method": "witnessed", "witness_name": "  "}, "witness_name"),
        ({"scope": "sharing", "method": "written"}, "photo_attachment_id"),
        ({"scope": "sharing", "method": "verbal", "consenter": "guardian"}, "guardian_name"),
        (
            {"scope": "call", "method": "verbal", "consenter": "guardian", "guardian_name": "M"},
            "guardian_relationship",
        ),
        ({"scope": "everything", "method": "verbal"}, "scope"),
        ({"scope": "sharing", "method": "verbal", "given_at": "2999-01-01T00:00:00Z"}, "given_at"),
        ({"scope": "sharing", "method": "verbal", "given_at": "2026-01-01T00:00:00"}, "given_at"),
    ],
)
def test_bad_consent_is_refused_naming_the_field(
    login: LoginFn, users: Users, db: Session, body: dict[str, object], field: str
) -> None:
    nurse = login(users.make(Role.clinician))
    consult_id = new_consult(nurse, consent=None)["id"]
    response = nurse.post(f"/api/v1/consults/{consult_id}/consents", body)
    assert response.status_code == 422, response.text
    assert error_of(response)[2] == field
    assert consent_rows(db) == []
    assert audit_rows(db, "consent") == []


@pytest.mark.parametrize(
    ("consent_in", "field"),
    [
        ({"sharing": True, "method": "witnessed"}, "consent.witness_name"),
        ({"sharing": True, "method": "written"}, "consent.method"),
        ({"sharing": True, "method": "verbal", "consenter": "guardian"}, "consent.guardian_name"),
        ({"sharing": True}, "consent.method"),
    ],
)
def test_bad_consent_on_a_request_stores_no_consult(
    login: LoginFn, users: Users, db: Session, consent_in: dict[str, object], field: str
) -> None:
    nurse = login(users.make(Role.clinician))
    response = nurse.post("/api/v1/consults", consult_payload(consent=consent_in))
    assert response.status_code == 422, response.text
    assert error_of(response)[2] == field
    db.rollback()
    assert db.exec(select(func.count()).select_from(Consult)).one() == 0
    assert consent_rows(db) == []


def test_only_the_requesting_facility_records_consent_and_refusals_are_audited(
    login: LoginFn, users: Users, db: Session
) -> None:
    nurse = login(users.make(Role.clinician, "MOTEBANG"))
    consult_id = new_consult(nurse, consent=None)["id"]
    specialist = users.make(Role.specialist)
    involve(db, consult_id, specialist, ParticipantRelation.assigned)
    url = f"/api/v1/consults/{consult_id}/consents"
    body = {"scope": "sharing", "method": "verbal"}

    stranger = login(users.make(Role.clinician, "PARAY"))
    assert stranger.post(url, body).status_code == 404  # not theirs to see: not there
    denied = [e for e in audit_rows(db, "consult") if e.action == AuditAction.denied]
    assert [(e.actor_id, e.consult_id) for e in denied] == [(stranger.user.id, consult_id)]

    for outsider in (login(users.make(Role.coordinator)), login(specialist)):
        refused = outsider.post(url, body)
        assert error_of(refused)[:2] == (403, "forbidden")
        withdrawal = outsider.post(f"{url}/withdraw", {"scope": "sharing"})
        assert error_of(withdrawal)[:2] == (403, "forbidden")
    refusals = audit_rows(db, "consent")
    assert [e.action for e in refusals] == [AuditAction.denied] * 4
    assert refusals[0].detail == "not a clinician of the requesting facility"
    assert consent_rows(db) == []
    # They may read it, as they may read the consult; the read is audited.
    assert login(specialist).get(url).json()["current"]["sharing"] is None
    assert audit_rows(db, "consents")[-1].action == AuditAction.read


def test_withdrawing_nothing_is_a_conflict(login: LoginFn, users: Users, db: Session) -> None:
    nurse = login(users.make(Role.clinician))
    consult_id = new_consult(nurse, consent=SHARING_ONLY)["id"]
    url = f"/api/v1/consults/{consult_id}/consents/withdraw"
    assert error_of(nurse.post(url, {"scope": "call"})) == (409, "conflict", "scope")
    assert nurse.post(url, {"scope": "sharing", "reason": "changed her mind"}).status_code == 201
    assert error_of(nurse.post(url, {"scope": "sharing"})) == (409, "conflict", "scope")
    assert [(r.scope, r.action) for r in consent_rows(db)] == [
        (ConsentScope.sharing, ConsentAction.given),
        (ConsentScope.sharing, ConsentAction.withdrawn),
    ]


def test_consent_rows_are_append_only(login: LoginFn, users: Users, db: Session) -> None:
    nurse = login(users.make(Role.clinician))
    new_consult(nurse)
    for statement in ("UPDATE consents SET method = 'written'", "DELETE FROM consents"):
        with pytest.raises(Exception, match="append-only"):
            db.execute(text(statement))
        db.rollback()
    assert len(consent_rows(db)) == 2


# --- enforcement: offers -----------------------------------------------------------------


def test_the_offer_run_waits_for_sharing_consent_then_offers(
    specialists: Specialists,
    login: LoginFn,
    users: Users,
    db: Session,
    units: Units,
    policy: OfferPolicy,
) -> None:
    volunteer = specialists.make()
    nurse = login(users.make(Role.clinician))
    consult = new_consult(nurse, consent=None)
    consult_id = consult["id"]
    assert consult["state"] == "requested"
    assert offers_of(db, consult_id) == []
    t0 = utcnow()
    report = due(units, db, t0 + timedelta(minutes=1), policy)
    assert (report.waiting_for_consent, report.offered) == ([consult_id], [])
    # Not escalated either, however long it waits: only the clinician can unblock it.
    later = due(units, db, t0 + timedelta(days=3), policy)
    assert (later.waiting_for_consent, later.escalated) == ([consult_id], [])
    assert state_of(db, consult_id) == ConsultState.requested
    page = nurse.client.get(f"/consults/{consult_id}").text
    assert 'id="waiting-for-consent"' in page
    assert 'class="waiting-consent"' in nurse.client.get("/").text

    # Recorded (as the command line would, in a unit of its own): the next run offers it.
    with units.one() as session:
        row = session.get(Consult, consult_id)
        assert row is not None
        clinician = nurse.user
        consent.record(
            session,
            clinician,
            row,
            ConsentIn(scope=ConsentScope.sharing, method=ConsentMethod.verbal),
            t0,
        )
    report = due(units, db, t0 + timedelta(minutes=2), policy)
    assert (report.waiting_for_consent, report.offered) == ([], [consult_id])
    assert [o.specialist_id for o in offers_of(db, consult_id)] == [volunteer.id]
    assert 'id="waiting-for-consent"' not in nurse.client.get(f"/consults/{consult_id}").text
    assert 'class="waiting-consent"' not in nurse.client.get("/").text


def test_consent_recorded_through_the_api_offers_at_once(
    specialists: Specialists, login: LoginFn, users: Users, db: Session
) -> None:
    volunteer = specialists.make()
    nurse = login(users.make(Role.clinician))
    consult_id = new_consult(nurse, consent=None)["id"]
    call_only = nurse.post(
        f"/api/v1/consults/{consult_id}/consents", {"scope": "call", "method": "verbal"}
    )
    assert call_only.status_code == 201
    assert offers_of(db, consult_id) == []  # a call consent is not a sharing consent
    shared = nurse.post(
        f"/api/v1/consults/{consult_id}/consents", {"scope": "sharing", "method": "verbal"}
    )
    assert shared.status_code == 201
    assert [o.specialist_id for o in offers_of(db, consult_id)] == [volunteer.id]
    assert state_of(db, consult_id) == ConsultState.offered


def test_withdrawal_stops_offers_and_assignment_and_is_shown_to_the_specialist(
    specialists: Specialists,
    login: LoginFn,
    users: Users,
    db: Session,
    units: Units,
    policy: OfferPolicy,
) -> None:
    first, second = specialists.make(), specialists.make()
    nurse = login(users.make(Role.clinician))
    # An emergency goes to both at once; the patient then withdraws.
    emergency = new_consult(nurse, urgency="emergency")
    assert emergency["state"] == "offered"
    open_offers = offers_of(db, emergency["id"])
    assert len(open_offers) == 2
    url = f"/api/v1/consults/{emergency['id']}/consents/withdraw"
    withdrawn = nurse.post(url, {"scope": "sharing", "reason": "family disagrees"})
    assert withdrawn.status_code == 201, withdrawn.text
    assert {o.status for o in offers_of(db, emergency["id"])} == {OfferStatus.withdrawn}
    assert state_of(db, emergency["id"]) == ConsultState.requested
    db.rollback()
    participants = db.exec(
        select(ConsultParticipant).where(ConsultParticipant.consult_id == emergency["id"])
    ).all()
    assert participants == []  # the offers' access ended with them
    [offer_to_first] = [o for o in open_offers if o.specialist_id == first.id]
    late = login(first).post(f"/api/v1/offers/{offer_to_first.id}/accept")
    assert late.status_code == 409
    report = due(units, db, utcnow() + timedelta(minutes=1), policy)
    assert emergency["id"] in report.waiting_for_consent
    assert offers_of(db, emergency["id"])[-1].status == OfferStatus.withdrawn  # none new
    coordinator = login(specialists.coordinator)
    assign = coordinator.post(
        f"/api/v1/consults/{emergency['id']}/assign", {"specialist_id": second.id}
    )
    assert error_of(assign) == (409, "consent_required", "consent")
    assert "consented to sharing" in assign.json()["error"]["message"]

    # A consult already taken: the assigned specialist keeps it and is told plainly.
    routine = new_consult(nurse, urgency="routine", consent=SHARING_ONLY)
    [offer] = offers_of(db, routine["id"])
    specialist = login(first if offer.specialist_id == first.id else second)
    assert specialist.post(f"/api/v1/offers/{offer.id}/accept").status_code == 200
    before = specialist.client.get(f"/consults/{routine['id']}").text
    assert 'id="consent-withdrawn"' not in before
    assert (
        nurse.post(
            f"/api/v1/consults/{routine['id']}/consents/withdraw",
            {"scope": "sharing", "reason": "moved to <b>Bloemfontein</b>"},
        ).status_code
        == 201
    )
    page = specialist.client.get(f"/consults/{routine['id']}").text
    alert = re.search(r'<p class="alert" role="alert" id="consent-withdrawn">(.*?)</p>', page, re.S)
    assert alert, page
    assert "withdrew consent to share this case" in alert.group(1)
    assert "moved to &lt;b&gt;Bloemfontein&lt;/b&gt;" in alert.group(1)  # escaped
    state = specialist.get(f"/api/v1/consults/{routine['id']}/consents").json()["current"]
    assert state["sharing_given"] is False
    assert state["sharing"]["action"] == "withdrawn"


# --- enforcement: calls ------------------------------------------------------------------


def test_no_call_without_call_consent(login: LoginFn, users: Users, db: Session) -> None:
    nurse = login(users.make(Role.clinician))
    consult_id = new_consult(nurse, consent=SHARING_ONLY)["id"]
    specialist = login(users.make(Role.specialist))
    involve(db, consult_id, specialist.user, ParticipantRelation.assigned)
    for side in (nurse, specialist):
        refused = side.post(f"/api/v1/consults/{consult_id}/call")
        assert error_of(refused) == (409, "consent_required", "consent")
        assert "consented to a call" in refused.json()["error"]["message"]
    assert side.client.get(f"/consults/{consult_id}/call").status_code == 409
    page = nurse.client.get(f"/consults/{consult_id}").text
    assert 'id="call-needs-consent"' in page
    assert 'id="join-call"' not in page

    url = f"/api/v1/consults/{consult_id}/consents"
    assert nurse.post(url, {"scope": "call", "method": "verbal"}).status_code == 201
    assert specialist.post(f"/api/v1/consults/{consult_id}/call").status_code == 200
    assert 'id="join-call"' in nurse.client.get(f"/consults/{consult_id}").text

    assert nurse.post(f"{url}/withdraw", {"scope": "call"}).status_code == 201
    again = specialist.post(f"/api/v1/consults/{consult_id}/call")
    assert error_of(again)[:2] == (409, "consent_required")


# --- timeline, audit, pages --------------------------------------------------------------


def test_consent_and_its_withdrawal_are_on_the_timeline_and_in_the_audit_trail(
    login: LoginFn, users: Users, db: Session
) -> None:
    nurse = login(users.make(Role.clinician))
    consult = new_consult(nurse)
    withdraw = f"/api/v1/consults/{consult['id']}/consents/withdraw"
    assert (
        nurse.post(
            withdraw,
            {
                "scope": "sharing",
                "consenter": "guardian",
                "guardian_name": "'Mamosa",
                "guardian_relationship": "mother",
            },
        ).status_code
        == 201
    )
    timeline = nurse.client.get(f"/cases/{consult['case_id']}/timeline").text
    assert timeline.count('class="consent-given"') == 2
    assert "Sharing consent withdrawn" in timeline
    assert "&#39;Mamosa (mother), guardian" in timeline
    trail = [(e.action, e.detail) for e in audit_rows(db, "consent")]
    assert trail == [
        (AuditAction.create, "sharing consent given by the guardian 'Mamosa (mother), verbal"),
        (AuditAction.create, "call consent given by the guardian 'Mamosa (mother), verbal"),
        (AuditAction.create, "sharing consent withdrawn by the guardian 'Mamosa (mother)"),
    ]
    coordinator = login(users.make(Role.coordinator))
    case_trail = coordinator.get(f"/api/v1/cases/{consult['case_id']}/audit").json()
    assert sum(e["object_type"] == "consent" for e in case_trail) == 3


def test_consent_through_the_pages(login: LoginFn, users: Users, db: Session) -> None:
    nurse = login(users.make(Role.clinician))
    consult_id = new_consult(nurse, consent=None)["id"]
    url = f"/consults/{consult_id}/consents"
    form = {
        "csrf_token": nurse.csrf,
        "consent_form_scope": "sharing",
        "consent_form_method": "witnessed",
    }
    missing = nurse.client.post(url, data=form)
    assert missing.status_code == 422
    assert re.search(
        r'id="consent_form_witness_name-error"[^>]*>witnessed consent needs', missing.text
    )
    assert consent_rows(db) == []
    done = nurse.client.post(
        url, data=form | {"consent_form_witness_name": "Ntate Mohapi"}, follow_redirects=False
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"/consults/{consult_id}#consent"
    page = nurse.client.get(f"/consults/{consult_id}").text
    assert "witness Ntate Mohapi" in page
    withdrawn = nurse.client.post(
        f"{url}/withdraw",
        data={"csrf_token": nurse.csrf, "withdraw_scope": "sharing", "withdraw_reason": "no"},
        follow_redirects=False,
    )
    assert withdrawn.status_code == 303
    nothing = nurse.client.post(
        f"{url}/withdraw", data={"csrf_token": nurse.csrf, "withdraw_scope": "sharing"}
    )
    assert nothing.status_code == 409
    assert "there is no consent to share the case in force to withdraw" in nothing.text


def test_the_request_form_takes_consent(login: LoginFn, users: Users, db: Session) -> None:
    nurse = login(users.make(Role.clinician))
    form = nurse.client.get("/consults/new").text
    assert 'name="consent_sharing"' in form
    fields = {
        "csrf_token": nurse.csrf,
        "patient_ref": "MOT-9",
        "age_years": "3",
        "sex": "female",
        "specialty": "paediatrics",
        "urgency": "urgent",
        "mode": "video",
        "language": "st",
        "question": "Cough for three weeks, weight loss",
        "consent_sharing": "yes",
        "consent_call": "yes",
        "consent_consenter": "guardian",
        "consent_method": "verbal",
        "consent_guardian_name": "Nkhono Lineo",
    }
    refused = nurse.client.post("/consults/new", data=fields)
    assert refused.status_code == 422
    assert re.search(r'id="consent_guardian_relationship-error"[^>]*>say how', refused.text)
    db.rollback()
    assert db.exec(select(func.count()).select_from(Consult)).one() == 0
    created = nurse.client.post(
        "/consults/new",
        data=fields | {"consent_guardian_relationship": "grandmother"},
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    rows = consent_rows(db)
    assert [(r.scope, r.guardian_name, r.guardian_relationship) for r in rows] == [
        (ConsentScope.sharing, "Nkhono Lineo", "grandmother"),
        (ConsentScope.call, "Nkhono Lineo", "grandmother"),
    ]


def test_the_demo_consults_carry_the_consent_their_journey_needs(
    db: Session, settings: Settings
) -> None:
    assert seed_demo(db, settings, history=False)  # the demo's own consults, not the past
    db.commit()  # the test owns the unit of work, as the command line does
    demo = {c.question[:20]: c for c in db.exec(select(Consult).order_by(col(Consult.id)))}
    sent = [pk(c) for c in demo.values() if c.state not in ("draft", "cancelled")]
    assert consent.given_among(db, sent, ConsentScope.sharing) == set(sent)
    [booked] = [c for c in demo.values() if c.state == ConsultState.scheduled]
    assert consent.current(db, pk(booked)).call_given  # its call opens at once
    [draft] = [c for c in demo.values() if c.state == ConsultState.draft]
    assert consent.current(db, pk(draft)) == consent.ConsentState(None, None)
