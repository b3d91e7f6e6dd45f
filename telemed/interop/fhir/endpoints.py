"""``GET /fhir/ServiceRequest/{id}/$everything``: one consult's FHIR record.

Access and audit are the consult's own: the consult is loaded through the dependency every
consult page and endpoint uses (``consults.deps.current_consult``: 404 whether it does not
exist or is not the user's to see, the refusal audited), and the read is audited like
opening the consult. Every error is an OperationOutcome (``FhirRoute``), since a FHIR
client cannot read the platform's JSON error body or an HTML login page.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from telemed.consults.deps import current_consult
from telemed.deps import CurrentUser, NowDep, SessionDep, SettingsDep
from telemed.errors import TelemedError
from telemed.interop.fhir import service
from telemed.interop.fhir.outcome import FHIR_JSON, FhirResponse, error_response, outcome_response
from telemed.interop.fhir.resources.common import InvalidResource
from telemed.validation import MAX_ID
from telemed.web.access import CONSULT_READERS

log = logging.getLogger(__name__)

#: A consult id as FHIR carries it: digits only, and small enough for the database.
CONSULT_ID = re.compile(r"[0-9]{1,10}")  # and at most MAX_ID: past it, no consult of ours

OUTCOMES: dict[int | str, dict[str, Any]] = {
    code: {"description": "OperationOutcome", "content": {FHIR_JSON: {}}}
    for code in (400, 401, 404)
}


class FhirRoute(APIRoute):
    """Turns our errors, raised by the endpoint or by its dependencies (no login, a wrong
    CSRF token), into OperationOutcomes. The request's unit of work has already ended by
    then (rolled back, the audit row of a refusal written)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def fhir_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except TelemedError as exc:
                return error_response(exc)
            except RequestValidationError as exc:
                return outcome_response(400, str(exc.errors()[:1]))
            except InvalidResource:
                log.exception("FHIR resource refused by its R4B model on %s", request.url.path)
                return outcome_response(500, "the record could not be exported; nothing was sent")

        return fhir_handler


router = APIRouter(prefix="/fhir", tags=["fhir"], route_class=FhirRoute)


@router.get(
    "/ServiceRequest/{id}/$everything",
    response_class=FhirResponse,
    responses={200: {"content": {FHIR_JSON: {}}}, **OUTCOMES},
)
def everything(
    id: str,  # FHIR's name for it
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> FhirResponse:
    """A searchset Bundle of one consult: ServiceRequest, Task, Encounter, Appointment,
    Communication, Observation (vitals), Condition (ICD-10), DocumentReference, Media,
    Patient (pseudonymous), Practitioner, PractitionerRole, Organization, Consent and
    Provenance. 404 (an OperationOutcome) whether the consult does not exist or is not
    yours to see."""
    if not CONSULT_ID.fullmatch(id) or int(id) > MAX_ID:
        raise TelemedError(f"id: {id!r} is not a consult id (digits only)", field="id")
    consult = current_consult(int(id), user, db)
    bundle = service.everything(db, user, consult, settings.public_base_url, now)
    return FhirResponse(bundle)


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {"everything": CONSULT_READERS}
