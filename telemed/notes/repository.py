"""All SQL of notes and outcomes."""

from __future__ import annotations

from datetime import date

from sqlalchemy import delete, func, true
from sqlmodel import Session, col, select

from telemed.cases.models import Case
from telemed.consults.models import Consult
from telemed.db import rows_grouped_by
from telemed.notes.models import ConsultNote, ConsultOutcome, NoteDiagnosis, NoteStatus


def get_note(session: Session, note_id: int) -> ConsultNote | None:
    return session.get(ConsultNote, note_id)


def notes_of(session: Session, consult_ids: list[int]) -> list[ConsultNote]:
    if not consult_ids:
        return []
    return list(
        session.exec(
            select(ConsultNote)
            .where(col(ConsultNote.consult_id).in_(consult_ids))
            .order_by(col(ConsultNote.created_at), col(ConsultNote.id))
        )
    )


def diagnoses_of(session: Session, note_ids: list[int]) -> dict[int, list[NoteDiagnosis]]:
    return rows_grouped_by(session, NoteDiagnosis, "note_id", note_ids, col(NoteDiagnosis.position))


def replace_draft_diagnoses(session: Session, note_id: int, rows: list[NoteDiagnosis]) -> None:
    """Only for drafts: a trigger refuses this once the note is signed."""
    session.execute(delete(NoteDiagnosis).where(col(NoteDiagnosis.note_id) == note_id))
    session.add_all(rows)


def latest_version(session: Session, series_id: str) -> ConsultNote | None:
    return session.exec(
        select(ConsultNote)
        .where(ConsultNote.series_id == series_id)
        .order_by(col(ConsultNote.version).desc())
        .limit(1)
    ).first()


def outcomes_of(session: Session, consult_ids: list[int]) -> list[ConsultOutcome]:
    if not consult_ids:
        return []
    return list(
        session.exec(
            select(ConsultOutcome)
            .where(col(ConsultOutcome.consult_id).in_(consult_ids))
            .order_by(col(ConsultOutcome.recorded_at), col(ConsultOutcome.id))
        )
    )


def follow_ups(
    session: Session, facility_id: int | None, until: date
) -> list[tuple[ConsultNote, Case]]:
    """Signed current notes of the facility (None: of every facility) with a follow-up on
    or before ``until`` whose consult has no outcome recorded after the note was signed."""
    latest = (
        select(ConsultNote.series_id, func.max(ConsultNote.version).label("version"))
        .where(ConsultNote.status == NoteStatus.signed)
        .group_by(col(ConsultNote.series_id))
        .subquery()
    )
    later_outcome = (
        select(ConsultOutcome.id)
        .where(
            ConsultOutcome.consult_id == ConsultNote.consult_id,
            col(ConsultOutcome.recorded_at) >= col(ConsultNote.signed_at),
        )
        .exists()
    )
    rows = session.exec(
        select(ConsultNote, Case)
        .join(
            latest,
            (col(ConsultNote.series_id) == latest.c.series_id)
            & (col(ConsultNote.version) == latest.c.version),
        )
        .join(Consult, col(Consult.id) == col(ConsultNote.consult_id))
        .join(Case, col(Case.id) == col(Consult.case_id))
        .where(
            true() if facility_id is None else Consult.facility_id == facility_id,
            col(ConsultNote.follow_up_on).is_not(None),
            col(ConsultNote.follow_up_on) <= until,
            ~later_outcome,
        )
        .order_by(col(ConsultNote.follow_up_on))
    )
    return [(note, case) for note, case in rows]
