"""Login and logout pages."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from telemed import flows, i18n
from telemed.accounts import service, unlock
from telemed.accounts.cookies import clear_session_cookie, set_session_cookie
from telemed.accounts.models import User
from telemed.accounts.security import new_token, tokens_equal
from telemed.deps import (
    SESSION_COOKIE,
    CurrentAuth,
    NowDep,
    SessionDep,
    SettingsDep,
    WritingSessionDep,
    client_address,
)
from telemed.errors import (
    Conflict,
    NotAuthenticated,
    NotFound,
    TooManyRequests,
    ValidationFailed,
)
from telemed.mfa import service as mfa
from telemed.mfa.cookies import set_challenge_cookie
from telemed.mfa.deps import MfaPolicyDep
from telemed.web.access import EVERYONE, OWN, PUBLIC, Access
from telemed.web.middleware import remember_language
from telemed.web.templating import render

router = APIRouter(include_in_schema=False)

# Before login there is no session to hold a CSRF token: a double-submit cookie stands in.
LOGIN_CSRF_COOKIE = "telemed_login_csrf"


def _safe_next(target: str | None) -> str:
    """Only local paths: a login link must not bounce the user to another site."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _login_page(
    request: Request,
    next_path: str,
    error: str | None = None,
    email: str = "",
    status: int = 200,
    *,
    template: str = "login.html",
    **extra: object,
) -> HTMLResponse:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or new_token()
    response = render(
        request,
        template,
        {"login_csrf": token, "next": next_path, "error": error, "email": email, **extra},
        status_code=status,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.app.state.settings.secure_cookies,
        path="/login",
    )
    return response


def _csrf_ok(request: Request, csrf_token: str) -> bool:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return bool(cookie) and tokens_equal(cookie, csrf_token)


def _expired(request: Request, next_path: str, email: str = "") -> HTMLResponse:
    return _login_page(
        request, next_path, i18n.gettext("Your form expired; please try again."), email, 403
    )


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    return _login_page(request, _safe_next(next))


@router.post("/login")
def login_submit(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    mfa_policy: MfaPolicyDep,
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    next_path = _safe_next(next)
    if not _csrf_ok(request, csrf_token):
        return _expired(request, next_path, email)
    if not email or not password:
        return _login_page(
            request, next_path, i18n.gettext("Enter your e-mail and password."), email, 422
        )
    try:
        user = service.check_password(
            db,
            settings,
            email=email,
            password=password,
            address=client_address(request),
            now=now,
        )
    except NotAuthenticated as exc:
        return _login_page(request, next_path, exc.message, email, exc.status_code)
    except TooManyRequests as exc:
        refused = _login_page(
            request, next_path, exc.message, email, exc.status_code, throttled=True
        )
        refused.headers["Retry-After"] = str(exc.retry_after_seconds)
        return refused
    # The second factor (telemed.mfa): no session until the code, or enrolment, is done.
    pending = mfa.second_step(db, mfa_policy, user)
    if pending is not None:
        step = mfa.begin_challenge(db, mfa_policy, user, pending, next_path, now)
        response = RedirectResponse(f"/login/{step.purpose}", status_code=303)
        set_challenge_cookie(response, step.token, settings)
        return response
    logged_in = service.open_session(db, settings, user, now)
    response = RedirectResponse(next_path, status_code=303)
    set_session_cookie(response, logged_in.token, settings)
    remember_language(response, user.language, secure=settings.secure_cookies)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout_submit(
    request: Request, auth: CurrentAuth, db: SessionDep, settings: SettingsDep, now: NowDep
) -> Response:
    service.log_out(db, request.cookies[SESSION_COOKIE], request.app.state.session_cache, now)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, settings)
    remember_language(
        response, auth.user.language, secure=settings.secure_cookies
    )  # the login page keeps it
    # The offline queue (IndexedDB), the service worker's caches and the HTTP cache go too:
    # on a shared clinic phone the next user must not find this one's pages or writes.
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response


def _language_chosen(language: str, back: str, settings: SettingsDep) -> Response:
    chosen = i18n.normal(language)
    if chosen is None:
        raise ValidationFailed(i18n.gettext("Choose English or Sesotho."), field="language")
    response = RedirectResponse(_safe_next(back), status_code=303)
    remember_language(response, chosen, secure=settings.secure_cookies)
    return response


PHONE_PATH = "/account/phone"


def _phone_page(
    request: Request, phone: str, error: str = "", notice: str = "", status: int = 200
) -> HTMLResponse:
    errors = {"phone": error} if error else {}
    return render(
        request,
        "account_phone.html",
        {"values": {"phone": phone}, "errors": errors, "notice": notice},
        status_code=status,
    )


@router.get(PHONE_PATH)
def phone_form(
    request: Request, auth: CurrentAuth, db: SessionDep, saved: bool = False
) -> HTMLResponse:
    """Every user's mobile number, for the SMS that cannot wait (an emergency offered, an
    escalation): shown and changed here; a specialist also has it on their profile."""
    stored = db.get(User, auth.user.id)
    notice = i18n.gettext("Your phone number is saved.") if saved else ""
    return _phone_page(request, (stored.phone if stored else None) or "", notice=notice)


@router.post(PHONE_PATH)
def phone_submit(
    request: Request,
    auth: CurrentAuth,
    db: SessionDep,
    phone: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    try:
        service.set_phone(db, auth.user, phone)
    except ValidationFailed as exc:
        return _phone_page(request, phone, exc.shown(), status=422)
    return RedirectResponse(f"{PHONE_PATH}?saved=true", status_code=303)


@router.post("/language")
def language_submit(
    request: Request,
    auth: CurrentAuth,
    db: SessionDep,
    settings: SettingsDep,
    language: Annotated[str, Form(max_length=8)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    """The header's switch: the signed-in user's profile setting (their e-mails and SMS
    follow it), and the cookie, so that the login page after logging out keeps it."""
    service.set_language(
        db,
        auth.user,
        language,
        cache=request.app.state.session_cache,
        token=request.cookies[SESSION_COOKIE],
    )
    return _language_chosen(language, next, settings)


@router.post("/login/language")
def login_language_submit(
    request: Request,
    settings: SettingsDep,
    language: Annotated[str, Form(max_length=8)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=500)] = "/login",
) -> Response:
    """The login page's switch, for a visitor with no session: only the cookie. Its CSRF
    check is the login form's double-submit cookie (scoped to /login, hence the path)."""
    if not _csrf_ok(request, csrf_token):
        return _expired(request, _safe_next(next))
    return _language_chosen(language, next, settings)


@router.post("/login/unlock")
def unlock_request_submit(
    request: Request,
    db: WritingSessionDep,
    settings: SettingsDep,
    now: NowDep,
    email: Annotated[str, Form(max_length=254)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """A throttled login's "send me an unlock link": the same answer whether or not the
    e-mail has an account (docs/login-policy.md)."""
    if not _csrf_ok(request, csrf_token):
        return _expired(request, "/", email)
    if not email.strip():
        return _login_page(request, "/", i18n.gettext("Enter your e-mail and password."), "", 422)
    flows.send_unlock_link(db, settings, email, now)
    notice = i18n.gettext(
        "If this e-mail belongs to an account, an unlock link is on its way to it. "
        "The link works once, for %(minutes)s minutes."
    ) % {"minutes": unlock.UNLOCK_MINUTES}
    return _login_page(request, "/", email=email, notice=notice)


@router.get("/login/unlock/{token}")
def unlock_form(request: Request, token: Annotated[str, Path(max_length=200)]) -> HTMLResponse:
    """The link from the e-mail shows a button: a mail scanner fetching the link does not
    use it up."""
    return _login_page(request, "/", template="login_unlock.html", token=token)


@router.post("/login/unlock/{token}")
def unlock_submit(
    request: Request,
    db: WritingSessionDep,
    settings: SettingsDep,
    now: NowDep,
    token: Annotated[str, Path(max_length=200)],
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    if not _csrf_ok(request, csrf_token):
        return _expired(request, "/")
    try:
        email = unlock.use(db, settings.secret_key, token, now, client_address(request))
    except (NotFound, Conflict) as exc:
        return _login_page(
            request, "/", exc.message, status=exc.status_code, template="login_unlock.html"
        )
    notice = i18n.gettext("Logging in to your account is unlocked; log in now.")
    return _login_page(request, "/", email=email, notice=notice)


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {
    "login_form": PUBLIC,
    "login_submit": PUBLIC,
    "logout_submit": OWN,
    "phone_form": OWN,
    "phone_submit": OWN,
    "language_submit": OWN,
    "login_language_submit": PUBLIC,
    "unlock_request_submit": PUBLIC,
    "unlock_form": Access(*EVERYONE, scope="the holder of the unlock link"),
    "unlock_submit": Access(*EVERYONE, scope="the holder of the unlock link"),
}
