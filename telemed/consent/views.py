"""Consent forms of the consult page (without JavaScript). Refused, the consult page is
shown again with the error beside its field and nothing stored."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from telemed.consent import forms, service
from telemed.consent.models import ConsentRecord
from telemed.consults.deps import CurrentConsult
from telemed.deps import CurrentUser, NowDep, PolicyDep, SessionDep
from telemed.errors import Conflict, NotFound, ValidationFailed
from telemed.flows import consent_recorded, consent_withdrawn
from telemed.web.access import REQUESTING_CLINICIANS
from telemed.web.pages.consult import ConsultPageDep

router = APIRouter(include_in_schema=False)


def _refused(
    page: ConsultPageDep, prefix: str, errors: dict[str, str], values: dict[str, str], status: int
) -> Response:
    """The consult page again, the errors beside the fields of the form that was sent."""
    named = {prefix + name: message for name, message in errors.items()}
    return page.render(named, {prefix + k: v for k, v in values.items()}, status)


async def _handle(
    request: Request,
    page: ConsultPageDep,
    prefix: str,
    act: Callable[[dict[str, str]], ConsentRecord],
    after: Callable[[ConsentRecord], None],
) -> Response:
    """One consent form: parse, act, then the flow that follows; refused, the page again
    (the service raises before storing anything, so nothing stays half-way)."""
    values = forms.record_values(await request.form(), prefix)
    try:
        row = act(values)
    except ValidationError as exc:
        return _refused(page, prefix, forms.record_errors(exc), values, 422)
    except (ValidationFailed, Conflict, NotFound) as exc:
        errors = {exc.field or "__all__": exc.shown()}
        return _refused(page, prefix, errors, values, exc.status_code)
    after(row)
    return RedirectResponse(f"/consults/{page.consult.id}#consent", status_code=303)


@router.post("/consults/{consult_id}/consents")
async def record(
    request: Request,
    consult: CurrentConsult,
    page: ConsultPageDep,
    user: CurrentUser,
    db: SessionDep,
    now: NowDep,
    policy: PolicyDep,
) -> Response:
    return await _handle(
        request,
        page,
        forms.RECORD_PREFIX,
        lambda values: service.record(db, user, consult, forms.to_consent_in(values), now),
        lambda row: consent_recorded(db, consult, row, policy, now),
    )


@router.post("/consults/{consult_id}/consents/withdraw")
async def withdraw(
    request: Request,
    consult: CurrentConsult,
    page: ConsultPageDep,
    user: CurrentUser,
    db: SessionDep,
    now: NowDep,
) -> Response:
    return await _handle(
        request,
        page,
        forms.WITHDRAW_PREFIX,
        lambda values: service.withdraw(db, user, consult, forms.to_withdraw_in(values), now),
        lambda row: consent_withdrawn(db, consult, row, user, now),
    )


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {"record": REQUESTING_CLINICIANS, "withdraw": REQUESTING_CLINICIANS}
