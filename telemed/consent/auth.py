"""Who may record consent: the clinicians of the requesting facility, who are with the
patient. The facility rule itself is ``consults.auth``'s; here it is only applied, and a
refusal audited. Who may read consent is who may see the consult (``CurrentConsult``)."""

from __future__ import annotations

from sqlmodel import Session

from telemed.accounts.models import User
from telemed.audit import service as audit
from telemed.consults import auth as consult_auth
from telemed.consults.models import Consult
from telemed.db import pk
from telemed.errors import Forbidden
from telemed.i18n import N_


def can_record(user: User, consult: Consult) -> bool:
    return consult_auth.is_requesting_clinician(user, consult)


def ensure_can_record(session: Session, user: User, consult: Consult) -> None:
    """403, audited (the row persists although the request fails)."""
    if can_record(user, consult):
        return
    audit.record_refusal(
        session,
        user,
        "consent",
        pk(consult),
        case_id=consult.case_id,
        consult_id=pk(consult),
        detail="not a clinician of the requesting facility",
    )
    raise Forbidden(
        N_("only a clinician of the requesting facility can record the patient's consent")
    )
