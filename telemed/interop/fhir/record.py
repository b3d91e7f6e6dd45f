"""Everything the FHIR export needs about consults, loaded in a fixed number of queries.

``load_records`` takes a batch of consults and reads each related table once for the whole
batch (about fifteen queries, however many consults and messages), so the single-consult
``$everything`` and the bulk export share one loader and the bulk export's cost grows with
the rows, not with round trips. Only what belongs in the clinical record is loaded: signed
note versions (a draft is its author's work in progress), never uploads in progress.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from sqlalchemy import or_
from sqlmodel import Session, col, select

from telemed.accounts.models import User
from telemed.appointments.models import Appointment
from telemed.attachments.models import Attachment
from telemed.cases.models import Case
from telemed.consent import repository as consent_repository
from telemed.consent.models import ConsentRecord
from telemed.consults.models import (
    Consult,
    ConsultEvent,
    ConsultParticipant,
    ParticipantRelation,
    Specialty,
)
from telemed.db import pk, rows_grouped_by
from telemed.directory.models import SpecialistProfile, SpecialistSpecialty
from telemed.facilities.models import District, Facility
from telemed.messages.models import Message
from telemed.notes.models import ConsultNote, ConsultOutcome, NoteDiagnosis, NoteStatus
from telemed.sessions.models import CallSession


@dataclass
class ConsultRecord:
    """One consult and what it holds, with the people and places it names."""

    consult: Consult
    case: Case
    facility: Facility
    district: District
    specialty: Specialty
    events: list[ConsultEvent]
    participants: list[ConsultParticipant]
    messages: list[Message]
    attachments: list[Attachment]
    notes: list[ConsultNote]  # signed versions, oldest first
    diagnoses: dict[int, list[NoteDiagnosis]]  # by note id, principal first
    outcomes: list[ConsultOutcome]  # oldest first: the last one counts
    appointments: list[Appointment]  # oldest first
    calls: list[CallSession]  # oldest first
    consents: list[ConsentRecord] = field(default_factory=list)  # given and withdrawn, oldest first
    users: dict[int, User] = field(default_factory=dict)
    profiles: dict[int, SpecialistProfile] = field(default_factory=dict)
    #: The specialties each specialist practises (code, name), for their PractitionerRole.
    practises: dict[int, list[Specialty]] = field(default_factory=dict)

    @property
    def consult_id(self) -> int:
        return pk(self.consult)

    def assigned_specialist_ids(self) -> list[int]:
        return _unique(
            p.user_id for p in self.participants if p.relation == ParticipantRelation.assigned
        )

    def people_ids(self) -> list[int]:
        """Every user the record names: requester, specialists, authors, actors."""
        return _unique(
            [self.consult.created_by_id]
            + self.assigned_specialist_ids()
            + [m.author_id for m in self.messages]
            + [a.uploaded_by_id for a in self.attachments]
            + [n.author_id for n in self.notes]
            + [o.recorded_by_id for o in self.outcomes]
            + [a.specialist_id for a in self.appointments]
        )


def _unique(ids: Iterable[int]) -> list[int]:
    return list(dict.fromkeys(ids))


def load_records(session: Session, consults: Sequence[Consult]) -> list[ConsultRecord]:
    """The records of ``consults``, in the same order."""
    if not consults:
        return []
    ids = [pk(c) for c in consults]
    cases = _by_id(session, Case, {c.case_id for c in consults})
    facilities = _by_id(session, Facility, {c.facility_id for c in consults})
    districts = _by_id(session, District, {f.district_id for f in facilities.values()})
    specialties = {
        s.code: s
        for s in session.exec(
            select(Specialty).where(col(Specialty.code).in_({c.specialty for c in consults}))
        )
    }
    events = rows_grouped_by(
        session, ConsultEvent, "consult_id", ids, col(ConsultEvent.at), col(ConsultEvent.id)
    )
    participants = rows_grouped_by(
        session, ConsultParticipant, "consult_id", ids, col(ConsultParticipant.id)
    )
    messages = rows_grouped_by(
        session, Message, "consult_id", ids, col(Message.created_at), col(Message.id)
    )
    attachments = rows_grouped_by(
        session, Attachment, "consult_id", ids, col(Attachment.created_at), col(Attachment.id)
    )
    notes = _signed_notes(session, ids)
    note_ids = [pk(n) for found in notes.values() for n in found]
    diagnoses = rows_grouped_by(
        session, NoteDiagnosis, "note_id", note_ids, col(NoteDiagnosis.position)
    )
    outcomes = rows_grouped_by(
        session, ConsultOutcome, "consult_id", ids, col(ConsultOutcome.recorded_at)
    )
    appointments = rows_grouped_by(
        session, Appointment, "consult_id", ids, col(Appointment.created_at), col(Appointment.id)
    )
    calls = rows_grouped_by(
        session, CallSession, "consult_id", ids, col(CallSession.started_at), col(CallSession.id)
    )
    consents: dict[int, list[ConsentRecord]] = {}
    for row in consent_repository.records_of_many(session, ids):
        consents.setdefault(row.consult_id, []).append(row)
    records = [
        ConsultRecord(
            consult=c,
            case=cases[c.case_id],
            facility=facilities[c.facility_id],
            district=districts[facilities[c.facility_id].district_id],
            specialty=specialties[c.specialty],
            events=events[pk(c)],
            participants=participants[pk(c)],
            messages=messages[pk(c)],
            attachments=attachments[pk(c)],
            notes=notes.get(pk(c), []),
            diagnoses={pk(n): diagnoses[pk(n)] for n in notes.get(pk(c), [])},
            outcomes=outcomes[pk(c)],
            appointments=appointments[pk(c)],
            calls=calls[pk(c)],
            consents=consents.get(pk(c), []),
        )
        for c in consults
    ]
    people = {u for r in records for u in r.people_ids()}
    users = _by_id(session, User, people)
    profiles = {
        p.user_id: p
        for p in session.exec(
            select(SpecialistProfile).where(col(SpecialistProfile.user_id).in_(people))
        )
    }
    practises: dict[int, list[Specialty]] = {}
    for user_id, specialty in session.exec(
        select(SpecialistSpecialty.user_id, Specialty)
        .join(Specialty, col(Specialty.code) == col(SpecialistSpecialty.specialty_code))
        .where(col(SpecialistSpecialty.user_id).in_(people))
        .order_by(col(SpecialistSpecialty.user_id), col(Specialty.code))
    ):
        practises.setdefault(user_id, []).append(specialty)
    for record in records:
        named = record.people_ids()
        record.users = {i: users[i] for i in named if i in users}
        record.profiles = {i: profiles[i] for i in named if i in profiles}
        record.practises = {i: practises[i] for i in named if i in practises}
    return records


def load_record(session: Session, consult: Consult) -> ConsultRecord:
    return load_records(session, [consult])[0]


RowT = TypeVar("RowT", Case, Facility, District, User)


def _by_id(session: Session, model: type[RowT], ids: set[int]) -> dict[int, RowT]:
    if not ids:
        return {}
    column = getattr(model, "id")  # noqa: B009 - every model here has one
    return {pk(row): row for row in session.exec(select(model).where(column.in_(ids)))}


def _signed_notes(session: Session, consult_ids: list[int]) -> dict[int, list[ConsultNote]]:
    found: dict[int, list[ConsultNote]] = {}
    for note in session.exec(
        select(ConsultNote)
        .where(
            col(ConsultNote.consult_id).in_(consult_ids),
            col(ConsultNote.status) == NoteStatus.signed,
        )
        .order_by(col(ConsultNote.created_at), col(ConsultNote.id))
    ):
        found.setdefault(note.consult_id, []).append(note)
    return found


def consults_since(session: Session, since: datetime, batch: int) -> Iterator[list[Consult]]:
    """Consults created or moved to another state at or after ``since``, by id, ``batch``
    at a time (keyset pages: memory stays bounded however many there are)."""
    after = 0
    while True:
        page = list(
            session.exec(
                select(Consult)
                .where(
                    col(Consult.id) > after,
                    or_(col(Consult.created_at) >= since, col(Consult.state_changed_at) >= since),
                )
                .order_by(col(Consult.id))
                .limit(batch)
            )
        )
        if not page:
            return
        yield page
        after = pk(page[-1])
