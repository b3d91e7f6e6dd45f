"""One consult's FHIR record, read as the consult itself is read: the caller has loaded
it through the consult's access rule, and the read is audited like opening the consult."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from telemed.accounts.models import User
from telemed.consults import service as consults
from telemed.consults.models import Consult
from telemed.interop.fhir import bundle
from telemed.interop.fhir.record import load_record
from telemed.interop.fhir.resources import build
from telemed.interop.fhir.resources.common import Resource, checked

#: The audit row's object type for a FHIR read of a consult.
AUDIT_OBJECT = "consult_fhir"


def everything(
    session: Session, user: User, consult: Consult, base_url: str, now: datetime
) -> Resource:
    """The consult's searchset Bundle, every resource checked against its R4B model.
    ``consult`` must come from ``consults.auth.get_visible_consult``."""
    resources = [checked(r) for r in build(load_record(session, consult), base_url)]
    consults.record_read(session, user, consult, AUDIT_OBJECT)
    return bundle.searchset(resources, base_url, now)
