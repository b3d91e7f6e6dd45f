"""Login and logout pages."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from telemed import i18n
from telemed.accounts import service
from telemed.accounts.cookies import clear_session_cookie, set_session_cookie
from telemed.accounts.security import new_token, tokens_equal
from telemed.deps import (
    SESSION_COOKIE,
    CurrentAuth,
    NowDep,
    SessionDep,
    SettingsDep,
    client_address,
)
from telemed.errors import NotAuthenticated, TooManyRequests, ValidationFailed
from telemed.web.middleware import LANGUAGE_COOKIE
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
    request: Request, next_path: str, error: str | None = None, email: str = "", status: int = 200
) -> HTMLResponse:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or new_token()
    response = render(
        request,
        "login.html",
        {"login_csrf": token, "next": next_path, "error": error, "email": email},
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


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    return _login_page(request, _safe_next(next))


@router.post("/login")
def login_submit(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    next_path = _safe_next(next)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not tokens_equal(cookie, csrf_token):
        return _login_page(
            request, next_path, i18n.gettext("Your form expired; please try again."), email, 403
        )
    if not email or not password:
        return _login_page(
            request, next_path, i18n.gettext("Enter your e-mail and password."), email, 422
        )
    try:
        logged_in = service.log_in(
            db,
            settings,
            email=email,
            password=password,
            address=client_address(request),
            now=now,
        )
    except (NotAuthenticated, TooManyRequests) as exc:
        return _login_page(request, next_path, exc.message, email, exc.status_code)
    response = RedirectResponse(next_path, status_code=303)
    set_session_cookie(response, logged_in.token, settings)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout_submit(
    request: Request, _auth: CurrentAuth, db: SessionDep, settings: SettingsDep, now: NowDep
) -> Response:
    service.log_out(db, request.cookies[SESSION_COOKIE], request.app.state.session_cache, now)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, settings)
    # The offline queue (IndexedDB), the service worker's caches and the HTTP cache go too:
    # on a shared clinic phone the next user must not find this one's pages or writes.
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response


def _language_chosen(language: str, back: str, settings: SettingsDep) -> Response:
    chosen = i18n.normal(language)
    if chosen is None:
        raise ValidationFailed(i18n.gettext("Choose English or Sesotho."), field="language")
    response = RedirectResponse(_safe_next(back), status_code=303)
    response.set_cookie(
        LANGUAGE_COOKIE,
        chosen,
        max_age=365 * 86400,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
    )
    return response


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
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not tokens_equal(cookie, csrf_token):
        return _login_page(
            request,
            _safe_next(next),
            i18n.gettext("Your form expired; please try again."),
            status=403,
        )
    return _language_chosen(language, next, settings)
