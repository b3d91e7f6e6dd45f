"""The consult as a workflow: the request (ServiceRequest), its fulfilment (Task), the
booked session (Appointment), the teleconsultation itself (Encounter), the message thread
(Communication).

The consult's state has no single FHIR equivalent, so each resource gets the status that
fits it (the tables below) and the Task carries our state itself as ``businessStatus``.
"""

from __future__ import annotations

from telemed.appointments.models import Appointment, AppointmentStatus
from telemed.consults.models import ConsultState as S
from telemed.consults.models import Urgency
from telemed.db import pk
from telemed.interop.fhir import codes
from telemed.interop.fhir.record import ConsultRecord
from telemed.interop.fhir.resources.common import (
    Resource,
    annotation,
    compact,
    concept,
    identifier,
    instant,
    ref,
    text_concept,
)
from telemed.messages.models import Message
from telemed.notes.models import OUTCOME_LABELS  # the labels the consult page shows

PRIORITY = {Urgency.routine: "routine", Urgency.urgent: "urgent", Urgency.emergency: "stat"}

REQUEST_STATUS = {S.draft: "draft", S.cancelled: "revoked"} | {
    s: "completed" for s in (S.completed, S.closed, S.answered_async)
}  # any other state: "active"

TASK_STATUS = {
    S.draft: "draft",
    S.requested: "requested",
    S.offered: "received",
    S.accepted: "accepted",
    S.scheduled: "accepted",
    S.in_session: "in-progress",
    S.follow_up_due: "in-progress",
    S.escalated: "on-hold",
    S.completed: "completed",
    S.closed: "completed",
    S.answered_async: "completed",
    S.cancelled: "cancelled",
    S.no_show: "failed",
}

ENCOUNTER_STATUS = {
    S.in_session: "in-progress",
    S.completed: "finished",
    S.closed: "finished",
    S.answered_async: "finished",
    S.follow_up_due: "finished",
    S.cancelled: "cancelled",
    S.no_show: "cancelled",
}  # any other state: "planned"

APPOINTMENT_STATUS = {
    AppointmentStatus.scheduled: "booked",
    AppointmentStatus.cancelled: "cancelled",
    AppointmentStatus.completed: "fulfilled",
    AppointmentStatus.no_show: "noshow",
}


def _specialty(record: ConsultRecord) -> Resource:
    return concept(codes.SPECIALTY, record.specialty.code, record.specialty.name)


def _authored(record: ConsultRecord) -> str:
    consult = record.consult
    return instant(consult.requested_at or consult.created_at)


def service_request(record: ConsultRecord, observation_ids: list[str]) -> Resource:
    consult, cid = record.consult, record.consult_id
    notes = [
        annotation(f"{label}: {text}")
        for label, text in (
            ("History", consult.history),
            ("Examination", consult.examination),
            ("Current treatment", consult.current_treatment),
        )
        if text
    ]
    return compact(
        {
            "resourceType": "ServiceRequest",
            "id": str(cid),
            "language": str(consult.language),
            "identifier": [identifier(codes.CONSULT_ID, cid)],
            "status": REQUEST_STATUS.get(S(consult.state), "active"),
            "intent": "order",
            "priority": PRIORITY[Urgency(consult.urgency)],
            "code": _specialty(record),
            "subject": ref("Patient", pk(record.case)),
            "encounter": ref("Encounter", cid),
            "authoredOn": _authored(record),
            "requester": ref("PractitionerRole", consult.created_by_id),
            "performerType": _specialty(record),
            "performer": [ref("PractitionerRole", i) for i in record.assigned_specialist_ids()],
            "reasonCode": [text_concept(consult.question)],
            "supportingInfo": [ref("Observation", i) for i in observation_ids],
            "note": notes,
        }
    )


def task(record: ConsultRecord) -> Resource:
    consult, cid = record.consult, record.consult_id
    state = S(consult.state)
    assigned = record.assigned_specialist_ids()
    last_reason = next((e.reason for e in reversed(record.events) if e.reason), "")
    output = []
    if record.outcomes:
        latest = record.outcomes[-1]
        output.append(
            {
                "type": text_concept("Outcome of the consult"),
                "valueCodeableConcept": concept(
                    codes.OUTCOME, str(latest.outcome), OUTCOME_LABELS.get(latest.outcome)
                ),
            }
        )
    return compact(
        {
            "resourceType": "Task",
            "id": str(cid),
            "identifier": [identifier(codes.CONSULT_ID, cid)],
            "basedOn": [ref("ServiceRequest", cid)],
            "status": TASK_STATUS[state],
            "statusReason": text_concept(last_reason) if last_reason else None,
            "businessStatus": concept(codes.CONSULT_STATE, str(state)),
            "intent": "order",
            "priority": PRIORITY[Urgency(consult.urgency)],
            "focus": ref("ServiceRequest", cid),
            "for": ref("Patient", pk(record.case)),
            "encounter": ref("Encounter", cid),
            "executionPeriod": {"start": _authored(record)},
            "authoredOn": instant(consult.created_at),
            "lastModified": instant(consult.state_changed_at),
            "requester": ref("PractitionerRole", consult.created_by_id),
            "owner": ref("PractitionerRole", assigned[0]) if assigned else None,
            "output": output,
        }
    )


def encounter(record: ConsultRecord, conditions: list[tuple[str, int]]) -> Resource:
    """The teleconsultation, live or by messages: one per consult. ``conditions`` are the
    diagnoses' (Condition id, rank)."""
    consult, cid = record.consult, record.consult_id
    period: Resource = {}
    if record.calls:
        period["start"] = instant(record.calls[0].started_at)
        ended = [c.ended_at for c in record.calls if c.ended_at is not None]
        if ended and len(ended) == len(record.calls):
            period["end"] = instant(max(ended))
    people = [consult.created_by_id, *record.assigned_specialist_ids()]
    return compact(
        {
            "resourceType": "Encounter",
            "id": str(cid),
            "identifier": [identifier(codes.CONSULT_ID, cid)],
            "status": ENCOUNTER_STATUS.get(S(consult.state), "planned"),
            "class": {"system": codes.ACT_CODE, "code": "VR", "display": "virtual"},
            "serviceType": _specialty(record),
            "priority": text_concept(str(consult.urgency)),
            "subject": ref("Patient", pk(record.case)),
            "basedOn": [ref("ServiceRequest", cid)],
            "participant": [{"individual": ref("Practitioner", i)} for i in people],
            "appointment": [ref("Appointment", pk(a)) for a in record.appointments],
            "period": period,
            "diagnosis": [
                {"condition": ref("Condition", condition_id), "rank": rank}
                for condition_id, rank in conditions
            ],
            "serviceProvider": ref("Organization", pk(record.facility)),
        }
    )


def appointment(record: ConsultRecord, booked: Appointment) -> Resource:
    return {
        "resourceType": "Appointment",
        "id": str(pk(booked)),
        "identifier": [identifier(codes.APPOINTMENT_UID, booked.uid)],
        "status": APPOINTMENT_STATUS[AppointmentStatus(booked.status)],
        "serviceType": [_specialty(record)],
        "start": instant(booked.starts_at),
        "end": instant(booked.ends_at),
        "minutesDuration": max(1, int((booked.ends_at - booked.starts_at).total_seconds() // 60)),
        "created": instant(booked.created_at),
        "basedOn": [ref("ServiceRequest", record.consult_id)],
        "participant": [
            {"actor": ref("Patient", pk(record.case)), "status": "accepted"},
            {"actor": ref("Practitioner", booked.specialist_id), "status": "accepted"},
        ],
    }


def communication(record: ConsultRecord, message: Message, shared: list[str]) -> Resource:
    """A message of the thread; ``shared`` are the Media or DocumentReference keys of the
    files posted with it."""
    payload: list[Resource] = [{"contentString": message.body}] if message.body else []
    payload += [{"contentReference": {"reference": k}} for k in shared]
    return compact(
        {
            "resourceType": "Communication",
            "id": str(pk(message)),
            "basedOn": [ref("ServiceRequest", record.consult_id)],
            "status": "completed",
            "subject": ref("Patient", pk(record.case)),
            "encounter": ref("Encounter", record.consult_id),
            "sent": instant(message.created_at),
            "sender": ref("Practitioner", message.author_id),
            "payload": payload,
        }
    )
