"""Directory pages: specialist self-registration, the availability editor, the
coordinators' verification queue."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from telemed.accounts.security import new_token, tokens_equal
from telemed.consults import repository as consults_repository
from telemed.consults.models import Language
from telemed.db import utcnow
from telemed.deps import CurrentUser, SessionDep, SettingsDep, client_address
from telemed.directory import auth, forms, service
from telemed.directory.models import RegistrationBody, VerificationStatus
from telemed.directory.schemas import RegistrationIn
from telemed.errors import TelemedError
from telemed.web.templating import render

router = APIRouter(include_in_schema=False)

# No session yet: a double-submit cookie stands in for the CSRF token, as on the login page.
REGISTER_CSRF_COOKIE = "telemed_register_csrf"
REGISTER_PATH = "/specialists/register"
LANGUAGE_NAMES = {Language.sesotho: "Sesotho", Language.english: "English"}


def _register_page(
    request: Request,
    db: Session,
    values: dict[str, Any],
    errors: dict[str, str],
    status: int = 200,
) -> HTMLResponse:
    token = request.cookies.get(REGISTER_CSRF_COOKIE) or new_token()
    response = render(
        request,
        "specialist_register.html",
        {
            "register_csrf": token,
            "values": values,
            "errors": errors,
            "specialties": [(s.code, s.name) for s in consults_repository.list_specialties(db)],
            "languages": [(lang.value, name) for lang, name in LANGUAGE_NAMES.items()],
            "bodies": [(b.value, b.value) for b in RegistrationBody],
        },
        status_code=status,
    )
    response.set_cookie(
        REGISTER_CSRF_COOKIE, token, httponly=True, samesite="strict", path=REGISTER_PATH
    )
    return response


@router.get(REGISTER_PATH)
def register_form(request: Request, db: SessionDep) -> HTMLResponse:
    return _register_page(
        request, db, {"languages": ["st", "en"], "specialties": [], "time_zone": ""}, {}
    )


@router.post(REGISTER_PATH)
async def register_submit(request: Request, db: SessionDep, settings: SettingsDep) -> Response:
    form = await request.form()
    values = forms.registration_values(form)
    cookie = request.cookies.get(REGISTER_CSRF_COOKIE, "")
    sent = str(form.get("csrf_token") or "")
    if not cookie or not tokens_equal(cookie, sent):
        errors = {"__all__": "Your form expired; please try again."}
        return _register_page(request, db, values, errors, 403)
    try:
        data = RegistrationIn.model_validate(values)
    except ValidationError as exc:
        return _register_page(request, db, values, forms.field_errors(exc), 422)
    try:
        service.register(db, settings, data, client_address(request))
    except TelemedError as exc:
        return _register_page(
            request, db, values, {exc.field or "__all__": exc.message}, exc.status_code
        )
    response = RedirectResponse("/login?next=/specialists/availability", status_code=303)
    response.delete_cookie(REGISTER_CSRF_COOKIE, path=REGISTER_PATH)
    return response


def _availability_page(
    request: Request,
    db: Session,
    settings: Any,
    user: Any,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> HTMLResponse:
    profile = service.get_profile(db, auth.ensure_specialist(user))
    upcoming = service.upcoming_slots(db, settings, user, utcnow(), timedelta(days=7))
    return render(
        request,
        "specialist_availability.html",
        {
            "values": values,
            "errors": errors,
            "weekdays": list(zip(forms.DAY_FIELDS, forms.WEEKDAYS, strict=True)),
            "profile": profile,
            "eligible": service.is_eligible(profile, utcnow().date()),
            "slots": upcoming[:40],
        },
        status_code=status,
    )


@router.get("/specialists/availability")
def availability_form(
    request: Request, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    values = forms.values_of(service.get_availability(db, user))
    return _availability_page(request, db, settings, user, values, {})


@router.post("/specialists/availability")
async def availability_submit(
    request: Request, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    auth.ensure_specialist(user)
    values = forms.availability_values(await request.form())
    try:
        data, window_fields, _ = forms.to_availability(values)
        service.set_availability(db, settings, user, data)
    except forms.FormErrors as exc:
        return _availability_page(request, db, settings, user, values, exc.errors, 422)
    except TelemedError as exc:
        if exc.status_code != 422:
            raise
        db.rollback()
        field = forms.error_field(exc.field, window_fields)
        return _availability_page(request, db, settings, user, values, {field: exc.message}, 422)
    return RedirectResponse("/specialists/availability", status_code=303)


@router.get("/coordinator/specialists")
def verification_queue(
    request: Request,
    user: CurrentUser,
    db: SessionDep,
    status: VerificationStatus | None = VerificationStatus.pending,
) -> HTMLResponse:
    profiles = service.queue(db, user, status)
    soon = service.expiring_registrations(db, utcnow().date())
    return render(
        request,
        "coordinator_specialists.html",
        {"profiles": profiles, "status": status, "expiring": soon},
    )


@router.post("/coordinator/specialists/{user_id}/verify")
def verify(
    user_id: int,
    user: CurrentUser,
    db: SessionDep,
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    service.verify(db, user, user_id, note)
    return RedirectResponse("/coordinator/specialists", status_code=303)


@router.post("/coordinator/specialists/{user_id}/reject")
def reject(
    user_id: int,
    user: CurrentUser,
    db: SessionDep,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    service.reject(db, user, user_id, reason)
    return RedirectResponse("/coordinator/specialists", status_code=303)
