"""Accounts JSON API: log in and out, who am I, and user administration."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response

from telemed import flows
from telemed.accounts import repository, service, unlock
from telemed.accounts.cookies import clear_session_cookie, set_session_cookie
from telemed.accounts.models import Role, User
from telemed.accounts.schemas import (
    LoginRequest,
    LoginResponse,
    UnlockRequest,
    UnlockUse,
    UserCreate,
    UserPublic,
)
from telemed.admin import service as admin_service
from telemed.deps import (
    SESSION_COOKIE,
    CurrentAuth,
    NowDep,
    PolicyDep,
    SessionDep,
    SettingsDep,
    client_address,
    require_role,
)
from telemed.mfa import service as mfa
from telemed.mfa.deps import MfaPolicyDep, RecentAuth
from telemed.validation import Id
from telemed.web.access import ADMINS, EVERYONE, OWN, PUBLIC, Access
from telemed.web.errors import error_responses

router = APIRouter(tags=["accounts"])

AdminUser = Annotated[User, require_role(Role.admin)]


@router.post("/auth/login", responses=error_responses(401, 403, 422, 429))
def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    mfa_policy: MfaPolicyDep,
) -> LoginResponse:
    """Log in: sets the session cookie and returns the CSRF token for later writes.

    Failures for one e-mail from one address make the next attempt from there wait (429
    with `Retry-After`, doubling from 1 s); many for one e-mail from everywhere, or hundreds
    from one address, refuse addresses the account has not logged in from lately
    (docs/login-policy.md). `POST /auth/unlock-requests` e-mails the owner a way out. A user
    with two-step login sends the code from their app (or a recovery code) as `code`: without
    it, 401 naming `code`. A role that requires two-step login without it set up is refused
    (403): set it up on the web page.
    """
    user = service.check_password(
        db,
        settings,
        email=body.email,
        password=body.password,
        address=client_address(request),
        now=now,
    )
    mfa.check_api_login(db, mfa_policy, user, body.code, now)
    logged_in = service.open_session(db, settings, user, now)
    set_session_cookie(response, logged_in.token, settings)
    return LoginResponse(
        user=UserPublic.model_validate(logged_in.user), csrf_token=logged_in.csrf_token
    )


@router.post("/auth/unlock-requests", status_code=202, responses=error_responses(422))
def request_unlock(body: UnlockRequest, db: SessionDep, settings: SettingsDep, now: NowDep) -> None:
    """E-mail the account an unlock link (once a quarter hour at most). The answer is the
    same whether or not the e-mail has an account."""
    flows.send_unlock_link(db, settings, body.email, now)


@router.post("/auth/unlock", status_code=204, responses=error_responses(404, 409, 422))
def use_unlock(
    body: UnlockUse, request: Request, db: SessionDep, settings: SettingsDep, now: NowDep
) -> None:
    """Use an e-mailed unlock link: the account's login throttle starts again from nothing.
    404 for a link we never made, 409 for one used already or expired."""
    unlock.use(db, settings.secret_key, body.token, now, client_address(request))


@router.post("/auth/logout", status_code=204)
def logout(
    request: Request,
    response: Response,
    _auth: CurrentAuth,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> None:
    """End this session everywhere (the cookie stops working even if kept)."""
    service.log_out(db, request.cookies[SESSION_COOKIE], request.app.state.session_cache, now)
    clear_session_cookie(response, settings)


@router.get("/auth/me")
def me(auth: CurrentAuth) -> LoginResponse:
    """The logged-in user and the session's CSRF token."""
    return LoginResponse(user=UserPublic.model_validate(auth.user), csrf_token=auth.csrf_token)


@router.get("/users")
def list_users(_admin: AdminUser, db: SessionDep) -> list[UserPublic]:
    """All accounts (admins only)."""
    return [UserPublic.model_validate(u) for u in repository.list_users(db)]


@router.post("/users", status_code=201, responses=error_responses(403))
def create_user(
    body: UserCreate, admin: AdminUser, _recent: RecentAuth, db: SessionDep, settings: SettingsDep
) -> UserPublic:
    """Create an account (admins only); audited, as on the admin page."""
    return UserPublic.model_validate(admin_service.create_user(db, settings, admin, body))


@router.post("/users/{user_id}/deactivate", responses=error_responses(404, 409))
def deactivate_user(
    user_id: Id,
    request: Request,
    admin: AdminUser,
    _recent: RecentAuth,
    db: SessionDep,
    now: NowDep,
    policy: PolicyDep,
) -> UserPublic:
    """Deactivate an account (admins only): it can no longer log in, its sessions end
    (in other server processes within `TELEMED_SESSION_CACHE_SECONDS`), and its open offers
    are withdrawn and go to the next specialist. Its records are kept."""
    user = admin_service.deactivate_user(db, admin, user_id, request.app.state.session_cache, now)
    flows.user_deactivated(db, user, policy, now)
    return UserPublic.model_validate(user)


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {
    "login": PUBLIC,
    "request_unlock": PUBLIC,
    "use_unlock": Access(*EVERYONE, scope="the holder of the unlock link"),
    "logout": OWN,
    "me": OWN,
    "list_users": ADMINS,
    "create_user": ADMINS,
    "deactivate_user": ADMINS,
}
