"""Recording consent and withdrawing it, and the rules the other domains enforce with it.

Offers (``offers.service``) make no offer and take no assignment without a sharing consent
in force (``ensure_sharing``, ``given_among``); sessions mint no call ticket without a call
consent in force (``ensure_call``). The rules live in those services, not in views, so the
periodic offer run, the API and the pages all obey them.

Every record and withdrawal locks the consult row first, the lock order the offers use, so
that a withdrawal and an accept never interleave: whichever comes second sees the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from telemed.accounts.models import User
from telemed.attachments import repository as attachments_repository
from telemed.attachments.models import AttachmentKind
from telemed.audit import service as audit
from telemed.audit.models import AuditAction
from telemed.consent import auth, repository
from telemed.consent.models import (
    ConsentAction,
    Consenter,
    ConsentMethod,
    ConsentRecord,
    ConsentScope,
)
from telemed.consent.schemas import ConsentAtRequest, ConsenterFields, ConsentIn, WithdrawIn
from telemed.consults import repository as consults_repository
from telemed.consults.lifecycle import FINAL_STATES
from telemed.consults.models import Consult, ConsultState
from telemed.db import pk
from telemed.errors import Conflict, ConsentRequired, NotFound, ValidationFailed
from telemed.i18n import N_

#: A device clock a little ahead of ours is not "the future".
CLOCK_SKEW = timedelta(minutes=5)

SCOPE_LABELS = {ConsentScope.sharing: "share the case", ConsentScope.call: "a call"}


@dataclass(frozen=True)
class ConsentState:
    """The latest record of each scope (None: never recorded). This is what the FHIR
    export maps to a ``Consent`` resource: a ``given`` record is ``active``, a
    ``withdrawn`` one ``inactive``."""

    sharing: ConsentRecord | None
    call: ConsentRecord | None

    @property
    def sharing_given(self) -> bool:
        return self.sharing is not None and self.sharing.action == ConsentAction.given

    @property
    def call_given(self) -> bool:
        return self.call is not None and self.call.action == ConsentAction.given


def current(session: Session, consult_id: int) -> ConsentState:
    """The consent in force for the consult, per scope. Not audited: the callers that show
    it to someone audit their own read."""
    return ConsentState(
        sharing=repository.latest(session, consult_id, ConsentScope.sharing),
        call=repository.latest(session, consult_id, ConsentScope.call),
    )


def given_among(session: Session, consult_ids: Iterable[int], scope: ConsentScope) -> set[int]:
    """Those of the consults whose consent of ``scope`` is in force (the offer run's filter)."""
    return repository.given_among(session, consult_ids, scope)


def ensure_sharing(session: Session, consult: Consult) -> None:
    """409 ``consent_required`` unless the patient's consent to share the case is in force."""
    if not current(session, pk(consult)).sharing_given:
        raise ConsentRequired(
            N_(
                "the patient has not consented to sharing this case with a specialist abroad (or "
                "withdrew it): record their consent on the consult page first"
            ),
            field="consent",
        )


def ensure_call(session: Session, consult: Consult) -> None:
    """409 ``consent_required`` unless the patient's consent to a call is in force."""
    if not current(session, pk(consult)).call_given:
        raise ConsentRequired(
            N_(
                "the patient has not consented to a call (or withdrew it): the clinician records "
                "the call consent on the consult page first; meanwhile use the messages"
            ),
            field="consent",
        )


# --- checking what was typed -------------------------------------------------------------


def _check_consenter(data: ConsenterFields, prefix: str) -> None:
    if data.consenter == Consenter.guardian:
        if not data.guardian_name.strip():
            raise ValidationFailed(N_("give the guardian's name"), field=f"{prefix}guardian_name")
        if not data.guardian_relationship.strip():
            raise ValidationFailed(
                N_("say how the guardian is related to the patient"),
                field=f"{prefix}guardian_relationship",
            )


def _check_witness(method: ConsentMethod, witness_name: str, prefix: str) -> None:
    if method == ConsentMethod.witnessed and not witness_name.strip():
        raise ValidationFailed(
            N_("witnessed consent needs the witness's name"), field=f"{prefix}witness_name"
        )


def check_at_request(data: ConsentAtRequest) -> None:
    """The consent typed on a consult request, checked before anything is stored."""
    _check_consenter(data, "consent.")
    if data.method == ConsentMethod.written:
        raise ValidationFailed(
            N_(
                "a written consent needs the photo of the signed form: request the consult, attach"
                " the photo, then record the consent on the consult page"
            ),
            field="consent.method",
        )
    _check_witness(data.method, data.witness_name, "consent.")


def _given_at(given_at: datetime | None, now: datetime) -> datetime:
    if given_at is None:
        return now
    if given_at > now + CLOCK_SKEW:
        raise ValidationFailed(N_("consent cannot be given in the future"), field="given_at")
    return given_at


def _check_photo(session: Session, consult: Consult, data: ConsentIn) -> int | None:
    if data.method != ConsentMethod.written:
        return None  # a photo given with verbal consent is not evidence of anything
    if data.photo_attachment_id is None:
        raise ValidationFailed(
            N_(
                "written consent needs the photo of the signed form: attach it to the consult and "
                "choose it"
            ),
            field="photo_attachment_id",
        )
    photo = attachments_repository.get_attachment(session, data.photo_attachment_id)
    if photo is None or photo.consult_id != consult.id:
        raise NotFound(
            N_("attachment %(attachment_id)s is not one of this consult's"),
            attachment_id=data.photo_attachment_id,
            field="photo_attachment_id",
        )
    if photo.kind != AttachmentKind.image:
        raise ValidationFailed(
            N_("the signed form must be a photo (an image attachment)"), field="photo_attachment_id"
        )
    return pk(photo)


# --- recording ---------------------------------------------------------------------------


def _lock(session: Session, consult: Consult) -> Consult:
    locked = consults_repository.lock_consult(session, pk(consult))
    if locked is None:
        raise NotFound(N_("consult %(consult_id)s not found"), consult_id=pk(consult))
    return locked


def _describe(row: ConsentRecord) -> str:
    who = (
        "patient"
        if row.consenter == Consenter.patient
        else (f"guardian {row.guardian_name} ({row.guardian_relationship})")
    )
    how = f", {row.method}" if row.method else ""
    if row.method == ConsentMethod.witnessed:
        how += f" before {row.witness_name}"
    if row.photo_attachment_id is not None:
        how += f", form in attachment {row.photo_attachment_id}"
    return f"{row.scope} consent {row.action} by the {who}{how}"[:500]


def _insert(
    session: Session,
    user: User,
    consult: Consult,
    data: ConsentIn | WithdrawIn,
    action: ConsentAction,
    given_at: datetime,
    now: datetime,
    **details: Any,
) -> ConsentRecord:
    """The new row (who consented, to what, when; ``details`` says how), and its audit row."""
    row = ConsentRecord(
        consult_id=pk(consult),
        case_id=consult.case_id,
        scope=data.scope,
        action=action,
        consenter=data.consenter,
        guardian_name=data.guardian_name.strip(),
        guardian_relationship=data.guardian_relationship.strip(),
        given_at=given_at,
        recorded_by_id=pk(user),
        recorded_at=now,
        **details,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        user,
        AuditAction.create,
        "consent",
        pk(row),
        case_id=consult.case_id,
        consult_id=pk(consult),
        detail=_describe(row),
    )
    return row


def record(
    session: Session, user: User, consult: Consult, data: ConsentIn, now: datetime
) -> ConsentRecord:
    """Record consent given (a new row; an earlier one, given or withdrawn, stays)."""
    auth.ensure_can_record(session, user, consult)
    _check_consenter(data, "")
    _check_witness(data.method, data.witness_name, "")
    given_at = _given_at(data.given_at, now)
    photo_id = _check_photo(session, consult, data)
    consult = _lock(session, consult)
    if ConsultState(consult.state) in FINAL_STATES:
        raise Conflict(
            N_("the consult is %(state)s: there is nothing left to consent to"),
            state=consult.state,
        )
    witnessed = data.method == ConsentMethod.witnessed
    return _insert(
        session,
        user,
        consult,
        data,
        ConsentAction.given,
        given_at,
        now,
        method=data.method,
        witness_name=data.witness_name.strip() if witnessed else "",
        photo_attachment_id=photo_id,
    )


def record_at_request(
    session: Session, user: User, consult: Consult, data: ConsentAtRequest, now: datetime
) -> list[ConsentRecord]:
    """The consent taken with a consult request (already checked by ``check_at_request``):
    one record per scope consented to."""
    scopes = [
        s
        for s, wanted in ((ConsentScope.sharing, data.sharing), (ConsentScope.call, data.call))
        if wanted
    ]
    fields = data.model_dump(
        include={"consenter", "guardian_name", "guardian_relationship", "method", "witness_name"}
    )
    return [
        record(session, user, consult, ConsentIn(scope=scope, **fields), now) for scope in scopes
    ]


def withdraw(
    session: Session, user: User, consult: Consult, data: WithdrawIn, now: datetime
) -> ConsentRecord:
    """Record a withdrawal; 409 when no consent of that scope is in force. What it stops is
    the callers' to do (``flows.consent_withdrawn``: open offers withdrawn)."""
    auth.ensure_can_record(session, user, consult)
    _check_consenter(data, "")
    given_at = _given_at(data.given_at, now)
    consult = _lock(session, consult)
    latest = repository.latest(session, pk(consult), data.scope)
    if latest is None or latest.action != ConsentAction.given:
        raise Conflict(
            N_("there is no consent to %(scope)s in force to withdraw"),
            scope=SCOPE_LABELS[data.scope],
            field="scope",
        )
    return _insert(
        session,
        user,
        consult,
        data,
        ConsentAction.withdrawn,
        given_at,
        now,
        reason=data.reason.strip(),
    )


def records(session: Session, user: User, consult: Consult) -> list[ConsentRecord]:
    """Every record of the consult, oldest first; the read is audited."""
    audit.record_access(
        session,
        user,
        AuditAction.read,
        "consents",
        pk(consult),
        case_id=consult.case_id,
        consult_id=pk(consult),
    )
    return repository.records_of(session, pk(consult))
