"""Under what terms, and who wrote what: Consent and Provenance.

Consent records are evidence and append-only (docs/consent.md): giving consent and
withdrawing it are both rows. Each row becomes one FHIR Consent, so a receiving system
sees the whole history, not only today's answer:

- a row that gives consent is ``provision.type = permit``; a withdrawal is ``deny``;
- the latest row of each scope is ``active`` (an active deny is a withdrawal in force),
  every earlier row ``inactive``;
- sharing the case abroad is scope ``patient-privacy``, a video call ``treatment``;
- a guardian who consented is a RelatedPerson of the Bundle, the performer; a witnessed
  consent carries ``verification``; a written one points at the photo of the form.

A consult with no consent recorded gets one Consent of status ``proposed`` saying so: a
receiving system must not read the export as evidence that the patient agreed.
"""

from __future__ import annotations

from html import escape

from telemed.consent.models import (
    ConsentAction,
    Consenter,
    ConsentMethod,
    ConsentRecord,
    ConsentScope,
)
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
from telemed.interop.fhir.resources.findings import attachment_key
from telemed.notes.models import ConsultNote

NO_CONSENT = (
    "No consent was recorded on the platform for this consult; this Consent is a "
    "placeholder and is not evidence that the patient agreed to anything."
)


SCOPES = {
    ConsentScope.sharing: ("patient-privacy", "Privacy Consent"),
    ConsentScope.call: ("treatment", "Treatment"),
}
POLICY = {
    ConsentScope.sharing: "Share this case with a volunteer specialist abroad (Telemed).",
    ConsentScope.call: "Be seen and heard by the specialist on a video or audio call (Telemed).",
}


def consents(record: ConsultRecord) -> list[Resource]:
    """One Consent per consent row (and the guardians named in them), or the placeholder
    when none is recorded."""
    if not record.consents:
        return [_none_recorded(record)]
    latest = {row.scope: pk(row) for row in record.consents}
    found: list[Resource] = []
    for row in record.consents:
        if row.consenter == Consenter.guardian:
            found.append(_guardian(record, row))
        found.append(_consent(record, row, current=latest[row.scope] == pk(row)))
    return found


def _guardian(record: ConsultRecord, row: ConsentRecord) -> Resource:
    return {
        "resourceType": "RelatedPerson",
        "id": f"consent-{pk(row)}-guardian",
        "patient": ref("Patient", pk(record.case)),
        "relationship": [text_concept(row.guardian_relationship or "guardian")],
        "name": [{"text": row.guardian_name}] if row.guardian_name else [],
    }


def _consent(record: ConsultRecord, row: ConsentRecord, *, current: bool) -> Resource:
    scope_code, scope_display = SCOPES[row.scope]
    permit = row.action == ConsentAction.given
    who = (
        ref("RelatedPerson", f"consent-{pk(row)}-guardian")
        if row.consenter == Consenter.guardian
        else ref("Patient", pk(record.case))
    )
    found: Resource = {
        "resourceType": "Consent",
        "id": f"consent-{pk(row)}",
        "text": {
            "status": "generated",
            "div": '<div xmlns="http://www.w3.org/1999/xhtml"><p>'
            + escape(_summary(row))
            + "</p></div>",
        },
        "status": "active" if current else "inactive",
        "scope": concept(codes.CONSENT_SCOPE, scope_code, scope_display),
        "category": [concept(codes.LOINC, *codes.CONSENT_LOINC)],
        "patient": ref("Patient", pk(record.case)),
        "dateTime": instant(row.given_at),
        "performer": [who],
        "organization": [ref("Organization", pk(record.facility))],
        "policyRule": text_concept(POLICY[row.scope]),
        "provision": {
            "type": "permit" if permit else "deny",
            "period": {"start": instant(row.given_at)},
        },
    }
    if row.method == ConsentMethod.witnessed:
        found["verification"] = [{"verified": True, "verificationDate": instant(row.given_at)}]
    if row.photo_attachment_id is not None:
        photo = next((a for a in record.attachments if pk(a) == row.photo_attachment_id), None)
        if photo is not None:
            found["sourceReference"] = {"reference": attachment_key(photo)}
    return found


def _summary(row: ConsentRecord) -> str:
    """The narrative: who said what, how (names are the clinician's text, escaped)."""
    who = (
        f"{row.guardian_name or 'A guardian'} ({row.guardian_relationship or 'guardian'})"
        if row.consenter == Consenter.guardian
        else "The patient"
    )
    what = "sharing the case abroad" if row.scope == ConsentScope.sharing else "a video call"
    if row.action == ConsentAction.withdrawn:
        return f"{who} withdrew consent to {what}." + (f" {row.reason}" if row.reason else "")
    how = (
        {
            ConsentMethod.verbal: "verbally",
            ConsentMethod.witnessed: f"before a witness ({row.witness_name})",
            ConsentMethod.written: "in writing (photo of the signed form)",
        }.get(row.method, "")
        if row.method
        else ""
    )
    return f"{who} consented to {what} {how}.".replace(" .", ".")


def _none_recorded(record: ConsultRecord) -> Resource:
    """No consent recorded for this consult: a placeholder that says so."""
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
