"""Accounts JSON API: log in and out, who am I, and user administration."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response

from telemed import flows
from telemed.accounts import repository, service
from telemed.accounts.cookies import clear_session_cookie, set_session_cookie
from telemed.accounts.models import Role, User
from telemed.accounts.schemas import LoginRequest, LoginResponse, UserCreate, UserPublic
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
from telemed.validation import Id
from telemed.web.errors import error_responses

router = APIRouter(tags=["accounts"])

AdminUser = Annotated[User, require_role(Role.admin)]


@router.post("/auth/login", responses=error_responses(401, 422, 429))
def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> LoginResponse:
    """Log in: sets the session cookie and returns the CSRF token for later writes.

    After repeated failures for one e-mail (or one address) further attempts are refused
    with 429 for the throttling window.
    """
    logged_in = service.log_in(
        db,
        settings,
        email=body.email,
        password=body.password,
        address=client_address(request),
        now=now,
    )
    set_session_cookie(response, logged_in.token, settings)
    return LoginResponse(
        user=UserPublic.model_validate(logged_in.user), csrf_token=logged_in.csrf_token
    )


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


@router.post("/users", status_code=201)
def create_user(
    body: UserCreate, _admin: AdminUser, db: SessionDep, settings: SettingsDep
) -> UserPublic:
    """Create an account (admins only)."""
    user = service.create_user(
        db,
        settings,
        email=body.email,
        full_name=body.full_name,
        role=body.role,
        password=body.password,
        facility_code=body.facility_code,
        timezone=body.timezone,
        phone=body.phone,
    )
    return UserPublic.model_validate(user)


@router.post("/users/{user_id}/deactivate", responses=error_responses(404, 409))
def deactivate_user(
    user_id: Id,
    request: Request,
    admin: AdminUser,
    db: SessionDep,
    now: NowDep,
    policy: PolicyDep,
) -> UserPublic:
    """Deactivate an account (admins only): it can no longer log in, its sessions end
    (in other server processes within `TELEMED_SESSION_CACHE_SECONDS`), and its open offers
    are withdrawn and go to the next specialist. Its records are kept."""
    user = service.deactivate_user(
        db, user_id, by=admin, cache=request.app.state.session_cache, now=now
    )
    flows.user_deactivated(db, user, policy, now)
    return UserPublic.model_validate(user)
