"""Consult pages: the home lists by role, the new consult form, the consult page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session
from starlette.datastructures import UploadFile

from telemed.accounts import auth as accounts_auth
from telemed.accounts import repository as accounts_repository
from telemed.accounts.models import Role
from telemed.attachments import service as attachments
from telemed.attachments.service import Stored
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
from telemed.db import pk
from telemed.deps import CurrentUser, NowDep, PolicyDep, SessionDep, SettingsDep
from telemed.errors import TelemedError, ValidationFailed
from telemed.facilities import repository as facilities_repository
from telemed.flows import consult_requested, request_consult
from telemed.form_errors import field_sentences
from telemed.i18n import DEFAULT_LANGUAGE, N_, current_language, gettext
from telemed.labels import label
from telemed.messages import service as messages
from telemed.messages.schemas import MessageIn
from telemed.notes import service as notes
from telemed.precall import auth as precall_auth
from telemed.settings import Settings
from telemed.web.access import ANY_USER, CLINICIAN, CONSULT_READERS, REQUESTING_CLINICIANS, Access
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
            # Calls the user is invited into as an interpreter or a second specialist: the
            # call page is all they see of those consults (consults.auth).
            "invited_calls": repository.guest_consults(db, pk(user)),
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
            **{f"consent_{name}": pairs for name, pairs in consent_forms.options().items()},
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
    settings: SettingsDep,
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
    photos = [p for p in form.getlist("photos") if isinstance(p, UploadFile) and p.filename]
    try:
        prepared = _prepare_photos(db, settings, photos)
    except ValidationFailed as exc:
        return _form_error(request, db, values, {"photos": exc.shown()}, exc.status_code)
    try:
        consult = request_consult(db, user, data, consent, policy, now)
        for filename, stored in prepared:
            target = attachments.check_target(db, user, consult, None)
            attachments.create_attachment(db, user, target, filename, stored)
    except TelemedError as exc:
        field = exc.field or "__all__"
        field = (
            consent_forms.field_of(field)
            if field.startswith("consent.")
            else field.removeprefix("case.")
        )
        return _form_error(request, db, values, {field: exc.shown()}, exc.status_code)
    return RedirectResponse(f"/consults/{consult.id}", status_code=303)


MAX_REQUEST_PHOTOS = 10


def _prepare_photos(
    db: Session, settings: Settings, photos: list[UploadFile]
) -> list[tuple[str, Stored]]:
    """The request form's photos without JavaScript (a plain multipart post): each checked
    and cleaned before the consult is created, so a refused photo leaves no consult and the
    form comes back saying which file and why."""
    if len(photos) > MAX_REQUEST_PHOTOS:
        raise ValidationFailed(
            N_("send at most %(count)s photos with the request; add more on the consult page"),
            count=MAX_REQUEST_PHOTOS,
            field="photos",
        )
    prepared = []
    for photo in photos:
        name = photo.filename or ""
        data = photo.file.read(settings.max_upload_bytes + 1)
        size = photo.size if photo.size is not None else len(data)
        try:
            stored = attachments.prepare_file(
                db, settings, name, photo.content_type or "", data, size, "photos"
            )
        except ValidationFailed as exc:
            raise ValidationFailed(
                N_("%(filename)s: %(problem)s"),
                filename=name[:100],
                problem=exc.shown(),
                field="photos",
            ) from exc
        prepared.append((name, stored))
    return prepared


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
        sentences = field_sentences(exc, {"body": N_("Message")}, lambda _loc: "body")
        return page.render(sentences, {"body": body}, 422)
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


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {
    "home": ANY_USER,
    "new_consult_form": Access(CLINICIAN, scope="a clinician of a facility, for it"),
    "new_consult_submit": Access(CLINICIAN, scope="a clinician of a facility, for it"),
    "consult_page": CONSULT_READERS,
    "post_message": CONSULT_READERS,
    "submit": REQUESTING_CLINICIANS,
    "cancel": REQUESTING_CLINICIANS,
}
