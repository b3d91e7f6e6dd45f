"""Consult pages: the home lists by role, the new consult form, the consult page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from telemed.accounts import auth as accounts_auth
from telemed.accounts import repository as accounts_repository
from telemed.accounts.models import Role
from telemed.cases.models import Sex
from telemed.consent import forms as consent_forms
from telemed.consent import service as consent
from telemed.consent.models import ConsentScope
from telemed.consults import auth, repository, service
from telemed.consults.deps import CurrentConsult
from telemed.consults.forms import field_errors, form_values, to_consult_create
from telemed.consults.lifecycle import WAITING_STATES
from telemed.consults.models import (
    ConsultMode,
    Language,
    Urgency,
)
from telemed.deps import CurrentUser, NowDep, PolicyDep, SessionDep, SettingsDep
from telemed.errors import TelemedError, ValidationFailed
from telemed.facilities import repository as facilities_repository
from telemed.flows import consult_requested, request_consult
from telemed.i18n import DEFAULT_LANGUAGE, current_language, gettext
from telemed.labels import label
from telemed.messages import service as messages
from telemed.messages.schemas import MessageIn
from telemed.notes import service as notes
from telemed.precall import auth as precall_auth
from telemed.web.pages.consult import ConsultPageDep
from telemed.web.templating import render

router = APIRouter(include_in_schema=False)

LANGUAGE_NAMES = {Language.sesotho: "Sesotho", Language.english: "English"}

HOME_TITLES = {  # called when the page is made: in the viewer's language
    Role.clinician: lambda: gettext("Consults of your facility"),
    Role.specialist: lambda: gettext("Your consults"),
    Role.coordinator: lambda: gettext("All consults"),
}


@router.get("/")
def home(
    request: Request,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
) -> HTMLResponse:
    if user.role == Role.admin:
        return render(
            request,
            "admin_home.html",
            {
                "users": accounts_repository.list_users(db),
                "facilities": facilities_repository.list_facilities(db),
            },
        )
    listing = service.list_visible(
        db, user, page=page, page_size=settings.page_size, with_cases=True
    )
    return render(
        request,
        "home.html",
        {
            "title": HOME_TITLES[Role(user.role)](),
            "can_request": auth.can_create(user),
            "can_answer_offers": accounts_auth.is_specialist(user),
            "can_test_network": precall_auth.can_test(user),
            "shows_facility": not accounts_auth.is_clinician(user),
            "listing": listing,
            "facility_names": facilities_repository.facility_names(db),
            "waiting_states": WAITING_STATES,
            # Waiting consults whose sharing consent is in force; the others say so.
            "consented": consent.given_among(
                db,
                [c.id for c in listing.items if c.id is not None and c.state in WAITING_STATES],
                ConsentScope.sharing,
            ),
            "follow_ups": notes.follow_ups_for(db, user, now)
            if accounts_auth.is_clinician(user)
            else [],
        },
    )


def _form_context(db: Session, values: dict[str, str], errors: dict[str, str]) -> dict[str, object]:
    return {
        "values": values,
        "errors": errors,
        "options": {
            # The specialties' English names are data (telemed specialties add); another
            # language shows its word for the code.
            "specialty": [
                (s.code, s.name if current_language() == DEFAULT_LANGUAGE else label(s.code))
                for s in repository.list_specialties(db)
            ],
            "urgency": [(u.value, label(u.value).capitalize()) for u in Urgency],
            "mode": [(m.value, label(m.value).capitalize()) for m in ConsultMode],
            "language": [(lang.value, LANGUAGE_NAMES[lang]) for lang in Language],
            "sex": [(s.value, label(s.value).capitalize()) for s in Sex],
            **{f"consent_{name}": pairs for name, pairs in consent_forms.OPTIONS.items()},
        },
    }


@router.get("/consults/new")
def new_consult_form(request: Request, user: CurrentUser, db: SessionDep) -> HTMLResponse:
    auth.ensure_can_create(user)
    values = {"urgency": "routine", "mode": "video", "language": "st"}
    values |= consent_forms.request_defaults()
    return render(request, "consult_new.html", _form_context(db, values, {}))


@router.post("/consults/new")
async def new_consult_submit(
    request: Request,
    user: CurrentUser,
    db: SessionDep,
    now: NowDep,
    policy: PolicyDep,
) -> Response:
    auth.ensure_can_create(user)
    form = await request.form()
    values = form_values(form) | consent_forms.request_values(form)
    submit = form.get("action") != "draft"
    try:
        data = to_consult_create(values, submit)
    except ValidationError as exc:
        return _form_error(request, db, values, field_errors(exc))
    try:
        consent = consent_forms.to_consent_at_request(values)
    except ValidationError as exc:
        return _form_error(request, db, values, consent_forms.request_errors(exc))
    try:
        consult = request_consult(db, user, data, consent, policy, now)
    except TelemedError as exc:
        field = exc.field or "__all__"
        field = (
            consent_forms.field_of(field)
            if field.startswith("consent.")
            else field.removeprefix("case.")
        )
        return _form_error(request, db, values, {field: exc.shown()}, exc.status_code)
    return RedirectResponse(f"/consults/{consult.id}", status_code=303)


def _form_error(
    request: Request, db: Session, values: dict[str, str], errors: dict[str, str], status: int = 422
) -> HTMLResponse:
    return render(request, "consult_new.html", _form_context(db, values, errors), status)


@router.get("/consults/{consult_id}")
def consult_page(
    consult: CurrentConsult, page: ConsultPageDep, user: CurrentUser, db: SessionDep
) -> HTMLResponse:
    service.record_read(db, user, consult)
    return page.render()


@router.post("/consults/{consult_id}/messages")
def post_message(
    consult: CurrentConsult,
    page: ConsultPageDep,
    user: CurrentUser,
    db: SessionDep,
    body: Annotated[str, Form()] = "",
) -> Response:
    try:
        checked = MessageIn(body=body)
    except ValidationError as exc:
        message = exc.errors()[0]["msg"].removeprefix("Value error, ")
        return page.render({"body": message}, {"body": body}, 422)
    messages.post(db, user, consult, checked.body)
    return RedirectResponse(f"/consults/{consult.id}#thread", status_code=303)


@router.post("/consults/{consult_id}/submit")
def submit(
    consult: CurrentConsult,
    user: CurrentUser,
    db: SessionDep,
    now: NowDep,
    policy: PolicyDep,
) -> Response:
    service.submit(db, user, consult, now)
    consult_requested(db, consult, policy, now)
    return RedirectResponse(f"/consults/{consult.id}", status_code=303)


@router.post("/consults/{consult_id}/cancel")
def cancel(
    consult: CurrentConsult,
    page: ConsultPageDep,
    user: CurrentUser,
    db: SessionDep,
    now: NowDep,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    try:
        service.cancel(db, user, consult, reason, now)
    except ValidationFailed as exc:
        return page.render({"reason": exc.shown()}, {}, 422)
    return RedirectResponse(f"/consults/{consult.id}", status_code=303)
