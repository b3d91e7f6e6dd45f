"""Consult requests: creating them, editing drafts, and the lifecycle transition service.

``transition`` is the one way any domain (scheduling, sessions, notes) changes a consult's
state: it checks the move against the state machine, changes the state only if nobody else
changed it first, and appends the event. It does not commit: the caller's unit of work does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from telemed.accounts.models import User
from telemed.audit import service as audit
from telemed.audit.models import AuditAction
from telemed.cases.models import Case
from telemed.cases.schemas import CaseIn
from telemed.consults import auth, reasons, repository
from telemed.consults.lifecycle import TRANSITIONS, check_transition
from telemed.consults.models import (
    Consult,
    ConsultEvent,
    ConsultParticipant,
    ConsultState,
    ParticipantRelation,
)
from telemed.consults.schemas import ConsultCreate, ConsultFields, ConsultUpdate, Vitals
from telemed.db import pk
from telemed.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from telemed.i18n import N_


def transition(
    session: Session,
    consult: Consult,
    target: ConsultState,
    *,
    actor: User | None,
    reason: str = "",
    at: datetime,
) -> ConsultEvent:
    """Move ``consult`` to ``target`` at ``at`` and record who, when, from, to and why.

    ``at`` is the caller's "now" (from the application clock), never read here: one request
    or job run stamps every event it writes with the same time.

    Raises ``InvalidTransition`` for a move the lifecycle does not have, and ``Conflict``
    if the consult's state changed since it was read (e.g. two specialists accepting).
    """
    current = ConsultState(consult.state)
    check_transition(current, target)
    values: dict[str, Any] = {"state": target, "state_changed_at": at}
    if target is ConsultState.requested and consult.requested_at is None:
        values["requested_at"] = at
    if not repository.compare_and_set_state(session, pk(consult), current, values):
        raise Conflict(
            N_("consult %(consult_id)s changed while you were working on it; reload and try again"),
            consult_id=consult.id,
        )
    for name, value in values.items():
        setattr(consult, name, value)
    event = ConsultEvent(
        consult_id=pk(consult),
        actor_id=actor.id if actor else None,
        at=at,
        from_state=current,
        to_state=target,
        reason=reason.strip(),
    )
    session.add(event)
    session.flush()
    audit.record(
        session,
        actor,
        AuditAction.transition,
        "consult",
        pk(consult),
        case_id=consult.case_id,
        consult_id=consult.id,
        detail=f"{current} -> {target}",
    )
    return event


def record_fact(
    session: Session, consult: Consult, actor: User | None, reason: str, at: datetime
) -> None:
    """A lifecycle fact that does not change the state (one of several offers declined, the
    appointment moved): an event from the current state to itself."""
    state = ConsultState(consult.state)
    session.add(
        ConsultEvent(
            consult_id=pk(consult),
            actor_id=actor.id if actor else None,
            at=at,
            from_state=state,
            to_state=state,
            reason=reason,
        )
    )


def add_participant(
    session: Session, consult: Consult, user: User, relation: ParticipantRelation
) -> ConsultParticipant:
    """Involve a user (a specialist, an observer) in a consult; scheduling calls this."""
    participant = ConsultParticipant(consult_id=pk(consult), user_id=pk(user), relation=relation)
    session.add(participant)
    session.flush()
    return participant


def _check_specialty(session: Session, code: str) -> None:
    if repository.active_specialty(session, code) is None:
        raise ValidationFailed(N_("unknown specialty %(code)s"), code=repr(code), field="specialty")


def _vitals_columns(vitals: Vitals) -> dict[str, Any]:
    return vitals.model_dump()


def _case_for(session: Session, user: User, facility_id: int, data: ConsultCreate) -> Case:
    if data.case_id is not None:
        case = session.get(Case, data.case_id)
        if case is None or case.facility_id != facility_id:
            raise NotFound(N_("case %(case_id)s not found"), case_id=data.case_id, field="case_id")
        return case
    assert data.case is not None
    return _find_or_create_case(session, user, facility_id, data.case)


def _find_or_create_case(session: Session, user: User, facility_id: int, case_in: CaseIn) -> Case:
    case = repository.find_case(session, facility_id, case_in.patient_ref)
    if case is not None:
        if case.sex != case_in.sex:
            raise ValidationFailed(
                N_("patient %(ref)s is recorded as %(sex)s; check the reference"),
                ref=case_in.patient_ref,
                sex=case.sex,
                field="case.sex",
            )
        return case
    case = Case(
        patient_ref=case_in.patient_ref,
        age_years=case_in.age_years,
        birth_year=case_in.birth_year,
        sex=case_in.sex,
        facility_id=facility_id,
        created_by_id=pk(user),
    )
    session.add(case)
    session.flush()
    audit.record(session, user, AuditAction.create, "case", pk(case), case_id=case.id)
    return case


def create_consult(session: Session, user: User, data: ConsultCreate, now: datetime) -> Consult:
    """Create a consult (draft, or requested at once): all of it, or (refused) nothing."""
    facility_id = auth.ensure_can_create(user)
    _check_specialty(session, data.specialty)
    try:
        with session.begin_nested():  # refused: nothing of it stays in the caller's unit
            consult = _create(session, user, facility_id, data, now)
    except IntegrityError as exc:  # e.g. the same new patient created twice at once
        raise Conflict(N_("the patient record changed meanwhile; please submit again")) from exc
    return consult


def _create(
    session: Session, user: User, facility_id: int, data: ConsultCreate, now: datetime
) -> Consult:
    case = _case_for(session, user, facility_id, data)
    fields = data.model_dump(include=set(ConsultFields.model_fields) - {"vitals"})
    consult = Consult(
        case_id=pk(case),
        facility_id=facility_id,
        created_by_id=pk(user),
        created_at=now,
        state_changed_at=now,
        **fields,
        **_vitals_columns(data.vitals),
    )
    session.add(consult)
    session.flush()
    session.add(
        ConsultEvent(
            consult_id=pk(consult),
            actor_id=user.id,
            at=consult.created_at,
            from_state=None,
            to_state=ConsultState.draft,
            reason=reasons.english(reasons.CREATED),
        )
    )
    audit.record(
        session,
        user,
        AuditAction.create,
        "consult",
        pk(consult),
        case_id=case.id,
        consult_id=consult.id,
    )
    if data.submit:
        transition(session, consult, ConsultState.requested, actor=user, at=now)
    return consult


def update_draft(session: Session, user: User, consult: Consult, data: ConsultUpdate) -> Consult:
    auth.ensure_requesting_clinician(user, consult)
    if consult.state != ConsultState.draft:
        raise Conflict(
            N_("only a draft can be edited; this consult is '%(state)s'"),
            state=consult.state,
        )
    changes = data.model_dump(exclude_unset=True, exclude={"vitals"})
    if "specialty" in changes:
        _check_specialty(session, changes["specialty"])
    for name, value in changes.items():
        if value is not None:
            setattr(consult, name, value)
    if data.vitals is not None:
        for name, value in _vitals_columns(data.vitals).items():
            setattr(consult, name, value)
    session.add(consult)
    audit.record(
        session,
        user,
        AuditAction.update,
        "consult",
        pk(consult),
        case_id=consult.case_id,
        consult_id=consult.id,
        detail="draft edited: " + ", ".join(sorted(data.model_dump(exclude_unset=True))),
    )
    session.flush()
    return consult


def submit(session: Session, user: User, consult: Consult, now: datetime) -> Consult:
    """Send a draft to the specialists. Only a draft: the lifecycle also lets an accepted
    or scheduled consult go back to ``requested``, but that is a rematch the offers decide
    (a specialist withdrew), never a clinician pressing "submit" again, which would drop
    the booking and offer the consult anew."""
    auth.ensure_requesting_clinician(user, consult)
    state = ConsultState(consult.state)
    if state is not ConsultState.draft and ConsultState.requested in TRANSITIONS[state]:
        raise InvalidTransition(
            N_(
                "consult %(consult_id)s was submitted already (it is '%(state)s'); "
                "only a draft is submitted"
            ),
            consult_id=consult.id,
            state=state,
            field="state",
        )
    transition(session, consult, ConsultState.requested, actor=user, at=now)
    session.flush()
    return consult


def cancel(session: Session, user: User, consult: Consult, reason: str, now: datetime) -> Consult:
    auth.ensure_requesting_clinician(user, consult)
    if not reason.strip():
        raise ValidationFailed(N_("say why the consult is cancelled"), field="reason")
    transition(session, consult, ConsultState.cancelled, actor=user, reason=reason, at=now)
    session.flush()
    return consult


@dataclass(frozen=True)
class ConsultList:
    items: list[Consult]
    cases: dict[int, Case]
    page: int
    page_size: int
    has_next: bool


def list_visible(
    session: Session,
    user: User,
    *,
    page: int,
    page_size: int,
    state: ConsultState | None = None,
    with_cases: bool = False,
) -> ConsultList:
    visible: ColumnElement[bool] = auth.visibility_clause(user)
    rows = repository.list_consults(
        session, visible, limit=page_size + 1, offset=(page - 1) * page_size, state=state
    )
    items = rows[:page_size]
    cases = repository.list_cases_by_id(session, {c.case_id for c in items}) if with_cases else {}
    if items:  # which clinical records were shown to whom
        audit.record_access(
            session,
            user,
            AuditAction.list,
            "consult",
            f"page {page}",
            detail="consults " + ",".join(str(c.id) for c in items),
        )
    return ConsultList(items, cases, page, page_size, has_next=len(rows) > page_size)


def record_read(session: Session, user: User, consult: Consult, what: str = "consult") -> None:
    """Audit that ``user`` opened this consult's clinical content."""
    audit.record_access(
        session,
        user,
        AuditAction.read,
        what,
        pk(consult),
        case_id=consult.case_id,
        consult_id=consult.id,
    )


def vitals_of(consult: Consult) -> Vitals:
    # Stored values were validated on the way in; construct without re-validating.
    return Vitals.model_construct(**{name: getattr(consult, name) for name in Vitals.model_fields})
