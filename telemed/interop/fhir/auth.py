"""Who may export a consult's FHIR record: whoever may see the consult (the rule in
``telemed.consults.auth``, not repeated here). The export holds nothing the consult page
does not show, so a narrower rule would only send people to copy it by hand."""

from __future__ import annotations

from sqlmodel import Session

from telemed.accounts.models import User
from telemed.consults import auth as consult_auth
from telemed.consults.models import Consult


def can_export(session: Session, user: User, consult: Consult) -> bool:
    return consult_auth.can_view(session, user, consult)
