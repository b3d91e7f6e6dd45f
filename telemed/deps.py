"""Dependencies shared by every domain's endpoints and views (``Annotated`` aliases)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from telemed.accounts import service as accounts
from telemed.accounts.models import Role, User
from telemed.accounts.security import token_digest, tokens_equal
from telemed.accounts.session_cache import SessionCache
from telemed.clock import Clock
from telemed.db import session_scope
from telemed.errors import Forbidden, NotAuthenticated
from telemed.offers.policy import OfferPolicy
from telemed.settings import Settings

SESSION_COOKIE = "telemed_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


# Dependencies that do no I/O are `async def`: FastAPI runs sync ones in the threadpool,
# and each hop costs more than the work itself.


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_db(request: Request) -> AsyncIterator[Session]:
    """One session per request; creating it does no I/O (connections are taken lazily)."""
    for session in session_scope(request.app.state.engine):
        yield session


async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def get_now(clock: Annotated[Clock, Depends(get_clock)]) -> datetime:
    """The request's "now": read once, so that every step of one request agrees on it."""
    return clock.now()


async def get_policy(request: Request) -> OfferPolicy:
    """The offer policy, built once from the settings when the app is made."""
    policy: OfferPolicy = request.app.state.policy
    return policy


SettingsDep = Annotated[Settings, Depends(get_settings)]
PolicyDep = Annotated[OfferPolicy, Depends(get_policy)]
SessionDep = Annotated[Session, Depends(get_db)]
ClockDep = Annotated[Clock, Depends(get_clock)]
NowDep = Annotated[datetime, Depends(get_now)]


@dataclass(frozen=True)
class Auth:
    user: User
    csrf_token: str


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _authenticate(request: Request, db: SessionDep, now: NowDep) -> Auth:
    """The request's user. Async so that a remembered session costs no threadpool hop;
    only a lookup in the database goes to a worker thread."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise NotAuthenticated("Log in first.")
    cache: SessionCache = request.app.state.session_cache
    digest = token_digest(token)
    found = cache.get(digest)
    if found is None:
        found = await run_in_threadpool(accounts.resolve_session, db, token, now)
        if found is None:
            raise NotAuthenticated("Log in first.")
        cache.put(digest, found, now)
    # The user is a detached snapshot: a rollback later in the request (after an error)
    # cannot expire it while the error page is being rendered.
    auth = Auth(user=found.user, csrf_token=found.csrf_token)
    request.state.auth = auth
    return auth


async def _authenticate_and_check_csrf(
    request: Request, auth: Annotated[Auth, Depends(_authenticate)]
) -> Auth:
    """Every state-changing request must prove it came from our own page or API client."""
    if request.method in UNSAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
        if not sent or not tokens_equal(sent, auth.csrf_token):
            raise Forbidden("missing or wrong CSRF token; reload the page and try again")
    return auth


CurrentAuth = Annotated[Auth, Depends(_authenticate_and_check_csrf)]


async def _current_user(auth: CurrentAuth) -> User:
    return auth.user


CurrentUser = Annotated[User, Depends(_current_user)]


def require_role(*roles: Role) -> object:
    async def check(user: CurrentUser) -> User:
        if user.role not in roles:
            raise Forbidden(f"this needs the role {' or '.join(roles)}")
        return user

    return Depends(check)
