"""The FHIR resources of one consult, by family: ``workflow`` (the request and what
happened to it), ``findings`` (what was measured, diagnosed, written, shared), ``parties``
(patient, practitioners, facility), ``governance`` (consent, provenance).

:func:`build` returns them all, the ServiceRequest first; every reference in them points
at another resource of the same list.
"""

from __future__ import annotations

from telemed.db import pk
from telemed.interop.fhir.record import ConsultRecord
from telemed.interop.fhir.resources import findings, governance, parties, workflow
from telemed.interop.fhir.resources.common import Resource


def build(record: ConsultRecord, base_url: str) -> list[Resource]:
    """Every resource of the consult. ``base_url`` is the platform's address, for the
    links to attached files."""
    observations = findings.observations(record)
    conditions = findings.conditions(record)
    ranked = [
        (condition["id"], rank)
        for found in conditions.values()
        for rank, condition in enumerate(found, start=1)
    ]
    base = base_url.rstrip("/")
    files = [findings.attachment_resource(record, a, base) for a in record.attachments]
    shared: dict[int, list[str]] = {}
    for item in record.attachments:
        if item.message_id is not None:
            shared.setdefault(item.message_id, []).append(findings.attachment_key(item))
    request = workflow.service_request(record, [o["id"] for o in observations])
    task = workflow.task(record)
    return [
        request,
        task,
        workflow.encounter(record, ranked),
        *(workflow.appointment(record, a) for a in record.appointments),
        *(workflow.communication(record, m, shared.get(pk(m), [])) for m in record.messages),
        *observations,
        *(c for found in conditions.values() for c in found),
        *findings.note_documents(record),
        *files,
        *parties.parties(record),
        *governance.consents(record),
        *governance.provenances(record, [request, task, *observations], conditions),
    ]
