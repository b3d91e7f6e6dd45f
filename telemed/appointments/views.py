"""Appointment pages: the reschedule / cancel / book forms (times entered in the viewer's
own zone), the schedule, the ``.ics`` download. (The consult page's appointment section is
``appointments.panels``.)"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from telemed.accounts import auth as accounts_auth
from telemed.accounts.models import User
from telemed.appointments import auth, changes, early, reads, repository, service
from telemed.appointments.models import Appointment
from telemed.consults import auth as consult_auth
from telemed.consults.deps import CurrentConsult
from telemed.consults.models import Consult, ConsultState
from telemed.db import pk
from telemed.deps import CurrentUser, NowDep, PolicyDep, SessionDep, SettingsDep
from telemed.errors import Conflict, NotFound, TelemedError, ValidationFailed
from telemed.flows import consult_requested
from telemed.i18n import N_
from telemed.timefmt import parse_local
from telemed.validation import Id
from telemed.web.access import (
    APPOINTMENT_BOOKERS,
    APPOINTMENT_SIDES,
    CLINICIAN,
    COORDINATOR,
    SPECIALIST,
    Access,
)
from telemed.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/schedule")
def schedule(request: Request, user: CurrentUser, db: SessionDep, now: NowDep) -> HTMLResponse:
    """Upcoming appointments: a specialist's own, a clinician's facility's (all for a
    coordinator), in the viewer's zone."""
    return render(
        request,
        "schedule.html",
        {
            # A specialist's own appointments, a clinician's facility's, or (coordinator) all.
            "own_schedule": accounts_auth.is_specialist(user),
            "facility_schedule": accounts_auth.is_clinician(user),
            "items": reads.schedule(db, user, now),
            "shows_ics": auth.gets_invitations(user),
        },
    )


@router.get("/consults/{consult_id}/appointment.ics")
def download_ics(
    consult: CurrentConsult, user: CurrentUser, db: SessionDep, settings: SettingsDep, now: NowDep
) -> Response:
    """The appointment's calendar invitation (REQUEST, or CANCEL once cancelled)."""
    invitation = reads.invitation_for(db, settings, user, consult, now)
    return Response(
        invitation.data,
        media_type=invitation.content_type,
        headers={"Content-Disposition": f'attachment; filename="{invitation.filename}"'},
    )


def _changeable(db: Session, user: User, appointment_id: Id) -> tuple[Appointment, Consult]:
    appointment = repository.get(db, appointment_id)
    if appointment is None:
        raise NotFound(
            N_("appointment %(appointment_id)s not found"), appointment_id=appointment_id
        )
    consult = consult_auth.get_visible_consult(db, user, appointment.consult_id)
    auth.ensure_side(user, consult, appointment)
    return appointment, consult


def _form(
    request: Request,
    user: User,
    consult: Consult,
    appointment: Appointment | None,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "appointment_form.html",
        {
            "consult": consult,
            "appointment": appointment,
            "cancels_request": auth.clinician_side(user),
            "errors": errors or {},
            "values": values or {},
        },
        status_code=status,
    )


def _form_error(exc: TelemedError, names: dict[str, str]) -> dict[str, str] | None:
    """Errors shown beside the form's fields (``names``: the service's field -> the
    form's), or above the form for a conflict; None for the rest (the error page)."""
    if isinstance(exc, ValidationFailed | Conflict) and exc.field in names:
        return {names[exc.field or ""]: exc.shown()}
    if isinstance(exc, Conflict):
        return {"__all__": exc.shown()}
    return None


@router.get("/appointments/{appointment_id}/change")
def change_form(
    request: Request, appointment_id: Id, user: CurrentUser, db: SessionDep
) -> HTMLResponse:
    appointment, consult = _changeable(db, user, appointment_id)
    return _form(request, user, consult, appointment)


@router.post("/appointments/{appointment_id}/reschedule")
def reschedule(
    request: Request,
    appointment_id: Id,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    starts_local: Annotated[str, Form(max_length=40)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
    sequence: Annotated[int | None, Form()] = None,
    outside_confirmed: Annotated[str, Form(max_length=1)] = "",
) -> Response:
    """A time outside the specialist's availability is not booked silently: the page asks
    to confirm it (the same form again, with ``outside_confirmed``)."""
    appointment, consult = _changeable(db, user, appointment_id)
    values = {"starts_local": starts_local, "reason": reason}
    try:
        starts_at = parse_local(starts_local, user.timezone)
        changes.reschedule(
            db,
            user,
            appointment_id,
            starts_at,
            reason,
            now,
            expected_sequence=sequence,
            settings=settings,
            outside_confirmed=outside_confirmed == "1",
        )
    except TelemedError as exc:
        if isinstance(exc, Conflict) and exc.field == "outside_confirmed":
            return render(
                request,
                "appointment_confirm.html",
                {
                    "consult": consult,
                    "appointment": appointment,
                    "message": exc.shown(),
                    "values": {**values, "sequence": "" if sequence is None else str(sequence)},
                },
                status_code=exc.status_code,
            )
        errors = _form_error(exc, {"starts_at": "starts_local", "reason": "reason"})
        if errors is None:
            raise
        current = repository.get(db, appointment_id) or appointment
        return _form(
            request, user, consult, current, errors=errors, values=values, status=exc.status_code
        )
    return RedirectResponse(f"/consults/{consult.id}#appointment", status_code=303)


@router.post("/appointments/{appointment_id}/start-now")
def start_now(
    appointment_id: Id,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> Response:
    """Ask (or agree) to start the session now; once both sides have, to the call."""
    appointment, started = early.start_now(db, user, appointment_id, now, settings=settings)
    if started:
        return RedirectResponse(f"/consults/{appointment.consult_id}/call", status_code=303)
    return RedirectResponse(f"/consults/{appointment.consult_id}#appointment", status_code=303)


@router.post("/appointments/{appointment_id}/cancel")
def cancel(
    request: Request,
    appointment_id: Id,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    policy: PolicyDep,
    cancel_reason: Annotated[str, Form(max_length=2000)] = "",
    sequence: Annotated[int | None, Form()] = None,
) -> Response:
    appointment, consult = _changeable(db, user, appointment_id)
    try:
        _, consult = changes.cancel(
            db,
            user,
            appointment_id,
            cancel_reason,
            now,
            expected_sequence=sequence,
            settings=settings,
        )
    except TelemedError as exc:
        errors = _form_error(exc, {"reason": "cancel_reason"})
        if errors is None:
            raise
        current = repository.get(db, appointment_id) or appointment
        values = {"cancel_reason": cancel_reason}
        return _form(
            request, user, consult, current, errors=errors, values=values, status=exc.status_code
        )
    if consult.state == ConsultState.requested:
        consult_requested(db, consult, policy, now)
    return RedirectResponse(f"/consults/{consult.id}#appointment", status_code=303)


@router.get("/consults/{consult_id}/appointment/book")
def book_form(
    request: Request, consult: CurrentConsult, user: CurrentUser, db: SessionDep
) -> HTMLResponse:
    auth.ensure_can_book(db, user, consult)
    return _form(request, user, consult, None)


@router.post("/consults/{consult_id}/appointment/book")
def book(
    request: Request,
    consult: CurrentConsult,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    starts_local: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    consult_id = pk(consult)
    try:
        starts_at = parse_local(starts_local, user.timezone)
        service.book_time(db, user, consult_id, starts_at, now, settings)
    except TelemedError as exc:
        errors = _form_error(exc, {"starts_at": "starts_local"})
        if errors is None:
            raise
        fresh = consult_auth.get_visible_consult(db, user, consult_id)
        values = {"starts_local": starts_local}
        return _form(
            request, user, fresh, None, errors=errors, values=values, status=exc.status_code
        )
    return RedirectResponse(f"/consults/{consult_id}#appointment", status_code=303)


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {
    "schedule": Access(
        CLINICIAN, SPECIALIST, COORDINATOR, scope="the appointments the user may see"
    ),
    "download_ics": APPOINTMENT_SIDES,
    "change_form": APPOINTMENT_SIDES,
    "reschedule": APPOINTMENT_SIDES,
    "start_now": APPOINTMENT_SIDES,
    "cancel": APPOINTMENT_SIDES,
    "book_form": APPOINTMENT_BOOKERS,
    "book": APPOINTMENT_BOOKERS,
}
