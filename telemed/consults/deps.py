"""The consult a request is about: one dependency for every page and endpoint under
``/consults/{consult_id}``, whatever domain serves it.

It loads the consult, answers 404 when it does not exist or is not the user's to see, and
audits a refused attempt (``auth.get_visible_consult``). FastAPI resolves it once per
request, so a view that also builds the consult page (``telemed.web.pages.consult``) loads
the consult once.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from telemed.consults import auth
from telemed.consults.models import Consult
from telemed.deps import CurrentUser, SessionDep
from telemed.validation import Id
from telemed.web.errors import error_responses

#: The errors of the consult API's operations, for their OpenAPI description.
ERRORS = error_responses(401, 403, 404, 409, 422)


def current_consult(consult_id: Id, user: CurrentUser, db: SessionDep) -> Consult:
    return auth.get_visible_consult(db, user, consult_id)


CurrentConsult = Annotated[Consult, Depends(current_consult)]


def call_consult(consult_id: Id, user: CurrentUser, db: SessionDep) -> Consult:
    """The consult of a call route: as ``CurrentConsult``, and also for its call guests."""
    return auth.get_call_consult(db, user, consult_id)


#: For the call page and the call ticket: call guests too (not the thread, not the record).
CallConsult = Annotated[Consult, Depends(call_consult)]
