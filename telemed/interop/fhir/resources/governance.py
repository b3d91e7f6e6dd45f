"""Under what terms, and who wrote what: Consent and Provenance.

The platform records no consent yet. Until it does, :func:`consent` says so in a Consent
of status ``proposed`` instead of asserting one: a receiving system must not read the
export as evidence that the patient agreed. It is the one place that will read the real
consent once it is recorded (migration 0016's slot).
"""

from __future__ import annotations

from telemed.db import pk
from telemed.interop.fhir import codes
from telemed.interop.fhir.record import ConsultRecord
from telemed.interop.fhir.resources.common import (
    Resource,
    concept,
    instant,
    key,
    ref,
    text_concept,
)
from telemed.notes.models import ConsultNote

NO_CONSENT = (
    "No consent was recorded on the platform for this consult; this Consent is a "
    "placeholder and is not evidence that the patient agreed to anything."
)


def consent(record: ConsultRecord) -> Resource:
    """The patient's consent for this consult: none recorded yet (see the module)."""
    return {
        "resourceType": "Consent",
        "id": str(record.consult_id),
        "text": {
            "status": "generated",
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{NO_CONSENT}</p></div>',
        },
        "status": "proposed",
        "scope": concept(codes.CONSENT_SCOPE, "patient-privacy", "Privacy Consent"),
        "category": [concept(codes.LOINC, *codes.CONSENT_LOINC)],
        "patient": ref("Patient", pk(record.case)),
        "organization": [ref("Organization", pk(record.facility))],
        "policyRule": text_concept(NO_CONSENT),
    }


def _author(user_id: int, organization_id: int | None) -> Resource:
    agent: Resource = {
        "type": concept(codes.PROVENANCE_PARTICIPANT, "author", "Author"),
        "who": ref("Practitioner", user_id),
    }
    if organization_id is not None:
        agent["onBehalfOf"] = ref("Organization", organization_id)
    return agent


def provenances(
    record: ConsultRecord, request_targets: list[Resource], note_targets: dict[int, list[Resource]]
) -> list[Resource]:
    """Who wrote the request (and the vitals with it), and who signed each note version
    (and the diagnoses in it)."""
    consult = record.consult
    found: list[Resource] = [
        {
            "resourceType": "Provenance",
            "id": f"{record.consult_id}-request",
            "target": [{"reference": key(r)} for r in request_targets],
            "recorded": instant(consult.requested_at or consult.created_at),
            "agent": [_author(consult.created_by_id, pk(record.facility))],
        }
    ]
    for note in record.notes:
        found.append(_note_provenance(note, note_targets.get(pk(note), [])))
    return found


def _note_provenance(note: ConsultNote, targets: list[Resource]) -> Resource:
    return {
        "resourceType": "Provenance",
        "id": f"note-{pk(note)}",
        "target": [ref("DocumentReference", f"note-{pk(note)}")]
        + [{"reference": key(r)} for r in targets],
        "recorded": instant(note.signed_at or note.updated_at),
        "agent": [_author(note.author_id, None)],
    }
