"""Note pages: write, edit, sign and amend; record an outcome; ICD-10 search; the case
timeline."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from telemed.accounts.models import User
from telemed.consults.deps import CurrentConsult
from telemed.consults.models import Consult
from telemed.deps import CurrentUser, NowDep, SessionDep
from telemed.errors import TelemedError, ValidationFailed
from telemed.i18n import N_
from telemed.notes import auth as note_auth
from telemed.notes import forms, icd10, service
from telemed.notes.models import ConsultNote, Outcome
from telemed.notes.schemas import OutcomeIn
from telemed.validation import Id
from telemed.web.access import ANY_USER, CONSULT_SIDES, NOTE_AUTHOR, REQUESTING_CLINICIANS
from telemed.web.templating import render

router = APIRouter(include_in_schema=False)


def _form(
    request: Request,
    consult: Consult,
    values: dict[str, str],
    errors: dict[str, str],
    *,
    action: str,
    amending: ConsultNote | None = None,
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "note_form.html",
        {
            "consult": consult,
            "values": values,
            "errors": errors,
            "action": action,
            "amending": amending,
        },
        status_code=status,
    )


def _redirect(consult: Consult) -> RedirectResponse:
    return RedirectResponse(f"/consults/{consult.id}#notes", status_code=303)


def _save(
    request: Request,
    db: Session,
    user: User,
    consult: Consult,
    note: ConsultNote | None,
    values: dict[str, str],
    sign_now: bool,
    action: str,
) -> Response:
    try:
        fields = forms.to_fields(values)
        note = (
            service.update_draft(db, user, consult, note, fields)
            if note is not None
            else service.create(db, user, consult, fields)
        )
        if sign_now:
            service.sign(db, user, consult, note)
    except ValidationError as exc:
        return _form(request, consult, values, forms.field_errors(exc), action=action, status=422)
    except TelemedError as exc:
        if exc.status_code == 403:
            raise
        error = forms.refusal(exc.field, exc.shown())
        if note is not None and note.id:
            action = f"/consults/{consult.id}/notes/{note.id}/edit"
        return _form(request, consult, values, error, action=action, status=exc.status_code)
    return _redirect(consult)


@router.get("/consults/{consult_id}/notes/new")
def new_note(
    request: Request, consult: CurrentConsult, user: CurrentUser, db: SessionDep
) -> HTMLResponse:
    note_auth.ensure_can_write_note(db, user, consult)
    return _form(request, consult, {}, {}, action=f"/consults/{consult.id}/notes/new")


@router.post("/consults/{consult_id}/notes/new")
async def create_note(
    request: Request, consult: CurrentConsult, user: CurrentUser, db: SessionDep
) -> Response:
    form = await request.form()
    return _save(
        request,
        db,
        user,
        consult,
        None,
        forms.form_values(form),
        form.get("action") == "sign",
        f"/consults/{consult.id}/notes/new",
    )


@router.get("/consults/{consult_id}/notes/{note_id}/edit")
def edit_note(
    request: Request, note_id: Id, consult: CurrentConsult, user: CurrentUser, db: SessionDep
) -> HTMLResponse:
    note = service.draft_to_edit(db, user, consult, note_id)
    values = forms.values_of(service.public(db, [note])[0])
    return _form(
        request, consult, values, {}, action=f"/consults/{consult.id}/notes/{note_id}/edit"
    )


@router.post("/consults/{consult_id}/notes/{note_id}/edit")
async def update_note(
    request: Request, note_id: Id, consult: CurrentConsult, user: CurrentUser, db: SessionDep
) -> Response:
    note = service.get_for(db, consult, note_id)
    form = await request.form()
    return _save(
        request,
        db,
        user,
        consult,
        note,
        forms.form_values(form),
        form.get("action") == "sign",
        f"/consults/{consult.id}/notes/{note_id}/edit",
    )


@router.post("/consults/{consult_id}/notes/{note_id}/sign")
def sign_note(note_id: Id, consult: CurrentConsult, user: CurrentUser, db: SessionDep) -> Response:
    service.sign(db, user, consult, service.get_for(db, consult, note_id))
    return _redirect(consult)


@router.get("/consults/{consult_id}/notes/{note_id}/amend")
def amend_form(
    request: Request, note_id: Id, consult: CurrentConsult, user: CurrentUser, db: SessionDep
) -> HTMLResponse:
    note = service.get_for(db, consult, note_id)
    note_auth.ensure_author(user, note)
    values = forms.values_of(service.public(db, [note])[0])
    return _form(
        request,
        consult,
        values,
        {},
        action=f"/consults/{consult.id}/notes/{note_id}/amend",
        amending=note,
    )


@router.post("/consults/{consult_id}/notes/{note_id}/amend")
async def amend_note(
    request: Request, note_id: Id, consult: CurrentConsult, user: CurrentUser, db: SessionDep
) -> Response:
    note = service.get_for(db, consult, note_id)
    form = await request.form()
    values = forms.form_values(form)
    action = f"/consults/{consult.id}/notes/{note_id}/amend"
    try:
        amendment = service.amend(db, user, consult, note, forms.to_amendment(values))
        if form.get("action") == "sign":
            service.sign(db, user, consult, amendment)
    except ValidationError as exc:
        return _form(
            request,
            consult,
            values,
            forms.field_errors(exc),
            action=action,
            amending=note,
            status=422,
        )
    except TelemedError as exc:
        if exc.status_code == 403:
            raise
        return _form(
            request,
            consult,
            values,
            forms.refusal(exc.field, exc.shown()),
            action=action,
            amending=note,
            status=exc.status_code,
        )
    return _redirect(consult)


@router.post("/consults/{consult_id}/outcomes")
def record_outcome(
    consult: CurrentConsult,
    user: CurrentUser,
    db: SessionDep,
    now: NowDep,
    outcome: Annotated[str, Form(max_length=32)] = "",
    detail: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    try:
        data = OutcomeIn(outcome=Outcome(outcome), detail=detail)
    except ValueError as exc:
        raise ValidationFailed(N_("choose an outcome"), field="outcome") from exc
    service.record_outcome(db, user, consult, data, now)
    return RedirectResponse(f"/consults/{consult.id}#outcome", status_code=303)


@router.get("/icd10")
def icd10_page(
    request: Request, _user: CurrentUser, q: Annotated[str, Query(max_length=100)] = ""
) -> HTMLResponse:
    return render(
        request, "icd10.html", {"q": q, "results": icd10.search(q, limit=50) if q else []}
    )


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {
    "new_note": CONSULT_SIDES,
    "create_note": CONSULT_SIDES,
    "edit_note": NOTE_AUTHOR,
    "update_note": NOTE_AUTHOR,
    "sign_note": NOTE_AUTHOR,
    "amend_form": NOTE_AUTHOR,
    "amend_note": NOTE_AUTHOR,
    "record_outcome": REQUESTING_CLINICIANS,
    "icd10_page": ANY_USER,
}
