"""A consult holding one of everything the FHIR export maps, built through the real
services (the demo seed, then a signed and amended note, an outcome, a call, a photo posted
with a message and a PDF), and checks every test of the export shares."""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from PIL import Image
from sqlalchemy import Engine
from sqlmodel import Session, select

from signaling.events import SessionEvent
from telemed.accounts.models import User
from telemed.accounts.security import hash_password
from telemed.attachments import service as attachments
from telemed.cases.models import Case
from telemed.consults.models import Consult
from telemed.db import pk, utcnow
from telemed.demo.seed import seed_demo
from telemed.messages import service as messages
from telemed.notes import service as notes
from telemed.notes.models import Outcome
from telemed.notes.schemas import NoteAmend, NoteCreate, OutcomeIn
from telemed.sessions import service as calls
from telemed.settings import Settings
from tests.helpers import PASSWORD

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n" + b"x" * 2000 + b"\n%%EOF\n"

#: Everything the issue asks of one consult's record.
EVERY_TYPE = {
    "ServiceRequest",
    "Task",
    "Appointment",
    "Encounter",
    "Communication",
    "Condition",
    "Observation",
    "DocumentReference",
    "Media",
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Consent",
    "RelatedPerson",
    "Provenance",
}


@dataclass
class Demo:
    consult_id: int
    nurse: User  # Motebang Hospital: requested it
    doctor: User  # Mokhotlong Hospital: may not see it
    specialist: User  # assigned to it
    coordinator: User


def user(db: Session, email: str) -> User:
    """A demo user, given the tests' password so that ``login`` can sign in as them."""
    found = db.exec(select(User).where(User.email == email)).one()
    found.password_hash = hash_password(PASSWORD, "light")
    db.add(found)
    db.commit()
    return found


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, "JPEG")
    return out.getvalue()


def seed_full_consult(db: Session, settings: Settings, engine: Engine) -> Demo:
    """The demo's febrile child (consult booked with the paediatrician), completed with a
    signed note amended once (ICD-10 diagnoses), an outcome, a call, a photo posted with a
    message and a PDF."""
    seed_demo(db, settings, history=False)
    db.commit()
    nurse = user(db, "clinician@demo.telemed.org.ls")
    specialist = user(db, "specialist@demo.telemed.org.ls")
    doctor = user(db, "doctor@demo.telemed.org.ls")
    coordinator = user(db, "coordinator@demo.telemed.org.ls")
    case = db.exec(select(Case).where(Case.patient_ref == "MOT-2026-0141")).one()
    consult = db.exec(select(Consult).where(Consult.case_id == pk(case))).one()

    note = notes.create(
        db,
        specialist,
        consult,
        NoteCreate(
            subjective="Fever five days, rash, red eyes.",
            assessment="Kawasaki disease likely.",
            plan="IVIG if available; aspirin; echocardiogram.",
            diagnoses=["M30.3", "R50.9"],
            follow_up_on=utcnow().date() + timedelta(days=7),
            follow_up_instruction="Check the hands and feet for peeling.",
        ),
    )
    db.flush()
    notes.sign(db, specialist, consult, note)
    amended = notes.amend(
        db,
        specialist,
        consult,
        note,
        NoteAmend(
            subjective="Fever five days, rash, red eyes <and> cracked lips.",
            assessment="Kawasaki disease.",
            plan="IVIG; aspirin; echocardiogram within 2 weeks.",
            diagnoses=["M30.3"],
            reason="Lips examined on the call.",
        ),
    )
    notes.sign(db, specialist, consult, amended)
    notes.record_outcome(db, nurse, consult, OutcomeIn(outcome=Outcome.referral_avoided), utcnow())
    posted = messages.post(db, nurse, consult, "The rash this morning.")
    db.commit()  # an upload decodes its bytes outside any transaction (uow.end_read)
    attachments.attach_file(
        db,
        settings,
        nurse,
        consult,
        filename="rash.jpg",
        media_type="image/jpeg",
        data=jpeg(),
        message_id=pk(posted),
    )
    db.commit()
    attachments.attach_file(
        db,
        settings,
        nurse,
        consult,
        filename="blood count.pdf",
        media_type="application/pdf",
        data=PDF,
    )
    db.commit()
    consult_id = pk(consult)
    room = calls.room_of(consult_id)
    start = utcnow()
    for kind, who, at in (
        ("joined", calls.participant_of(pk(specialist)), start),
        ("ended", None, start + timedelta(minutes=12)),
    ):
        calls.record_event(
            engine,
            SessionEvent(
                kind=kind,  # type: ignore[arg-type]
                room=room,
                participant=who,
                role="specialist" if who else None,
                session="s-1" if who else None,
                at=at,
                node="test",
                detail={},
            ),
        )
    db.rollback()  # end the read begun above (reloading ``consult``): the next one is fresh
    return Demo(
        consult_id=consult_id,
        nurse=nurse,
        doctor=doctor,
        specialist=specialist,
        coordinator=coordinator,
    )


def validate(resource: dict[str, Any]) -> Any:
    """Parse a resource back with its fhir.resources R4B model (raises if invalid)."""
    return get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def references(node: Any) -> Iterable[str]:
    """Every ``reference`` anywhere inside a resource."""
    if isinstance(node, dict):
        for name, value in node.items():
            if name == "reference" and isinstance(value, str):
                yield value
            else:
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def check_bundle(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The Bundle parses as R4B, every resource in it does too, every fullUrl ends with
    its Type/id, and every reference resolves to an entry; returns the resources by
    Type/id."""
    Bundle.model_validate(body)
    found: dict[str, dict[str, Any]] = {}
    for entry in body["entry"]:
        resource = entry["resource"]
        validate(resource)
        key = f"{resource['resourceType']}/{resource['id']}"
        assert entry["fullUrl"].endswith(f"/fhir/{key}")
        assert key not in found, f"{key} twice"
        found[key] = resource
    for key, resource in found.items():
        for reference in references(resource):
            assert reference in found, f"{key} refers to {reference}, not in the Bundle"
    return found
