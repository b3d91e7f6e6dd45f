"""The admin's pages: accounts (list, create, deactivate: never delete) and facilities
(list, create, edit). Server-rendered forms with the session's CSRF token; every change
goes through ``telemed.admin.service`` (the admin rule and the audit row) and, being a
change of who can do what, asks for a recent login (``RecentAuth``), as the API does."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from telemed import flows
from telemed.accounts import auth
from telemed.accounts import repository as accounts_repository
from telemed.accounts.models import Role, User
from telemed.accounts.schemas import UserCreate
from telemed.admin import forms, service
from telemed.admin.schemas import FacilityIn
from telemed.deps import CurrentUser, NowDep, PolicyDep, SessionDep, SettingsDep
from telemed.errors import TelemedError
from telemed.facilities import repository as facilities_repository
from telemed.i18n import gettext
from telemed.labels import label
from telemed.mfa.deps import RecentAuth
from telemed.validation import Id
from telemed.web.access import ADMINS
from telemed.web.templating import render

router = APIRouter(include_in_schema=False)

USERS_PATH = "/admin/users"
FACILITIES_PATH = "/admin/facilities"


def _refusal(exc: TelemedError, fields: tuple[str, ...]) -> dict[str, str]:
    """A service's refusal beside its field when the form has it, else above the form."""
    if exc.status_code not in (409, 422):
        raise exc
    return {exc.field if exc.field in fields else "__all__": exc.shown()}


def _users_page(
    request: Request,
    db: Session,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    *,
    notice: str = "",
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "admin_users.html",
        {
            "users": accounts_repository.list_users(db),
            "facility_names": facilities_repository.facility_names(db),
            "facilities": [(f.code, f.name) for f, _ in facilities_repository.list_facilities(db)],
            "roles": [(r.value, label(r.value)) for r in Role],
            "values": values if values is not None else {"role": Role.clinician.value},
            "errors": errors or {},
            "notice": notice,
        },
        status_code=status,
    )


@router.get(USERS_PATH)
def users_page(
    request: Request, user: CurrentUser, db: SessionDep, done: str | None = None
) -> HTMLResponse:
    auth.ensure_admin(user)
    notices = {
        "created": gettext("The account is created; give its owner the password by phone."),
        "deactivated": gettext("The account is deactivated; its records are kept."),
    }
    return _users_page(request, db, notice=notices.get(done or "", ""))


@router.post(USERS_PATH)
async def user_create(
    request: Request, user: CurrentUser, _recent: RecentAuth, db: SessionDep, settings: SettingsDep
) -> Response:
    auth.ensure_admin(user)
    values = forms.values(await request.form(), forms.USER_FIELDS)
    try:
        data = UserCreate.model_validate(forms.user_data(values))
    except ValidationError as exc:
        return _users_page(request, db, values, forms.errors(exc), status=422)
    try:
        service.create_user(db, settings, user, data)
    except TelemedError as exc:
        errors = _refusal(exc, forms.USER_FIELDS)
        return _users_page(request, db, values, errors, status=exc.status_code)
    return RedirectResponse(f"{USERS_PATH}?done=created", status_code=303)


@router.post(USERS_PATH + "/{user_id}/deactivate")
def user_deactivate(
    user_id: Id,
    request: Request,
    user: CurrentUser,
    _recent: RecentAuth,
    db: SessionDep,
    now: NowDep,
    policy: PolicyDep,
) -> Response:
    """No delete: the account stops logging in, its sessions end, its offers move on."""
    auth.ensure_admin(user)
    gone: User = service.deactivate_user(db, user, user_id, request.app.state.session_cache, now)
    flows.user_deactivated(db, gone, policy, now)
    return RedirectResponse(f"{USERS_PATH}?done=deactivated", status_code=303)


def _districts(db: Session) -> list[tuple[str, str]]:
    return [(str(d.id), d.name) for d in facilities_repository.list_districts(db)]


def _facilities_page(
    request: Request,
    db: Session,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    *,
    notice: str = "",
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "admin_facilities.html",
        {
            "facilities": facilities_repository.list_facilities(db),
            "districts": _districts(db),
            "values": values or {"kind": "hospital"},
            "errors": errors or {},
            "notice": notice,
        },
        status_code=status,
    )


def _facility_data(values: dict[str, str]) -> dict[str, Any]:
    return {**values, "district_id": values["district_id"] or None}


@router.get(FACILITIES_PATH)
def facilities_page(
    request: Request, user: CurrentUser, db: SessionDep, done: str | None = None
) -> HTMLResponse:
    auth.ensure_admin(user)
    notice = gettext("The facility is saved.") if done == "saved" else ""
    return _facilities_page(request, db, notice=notice)


@router.post(FACILITIES_PATH)
async def facility_create(
    request: Request, user: CurrentUser, _recent: RecentAuth, db: SessionDep
) -> Response:
    auth.ensure_admin(user)
    values = forms.values(await request.form(), forms.FACILITY_FIELDS)
    try:
        data = FacilityIn.model_validate(_facility_data(values))
    except ValidationError as exc:
        return _facilities_page(request, db, values, forms.errors(exc), status=422)
    try:
        service.create_facility(db, user, data)
    except TelemedError as exc:
        errors = _refusal(exc, forms.FACILITY_FIELDS)
        return _facilities_page(request, db, values, errors, status=exc.status_code)
    return RedirectResponse(f"{FACILITIES_PATH}?done=saved", status_code=303)


def _facility_page(
    request: Request,
    db: Session,
    facility_id: int,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    facility = service.get_facility(db, facility_id)
    stored = {
        "code": facility.code,
        "name": facility.name,
        "kind": facility.kind,
        "district_id": str(facility.district_id),
    }
    return render(
        request,
        "admin_facility.html",
        {
            "facility": facility,
            "districts": _districts(db),
            "values": values if values is not None else stored,
            "errors": errors or {},
        },
        status_code=status,
    )


@router.get(FACILITIES_PATH + "/{facility_id}")
def facility_form(
    facility_id: Id, request: Request, user: CurrentUser, db: SessionDep
) -> HTMLResponse:
    auth.ensure_admin(user)
    return _facility_page(request, db, facility_id)


@router.post(FACILITIES_PATH + "/{facility_id}")
async def facility_update(
    facility_id: Id, request: Request, user: CurrentUser, _recent: RecentAuth, db: SessionDep
) -> Response:
    auth.ensure_admin(user)
    values = forms.values(await request.form(), forms.FACILITY_FIELDS)
    try:
        data = FacilityIn.model_validate(_facility_data(values))
    except ValidationError as exc:
        return _facility_page(request, db, facility_id, values, forms.errors(exc), 422)
    try:
        service.update_facility(db, user, facility_id, data)
    except TelemedError as exc:
        errors = _refusal(exc, forms.FACILITY_FIELDS)
        return _facility_page(request, db, facility_id, values, errors, exc.status_code)
    return RedirectResponse(f"{FACILITIES_PATH}?done=saved", status_code=303)


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {
    "users_page": ADMINS,
    "user_create": ADMINS,
    "user_deactivate": ADMINS,
    "facilities_page": ADMINS,
    "facility_create": ADMINS,
    "facility_form": ADMINS,
    "facility_update": ADMINS,
}
