"""What was found and written: vitals (Observation, LOINC), diagnoses (Condition, ICD-10),
signed notes and PDFs (DocumentReference), photos and audio (Media).

Only signed note versions are exported. Every signed version is a DocumentReference (the
latest of its series ``current``, the ones it amended ``superseded``), and the diagnoses of
the latest signed version of each series are the consult's Conditions.
"""

from __future__ import annotations

import base64
from typing import Any

from telemed.attachments.models import Attachment, AttachmentKind
from telemed.db import pk
from telemed.interop.fhir import codes
from telemed.interop.fhir.record import ConsultRecord
from telemed.interop.fhir.resources.common import (
    Resource,
    coding,
    compact,
    concept,
    identifier,
    instant,
    ref,
)
from telemed.notes.models import ConsultNote


def _vital_value(value: Any, vital: codes.Vital) -> Resource:
    return {"value": value, "unit": vital.unit_display, "system": codes.UCUM, "code": vital.unit}


def _observation(record: ConsultRecord, vital: codes.Vital) -> Resource:
    consult = record.consult
    return {
        "resourceType": "Observation",
        "id": f"{record.consult_id}-{vital.loinc}",
        "status": "final",
        "category": [concept(codes.OBSERVATION_CATEGORY, "vital-signs", "Vital Signs")],
        "code": concept(codes.LOINC, vital.loinc, vital.display),
        "subject": ref("Patient", pk(record.case)),
        "encounter": ref("Encounter", record.consult_id),
        "effectiveDateTime": instant(consult.requested_at or consult.created_at),
        "performer": [ref("Practitioner", consult.created_by_id)],
    }


def observations(record: ConsultRecord) -> list[Resource]:
    """The vitals recorded with the request, one Observation each."""
    consult = record.consult
    found = []
    for vital in codes.VITALS:
        value = getattr(consult, vital.column)
        if value is not None:
            found.append(
                _observation(record, vital) | {"valueQuantity": _vital_value(value, vital)}
            )
    components = [
        {"code": concept(codes.LOINC, v.loinc, v.display), "valueQuantity": _vital_value(value, v)}
        for v in (codes.SYSTOLIC, codes.DIASTOLIC)
        if (value := getattr(consult, v.column)) is not None
    ]
    if components:
        found.append(_observation(record, codes.BLOOD_PRESSURE) | {"component": components})
    return found


def latest_signed(record: ConsultRecord) -> list[ConsultNote]:
    """The latest signed version of each note series, in the order the series began."""
    latest: dict[str, ConsultNote] = {}
    for note in record.notes:
        if note.series_id not in latest or note.version > latest[note.series_id].version:
            latest[note.series_id] = note
    return list(latest.values())


def conditions(record: ConsultRecord) -> dict[int, list[Resource]]:
    """The Conditions, by the id of the note version that states them."""
    found: dict[int, list[Resource]] = {}
    for note in latest_signed(record):
        for diagnosis in record.diagnoses.get(pk(note), []):
            found.setdefault(pk(note), []).append(
                {
                    "resourceType": "Condition",
                    "id": str(pk(diagnosis)),
                    "clinicalStatus": concept(codes.CONDITION_CLINICAL, "active", "Active"),
                    "verificationStatus": concept(
                        codes.CONDITION_VERIFICATION, "provisional", "Provisional"
                    ),
                    "category": [
                        concept(
                            codes.CONDITION_CATEGORY, "encounter-diagnosis", "Encounter Diagnosis"
                        )
                    ],
                    "code": {
                        "coding": [coding(codes.ICD10, diagnosis.code, diagnosis.title)],
                        "text": diagnosis.title,
                    },
                    "subject": ref("Patient", pk(record.case)),
                    "encounter": ref("Encounter", record.consult_id),
                    "recordedDate": instant(note.signed_at or note.updated_at),
                    "recorder": ref("Practitioner", note.author_id),
                }
            )
    return found


def _note_text(note: ConsultNote) -> str:
    parts = [
        ("Subjective", note.subjective),
        ("Objective", note.objective),
        ("Assessment", note.assessment),
        ("Plan", note.plan),
    ]
    if note.follow_up_on is not None:
        parts.append(
            ("Follow-up", f"{note.follow_up_on.isoformat()} {note.follow_up_instruction}".strip())
        )
    if note.amendment_reason:
        parts.append(("Reason for amendment", note.amendment_reason))
    return "\n\n".join(f"{label}:\n{text}" for label, text in parts if text)


def _context(record: ConsultRecord) -> Resource:
    return {
        "encounter": [ref("Encounter", record.consult_id)],
        "related": [ref("ServiceRequest", record.consult_id)],
    }


def note_documents(record: ConsultRecord) -> list[Resource]:
    current = {pk(n) for n in latest_signed(record)}
    found = []
    for note in record.notes:
        signed = note.signed_at or note.updated_at
        found.append(
            compact(
                {
                    "resourceType": "DocumentReference",
                    "id": f"note-{pk(note)}",
                    "masterIdentifier": identifier(
                        f"{codes.TELEMED}/sid/note", f"{note.series_id}-v{note.version}"
                    ),
                    "status": "current" if pk(note) in current else "superseded",
                    "docStatus": "final" if note.amends_id is None else "amended",
                    "type": concept(codes.LOINC, *codes.CONSULT_NOTE_LOINC),
                    "subject": ref("Patient", pk(record.case)),
                    "date": instant(signed),
                    "author": [ref("Practitioner", note.author_id)],
                    "relatesTo": [
                        {"code": "replaces", "target": ref("DocumentReference", f"note-{a}")}
                        for a in ([note.amends_id] if note.amends_id is not None else [])
                    ],
                    "description": f"Consult note, version {note.version}",
                    "content": [
                        {
                            "attachment": {
                                "contentType": "text/plain; charset=utf-8",
                                "language": str(record.consult.language),
                                "data": base64.b64encode(_note_text(note).encode()).decode(),
                                "title": f"Consult note v{note.version}",
                                "creation": instant(signed),
                            }
                        }
                    ],
                    "context": _context(record),
                }
            )
        )
    return found


def _attachment(item: Attachment, base_url: str) -> Resource:
    """The file itself stays on the platform: its URL needs a login and is audited."""
    return {
        "contentType": item.media_type,
        "url": f"{base_url}/api/v1/attachments/{pk(item)}/original",
        "size": item.size_bytes,
        "title": item.filename,
        "creation": instant(item.created_at),
    }


def attachment_key(item: Attachment) -> str:
    """PDFs are documents; photos and audio are media."""
    if item.kind == AttachmentKind.pdf:
        return f"DocumentReference/attachment-{pk(item)}"
    return f"Media/{pk(item)}"


def attachment_resource(record: ConsultRecord, item: Attachment, base_url: str) -> Resource:
    subject = ref("Patient", pk(record.case))
    sha = [identifier(codes.SHA256, item.sha256)]
    if item.kind == AttachmentKind.pdf:
        return {
            "resourceType": "DocumentReference",
            "id": f"attachment-{pk(item)}",
            "identifier": sha,
            "status": "current",
            "subject": subject,
            "date": instant(item.created_at),
            "author": [ref("Practitioner", item.uploaded_by_id)],
            "description": item.filename,
            "content": [{"attachment": _attachment(item, base_url)}],
            "context": _context(record),
        }
    return compact(
        {
            "resourceType": "Media",
            "id": str(pk(item)),
            "identifier": sha,
            "basedOn": [ref("ServiceRequest", record.consult_id)],
            "status": "completed",
            "type": concept(codes.MEDIA_TYPE, str(item.kind), str(item.kind).title()),
            "subject": subject,
            "encounter": ref("Encounter", record.consult_id),
            "createdDateTime": instant(item.created_at),
            "operator": ref("Practitioner", item.uploaded_by_id),
            "height": item.height,
            "width": item.width,
            "content": _attachment(item, base_url),
        }
    )
