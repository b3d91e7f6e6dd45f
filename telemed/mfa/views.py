"""Pages of the second factor: the login's second step (a code, or enrolment when the role
requires it), the account's two-step login page, and re-authentication.

The login's second step has no session yet: its cookie names a challenge
(``telemed.mfa.cookies``), and the session is opened only when the code is right.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from telemed import i18n
from telemed.accounts import service as accounts
from telemed.accounts.cookies import set_session_cookie
from telemed.accounts.models import User
from telemed.accounts.security import token_digest, tokens_equal
from telemed.db import pk
from telemed.deps import (
    SESSION_COOKIE,
    CurrentAuth,
    NowDep,
    SessionDep,
    SettingsDep,
    WritingSessionDep,
)
from telemed.errors import Conflict, NotAuthenticated, TooManyRequests
from telemed.mfa import service
from telemed.mfa.cookies import CHALLENGE_COOKIE, clear_challenge_cookie
from telemed.mfa.deps import MfaPolicyDep, RecentAuth
from telemed.mfa.models import LoginChallenge
from telemed.mfa.qr import qr_svg
from telemed.web.access import LOGIN_STEP, OWN
from telemed.web.middleware import remember_language
from telemed.web.templating import render

router = APIRouter(include_in_schema=False)

Code = Annotated[str, Form(max_length=64)]
Csrf = Annotated[str, Form(max_length=128)]
ACCOUNT_PATH = "/account/security"
# The enrolment secret and the recovery codes must not stay in any cache.
NO_STORE = {"Cache-Control": "no-store"}


def _local(target: str | None) -> str:
    """Only local paths (as the login page's ``next``)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _message(exc: Exception) -> str:
    if isinstance(exc, NotAuthenticated | TooManyRequests | Conflict):
        return i18n.gettext(exc.message)
    raise exc


# --- the login's second step ----------------------------------------------------------


def _challenge(request: Request, db: SessionDep, now: NowDep, purpose: str) -> LoginChallenge:
    token = request.cookies.get(CHALLENGE_COOKIE, "")
    found = service.challenge_of(db, token, now) if token else None
    if found is None or found.purpose != purpose:
        raise NotAuthenticated("Log in first.")
    return found


def _checked(
    request: Request, db: SessionDep, now: NowDep, purpose: str, csrf: str
) -> tuple[LoginChallenge, User]:
    challenge = _challenge(request, db, now, purpose)
    if not tokens_equal(challenge.csrf_token, csrf):
        raise NotAuthenticated("Your form expired; please try again.")
    return challenge, service.user_of(db, challenge)


def _signed_in(
    response: Response, db: SessionDep, settings: SettingsDep, user: User, now: NowDep
) -> Response:
    logged_in = accounts.open_session(db, settings, user, now)
    set_session_cookie(response, logged_in.token, settings)
    remember_language(response, user.language, secure=settings.secure_cookies)
    clear_challenge_cookie(response, settings)
    return response


@router.get("/login/code")
def code_form(request: Request, db: SessionDep, now: NowDep) -> HTMLResponse:
    challenge = _challenge(request, db, now, "code")
    return render(request, "mfa_code.html", {"form_csrf": challenge.csrf_token, "error": None})


@router.post("/login/code")
def code_submit(
    request: Request,
    db: WritingSessionDep,
    settings: SettingsDep,
    now: NowDep,
    policy: MfaPolicyDep,
    code: Code = "",
    csrf_token: Csrf = "",
) -> Response:
    challenge, user = _checked(request, db, now, "code", csrf_token)
    try:
        service.verify(db, policy, user, code, now)
    except (NotAuthenticated, TooManyRequests) as exc:
        return render(
            request,
            "mfa_code.html",
            {"form_csrf": challenge.csrf_token, "error": _message(exc)},
            status_code=exc.status_code,
        )
    service.finish_challenge(db, challenge, now)
    redirect = RedirectResponse(_local(challenge.next_path), status_code=303)
    return _signed_in(redirect, db, settings, user, now)


def _enrol_page(
    request: Request,
    user: User,
    enrolment: service.Enrolment,
    *,
    action: str,
    form_csrf: str | None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "mfa_enrol.html",
        {
            "qr": qr_svg(enrolment.uri),
            "secret": enrolment.secret,
            "account": user.email,
            "action": action,
            "form_csrf": form_csrf,
            "error": error,
        },
        status_code=status_code,
        headers=NO_STORE,
    )


@router.get("/login/enrol")
def login_enrol_form(
    request: Request, db: SessionDep, now: NowDep, policy: MfaPolicyDep
) -> HTMLResponse:
    challenge = _challenge(request, db, now, "enrol")
    user = service.user_of(db, challenge)
    enrolment = service.start_enrolment(db, policy, user, now)
    return _enrol_page(
        request, user, enrolment, action="/login/enrol", form_csrf=challenge.csrf_token
    )


@router.post("/login/enrol")
def login_enrol_submit(
    request: Request,
    db: WritingSessionDep,
    settings: SettingsDep,
    now: NowDep,
    policy: MfaPolicyDep,
    code: Code = "",
    csrf_token: Csrf = "",
) -> Response:
    challenge, user = _checked(request, db, now, "enrol", csrf_token)
    try:
        codes = service.confirm_enrolment(db, policy, user, code, now)
    except (NotAuthenticated, TooManyRequests, Conflict) as exc:
        enrolment = service.start_enrolment(db, policy, user, now)
        return _enrol_page(
            request,
            user,
            enrolment,
            action="/login/enrol",
            form_csrf=challenge.csrf_token,
            error=_message(exc),
            status_code=exc.status_code,
        )
    service.finish_challenge(db, challenge, now)
    page = render(
        request,
        "mfa_recovery.html",
        {"codes": codes, "next": _local(challenge.next_path)},
        headers=NO_STORE,
    )
    return _signed_in(page, db, settings, user, now)


# --- the account's page -----------------------------------------------------------------


@router.get(ACCOUNT_PATH)
def account_page(
    request: Request, auth: CurrentAuth, db: SessionDep, policy: MfaPolicyDep
) -> HTMLResponse:
    return render(request, "mfa_account.html", {"status": service.status(db, policy, auth.user)})


@router.get(ACCOUNT_PATH + "/enrol")
def enrol_form(
    request: Request, auth: CurrentAuth, db: SessionDep, now: NowDep, policy: MfaPolicyDep
) -> Response:
    if service.is_enrolled(db, pk(auth.user)):
        return RedirectResponse(ACCOUNT_PATH, status_code=303)
    enrolment = service.start_enrolment(db, policy, auth.user, now)
    return _enrol_page(
        request, auth.user, enrolment, action=ACCOUNT_PATH + "/enrol", form_csrf=None
    )


@router.post(ACCOUNT_PATH + "/enrol")
def enrol_submit(
    request: Request,
    auth: CurrentAuth,
    db: SessionDep,
    now: NowDep,
    policy: MfaPolicyDep,
    code: Code = "",
) -> Response:
    try:
        codes = service.confirm_enrolment(db, policy, auth.user, code, now)
    except (NotAuthenticated, TooManyRequests, Conflict) as exc:
        enrolment = service.start_enrolment(db, policy, auth.user, now)
        return _enrol_page(
            request,
            auth.user,
            enrolment,
            action=ACCOUNT_PATH + "/enrol",
            form_csrf=None,
            error=_message(exc),
            status_code=exc.status_code,
        )
    return render(
        request, "mfa_recovery.html", {"codes": codes, "next": ACCOUNT_PATH}, headers=NO_STORE
    )


@router.post(ACCOUNT_PATH + "/recovery-codes")
def recovery_codes_submit(
    request: Request, auth: RecentAuth, db: SessionDep, now: NowDep, policy: MfaPolicyDep
) -> HTMLResponse:
    codes = service.regenerate_recovery_codes(db, policy, auth.user, now)
    return render(
        request, "mfa_recovery.html", {"codes": codes, "next": ACCOUNT_PATH}, headers=NO_STORE
    )


@router.post(ACCOUNT_PATH + "/disable")
def disable_submit(auth: RecentAuth, db: SessionDep, policy: MfaPolicyDep) -> Response:
    service.disable(db, auth.user, by=auth.user)
    return RedirectResponse(ACCOUNT_PATH, status_code=303)


# --- re-authentication --------------------------------------------------------------------


def _reauth_page(
    request: Request, enrolled: bool, next_path: str, error: str | None = None, status: int = 200
) -> HTMLResponse:
    return render(
        request,
        "mfa_reauth.html",
        {"enrolled": enrolled, "next": next_path, "error": error},
        status_code=status,
    )


@router.get("/reauth")
def reauth_form(
    request: Request,
    auth: CurrentAuth,
    db: SessionDep,
    policy: MfaPolicyDep,
    next: str | None = None,
) -> Response:
    status = service.status(db, policy, auth.user)
    if status.required and not status.enrolled:
        return RedirectResponse(ACCOUNT_PATH + "/enrol", status_code=303)
    return _reauth_page(request, status.enrolled, _local(next))


@router.post("/reauth")
def reauth_submit(
    request: Request,
    auth: CurrentAuth,
    db: SessionDep,
    now: NowDep,
    policy: MfaPolicyDep,
    secret: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    digest = token_digest(request.cookies[SESSION_COOKIE])
    try:
        service.reauthenticate(db, policy, auth.user, digest, secret=secret, now=now)
    except (NotAuthenticated, TooManyRequests, Conflict) as exc:
        enrolled = service.is_enrolled(db, pk(auth.user))
        return _reauth_page(request, enrolled, _local(next), _message(exc), exc.status_code)
    return RedirectResponse(_local(next), status_code=303)


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {
    "code_form": LOGIN_STEP,
    "code_submit": LOGIN_STEP,
    "login_enrol_form": LOGIN_STEP,
    "login_enrol_submit": LOGIN_STEP,
    "account_page": OWN,
    "enrol_form": OWN,
    "enrol_submit": OWN,
    "recovery_codes_submit": OWN,
    "disable_submit": OWN,
    "reauth_form": OWN,
    "reauth_submit": OWN,
}
