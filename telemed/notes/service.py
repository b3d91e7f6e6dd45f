"""Writing, signing and amending notes; recording outcomes; follow-ups due."""

from __future__ import annotations

import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from telemed.accounts.models import User
from telemed.audit import service as audit
from telemed.audit.models import AuditAction
from telemed.consults import auth as consult_auth
from telemed.consults import reasons
from telemed.consults import service as consults
from telemed.consults.models import Consult, ConsultMode, ConsultState
from telemed.db import pk, utcnow
from telemed.errors import Conflict, NotFound, ValidationFailed
from telemed.i18n import N_
from telemed.notes import auth, icd10, repository
from telemed.notes.models import ConsultNote, ConsultOutcome, NoteDiagnosis, NoteStatus
from telemed.notes.schemas import (
    DiagnosisPublic,
    FollowUpPublic,
    NoteAmend,
    NoteFields,
    NotePublic,
    OutcomeIn,
)

# A follow-up shows on the clinician's home from this many days before its date.
FOLLOW_UP_NOTICE_DAYS = 3


# An outcome recorded on a finished consult closes it (the follow-up, if any, is done).
CLOSED_BY_OUTCOME = frozenset(
    {ConsultState.completed, ConsultState.answered_async, ConsultState.follow_up_due}
)


def _diagnoses(codes: list[str]) -> list[icd10.Icd10Code]:
    found: list[icd10.Icd10Code] = []
    for code in codes:
        if not code.strip():
            continue
        item = icd10.lookup(code)
        if item.code in {d.code for d in found}:
            raise ValidationFailed(
                N_("ICD-10 code %(code)s is listed twice"),
                code=item.code,
                field="diagnoses",
            )
        found.append(item)
    return found


def _apply(session: Session, note: ConsultNote, data: NoteFields) -> None:
    diagnoses = _diagnoses(data.diagnoses)  # validate before writing anything
    for name in ("subjective", "objective", "assessment", "plan", "follow_up_instruction"):
        setattr(note, name, getattr(data, name).strip())
    note.follow_up_on = data.follow_up_on
    note.updated_at = utcnow()
    session.add(note)
    session.flush()
    repository.replace_draft_diagnoses(
        session,
        pk(note),
        [
            NoteDiagnosis(note_id=pk(note), position=i, code=d.code, title=d.title)
            for i, d in enumerate(diagnoses)
        ],
    )


def _audit(
    session: Session, user: User, action: AuditAction, note: ConsultNote, consult: Consult
) -> None:
    audit.record(
        session,
        user,
        action,
        "note",
        pk(note),
        case_id=consult.case_id,
        consult_id=consult.id,
        detail=f"version {note.version}",
    )


def _refusals(
    session: Session, user: User, consult: Consult, object_id: int | str
) -> AbstractContextManager[None]:
    return audit.refusals_audited(
        session, user, "note", object_id, case_id=consult.case_id, consult_id=consult.id
    )


def create(session: Session, user: User, consult: Consult, data: NoteFields) -> ConsultNote:
    """A new note, as a draft (version 1 of a new series)."""
    with _refusals(session, user, consult, "new"):
        auth.ensure_can_write_note(session, user, consult)
        note = ConsultNote(
            consult_id=pk(consult),
            series_id=str(uuid.uuid4()),
            author_id=pk(user),
            author_role=str(user.role),
        )
        _apply(session, note, data)
        _audit(session, user, AuditAction.create, note, consult)
    return note


def get_for(session: Session, consult: Consult, note_id: int) -> ConsultNote:
    note = repository.get_note(session, note_id)
    if note is None or note.consult_id != consult.id:
        raise NotFound(N_("note %(note_id)s not found"), note_id=note_id)
    return note


def _ensure_editable(user: User, note: ConsultNote) -> None:
    auth.ensure_author(user, note)
    if note.status != NoteStatus.draft:
        raise Conflict(N_("a signed note is locked; amend it instead"), field="status")


def draft_to_edit(session: Session, user: User, consult: Consult, note_id: int) -> ConsultNote:
    """The draft its author opens in the edit form (an audited read). Refused, and audited,
    as a save would be: someone else's note, or a signed one (locked: amend it instead)."""
    note = get_for(session, consult, note_id)
    with _refusals(session, user, consult, note_id):
        _ensure_editable(user, note)
    audit.record_access(
        session,
        user,
        AuditAction.read,
        "note",
        note_id,
        case_id=consult.case_id,
        consult_id=consult.id,
        detail=f"version {note.version}, to edit",
    )
    return note


def update_draft(
    session: Session, user: User, consult: Consult, note: ConsultNote, data: NoteFields
) -> ConsultNote:
    with _refusals(session, user, consult, pk(note)):
        _ensure_editable(user, note)
        _apply(session, note, data)
        _audit(session, user, AuditAction.update, note, consult)
    return note


def sign(session: Session, user: User, consult: Consult, note: ConsultNote) -> ConsultNote:
    with _refusals(session, user, consult, pk(note)):
        return _sign(session, user, consult, note)


def _sign(session: Session, user: User, consult: Consult, note: ConsultNote) -> ConsultNote:
    auth.ensure_author(user, note)
    if note.status != NoteStatus.draft:
        raise Conflict(N_("this note version is already signed"), field="status")
    if note.author_role == "specialist":
        missing = [name for name in ("assessment", "plan") if not getattr(note, name).strip()]
        if missing:
            raise ValidationFailed(
                N_("a specialist's note needs %(missing)s before signing"),
                missing=" and ".join(missing),
                field=missing[0],
            )
        if not repository.diagnoses_of(session, [pk(note)]).get(pk(note)):
            raise ValidationFailed(
                N_("a specialist's note needs at least one ICD-10 diagnosis before signing"),
                field="diagnoses",
            )
    note.status = NoteStatus.signed
    note.signed_at = utcnow()
    session.add(note)
    _audit(session, user, AuditAction.sign, note, consult)
    if (
        note.author_role == "specialist"
        and consult.state == ConsultState.accepted
        and consult.mode == ConsultMode.asynchronous
    ):
        # The signed advice is the answer to an asynchronous question.
        consults.transition(
            session,
            consult,
            ConsultState.answered_async,
            actor=user,
            reason=reasons.english(reasons.ANSWERED_BY_NOTE, name=user.full_name),
            at=note.signed_at,
        )
    session.flush()
    return note


def amend(
    session: Session, user: User, consult: Consult, note: ConsultNote, data: NoteAmend
) -> ConsultNote:
    """A new draft version of a signed note, linked to it, with the reason."""
    with _refusals(session, user, consult, pk(note)):
        return _amend(session, user, consult, note, data)


def _amend(
    session: Session, user: User, consult: Consult, note: ConsultNote, data: NoteAmend
) -> ConsultNote:
    auth.ensure_author(user, note)
    latest = repository.latest_version(session, note.series_id)
    if latest is None or latest.id != note.id:
        raise Conflict(
            N_("version %(note_version)s has been amended already; amend the latest version"),
            note_version=note.version,
            field="version",
        )
    if note.status != NoteStatus.signed:
        raise Conflict(N_("a draft is edited, not amended"), field="status")
    amendment = ConsultNote(
        consult_id=note.consult_id,
        series_id=note.series_id,
        version=note.version + 1,
        amends_id=note.id,
        amendment_reason=data.reason.strip(),
        author_id=pk(user),
        author_role=note.author_role,
    )
    try:
        _apply(session, amendment, data)
        _audit(session, user, AuditAction.amend, amendment, consult)
        session.flush()
    except IntegrityError as exc:  # a concurrent amendment took this version number
        raise Conflict(N_("the note was amended meanwhile; reload and try again")) from exc
    return amendment


def record_outcome(
    session: Session, user: User, consult: Consult, data: OutcomeIn, now: datetime
) -> ConsultOutcome:
    with audit.refusals_audited(
        session, user, "outcome", "new", case_id=consult.case_id, consult_id=consult.id
    ):
        auth.ensure_can_record_outcome(user, consult)
        outcome = ConsultOutcome(
            consult_id=pk(consult),
            outcome=data.outcome,
            detail=data.detail.strip(),
            recorded_by_id=pk(user),
        )
        session.add(outcome)
        session.flush()
        audit.record(
            session,
            user,
            AuditAction.create,
            "outcome",
            pk(outcome),
            case_id=consult.case_id,
            consult_id=consult.id,
            detail=str(data.outcome),
        )
        if consult.state in CLOSED_BY_OUTCOME:
            consults.transition(
                session,
                consult,
                ConsultState.closed,
                actor=user,
                reason=reasons.english(
                    reasons.OUTCOME_RECORDED, outcome=str(data.outcome).replace("_", " ")
                ),
                at=now,
            )
    return outcome


def public(session: Session, notes: list[ConsultNote]) -> list[NotePublic]:
    diagnoses = repository.diagnoses_of(session, [pk(n) for n in notes])
    return [
        NotePublic.model_validate(
            {
                **{k: getattr(n, k) for k in NotePublic.model_fields if k != "diagnoses"},
                "diagnoses": [DiagnosisPublic.model_validate(d) for d in diagnoses.get(pk(n), [])],
            }
        )
        for n in notes
    ]


@dataclass(frozen=True)
class NoteSeries:
    """All versions of one note, oldest first; ``current`` is the latest signed one."""

    versions: list[NotePublic]

    @property
    def current(self) -> NotePublic | None:
        signed = [v for v in self.versions if v.status == NoteStatus.signed]
        return signed[-1] if signed else None

    @property
    def latest(self) -> NotePublic:
        return self.versions[-1]


def series_of(session: Session, consult_ids: list[int]) -> list[NoteSeries]:
    grouped: dict[str, list[NotePublic]] = {}
    for note in public(session, repository.notes_of(session, consult_ids)):
        grouped.setdefault(note.series_id, []).append(note)
    return [NoteSeries(sorted(v, key=lambda n: n.version)) for v in grouped.values()]


def visible_series(session: Session, user: User, consult_ids: list[int]) -> list[NoteSeries]:
    """Series as ``user`` may see them: drafts only for their author."""
    shown = []
    for series in series_of(session, consult_ids):
        versions = [
            v for v in series.versions if v.status == NoteStatus.signed or v.author_id == user.id
        ]
        if versions:
            shown.append(NoteSeries(versions))
    return shown


def follow_ups_for(session: Session, user: User, now: datetime) -> list[FollowUpPublic]:
    """Follow-ups of the clinician's facility that are due soon or overdue, by the date
    in the clinician's own zone at ``now``. Nobody else's: another role recorded with a
    facility does not see its patients (``consults.auth.clinician_facility``)."""
    facility = consult_auth.clinician_facility(user)
    if facility is None:
        return []
    today = now.astimezone(ZoneInfo(user.timezone)).date()
    rows = repository.follow_ups(session, facility, today + timedelta(days=FOLLOW_UP_NOTICE_DAYS))
    return [
        FollowUpPublic(
            consult_id=note.consult_id,
            patient_ref=case.patient_ref,
            follow_up_on=note.follow_up_on or today,
            instruction=note.follow_up_instruction,
            overdue=(note.follow_up_on or today) < today,
        )
        for note, case in rows
    ]
