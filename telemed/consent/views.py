"""Consent forms of the consult page (without JavaScript). Refused, the consult page is
shown again with the error beside its field and nothing stored."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from telemed.consent import forms, service
from telemed.consults.deps import CurrentConsult
from telemed.deps import CurrentUser, NowDep, PolicyDep, SessionDep
from telemed.errors import Conflict, NotFound, ValidationFailed
from telemed.flows import consent_recorded, consent_withdrawn
from telemed.web.pages.consult import ConsultPageDep

router = APIRouter(include_in_schema=False)


def _refused(
    page: ConsultPageDep, prefix: str, errors: dict[str, str], values: dict[str, str], status: int
) -> Response:
    """The consult page again, the errors beside the fields of the form that was sent."""
    named = {prefix + name: message for name, message in errors.items()}
    return page.render(named, {prefix + k: v for k, v in values.items()}, status)


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
    prefix = forms.RECORD_PREFIX
    values = forms.record_values(await request.form(), prefix)
    try:
        data = forms.to_consent_in(values)
    except ValidationError as exc:
        return _refused(page, prefix, forms.record_errors(exc), values, 422)
    try:
        row = service.record(db, user, consult, data, now)
    except (ValidationFailed, Conflict, NotFound) as exc:
        errors = {exc.field or "__all__": exc.message}
        return _refused(page, prefix, errors, values, exc.status_code)
    consent_recorded(db, consult, row, policy, now)
    return RedirectResponse(f"/consults/{consult.id}#consent", status_code=303)


@router.post("/consults/{consult_id}/consents/withdraw")
async def withdraw(
    request: Request,
    consult: CurrentConsult,
    page: ConsultPageDep,
    user: CurrentUser,
    db: SessionDep,
    now: NowDep,
) -> Response:
    prefix = forms.WITHDRAW_PREFIX
    values = forms.record_values(await request.form(), prefix)
    try:
        data = forms.to_withdraw_in(values)
    except ValidationError as exc:
        return _refused(page, prefix, forms.record_errors(exc), values, 422)
    try:
        row = service.withdraw(db, user, consult, data, now)
    except (ValidationFailed, Conflict) as exc:
        errors = {exc.field or "__all__": exc.message}
        return _refused(page, prefix, errors, values, exc.status_code)
    consent_withdrawn(db, consult, row, user, now)
    return RedirectResponse(f"/consults/{consult.id}#consent", status_code=303)
