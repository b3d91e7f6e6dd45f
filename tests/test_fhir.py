"""FHIR R4 export: one consult's Bundle ($everything) and the bulk NDJSON export.

Every resource produced is parsed back with the fhir.resources R4B models, and every
reference must resolve inside the Bundle (or, in the bulk export, inside the export)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from telemed.audit.models import AuditAction, AuditEntry
from telemed.interop.fhir import codes
from telemed.settings import Settings
from tests.conftest import LoginFn
from tests.fhir_helpers import EVERY_TYPE, Demo, check_bundle, seed_full_consult

FHIR_JSON = "application/fhir+json"


@pytest.fixture
def demo(db: Session, settings: Settings, engine: Engine) -> Demo:
    return seed_full_consult(db, settings, engine)


def everything_url(consult_id: int | str) -> str:
    return f"/fhir/ServiceRequest/{consult_id}/$everything"


def audit_rows(db: Session, consult_id: int, action: AuditAction) -> list[AuditEntry]:
    db.rollback()  # a fresh snapshot: the application committed on its own connection
    return list(
        db.exec(
            select(AuditEntry)
            .where(AuditEntry.consult_id == consult_id, AuditEntry.action == action)
            .order_by(col(AuditEntry.id))
        )
    )


def by_type(resources: dict[str, dict[str, Any]], resource_type: str) -> list[dict[str, Any]]:
    return [r for r in resources.values() if r["resourceType"] == resource_type]


def test_everything_is_a_valid_bundle_of_the_whole_consult(login: LoginFn, demo: Demo) -> None:
    response = login(demo.nurse).get(everything_url(demo.consult_id))

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body = response.json()
    assert body["type"] == "searchset"
    resources = check_bundle(body)
    assert {r["resourceType"] for r in resources.values()} == EVERY_TYPE
    assert body["entry"][0]["search"]["mode"] == "match"
    assert body["entry"][0]["resource"]["resourceType"] == "ServiceRequest"

    request = resources[f"ServiceRequest/{demo.consult_id}"]
    assert request["priority"] == "urgent"
    assert request["code"]["coding"][0] == {
        "system": codes.SPECIALTY,
        "code": "paediatrics",
        "display": "Paediatrics and neonatology",
    }
    # The amended note's diagnoses are the consult's conditions, coded in ICD-10.
    conditions = by_type(resources, "Condition")
    assert [c["code"]["coding"][0]["code"] for c in conditions] == ["M30.3"]
    assert conditions[0]["code"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/icd-10"
    # Vitals are LOINC-coded Observations with UCUM units.
    vitals = {o["code"]["coding"][0]["code"]: o for o in by_type(resources, "Observation")}
    assert set(vitals) == {"8867-4", "9279-1", "8310-5", "59408-5", "29463-7"}
    assert vitals["8867-4"]["valueQuantity"]["value"] == 150
    assert vitals["8310-5"]["valueQuantity"]["code"] == "Cel"
    # Both versions of the note; the amendment replaces the first.
    notes = sorted(
        (d for d in by_type(resources, "DocumentReference") if d["id"].startswith("note-")),
        key=lambda d: d["id"],
    )
    assert [n["status"] for n in notes] == ["superseded", "current"]
    assert notes[1]["relatesTo"][0]["target"]["reference"] == f"DocumentReference/{notes[0]['id']}"
    text = base64.b64decode(notes[1]["content"][0]["attachment"]["data"]).decode()
    assert "red eyes <and> cracked lips" in text
    # The photo posted with a message is Media the message points at; the PDF a document.
    (media,) = by_type(resources, "Media")
    assert media["content"]["contentType"] == "image/jpeg"
    shared = [
        p["contentReference"]["reference"]
        for c in by_type(resources, "Communication")
        for p in c["payload"]
        if "contentReference" in p
    ]
    assert shared == [f"Media/{media['id']}"]
    assert any(
        d["content"][0]["attachment"]["contentType"] == "application/pdf"
        for d in by_type(resources, "DocumentReference")
    )
    # The patient is pseudonymous: the facility's reference, no name.
    (patient,) = by_type(resources, "Patient")
    assert patient["identifier"][0]["value"] == "MOT-2026-0141"
    assert "name" not in patient
    assert patient["meta"]["security"][0]["code"] == "PSEUDED"
    # No consent is recorded on the platform yet, and the Consent says so.
    (consent,) = by_type(resources, "Consent")
    assert consent["status"] == "proposed"
    assert "No consent was recorded" in consent["text"]["div"]
    task = resources[f"Task/{demo.consult_id}"]
    assert task["output"][0]["valueCodeableConcept"]["coding"][0]["code"] == "referral_avoided"
    (appointment,) = by_type(resources, "Appointment")
    assert appointment["status"] == "booked"


def test_reading_the_record_is_audited_like_reading_the_consult(
    login: LoginFn, demo: Demo, db: Session
) -> None:
    before = len(audit_rows(db, demo.consult_id, AuditAction.read))

    assert login(demo.coordinator).get(everything_url(demo.consult_id)).status_code == 200

    reads = audit_rows(db, demo.consult_id, AuditAction.read)
    assert len(reads) == before + 1
    assert reads[-1].object_type == "consult_fhir"
    assert reads[-1].actor_id == demo.coordinator.id


def test_another_facilitys_clinician_gets_404_and_the_refusal_is_audited(
    login: LoginFn, demo: Demo, db: Session
) -> None:
    response = login(demo.doctor).get(everything_url(demo.consult_id))

    assert response.status_code == 404
    assert response.headers["content-type"].startswith(FHIR_JSON)
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "not-found"
    denied = audit_rows(db, demo.consult_id, AuditAction.denied)
    assert [(d.actor_id, d.object_type) for d in denied] == [(demo.doctor.id, "consult")]
    assert not [
        r for r in audit_rows(db, demo.consult_id, AuditAction.read) if r.actor_id == demo.doctor.id
    ]


def test_unknown_and_malformed_ids_answer_with_an_operation_outcome(
    login: LoginFn, demo: Demo
) -> None:
    nurse = login(demo.nurse)
    unknown = nurse.get(everything_url(999999))
    malformed = nurse.get(everything_url("12abc"))

    assert unknown.status_code == 404
    assert unknown.json()["issue"][0]["code"] == "not-found"
    assert malformed.status_code == 400
    assert malformed.headers["content-type"].startswith(FHIR_JSON)
    assert malformed.json()["issue"][0]["code"] == "invalid"
    assert "12abc" in malformed.json()["issue"][0]["diagnostics"]


def test_without_a_login_the_answer_is_401_not_a_login_page(client: Any, demo: Demo) -> None:
    response = client.get(everything_url(demo.consult_id), follow_redirects=False)

    assert response.status_code == 401
    assert response.json()["issue"][0]["code"] == "login"
