"""Dependencies shared by every domain's endpoints and views (``Annotated`` aliases)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from telemed import i18n, uow
from telemed.accounts import service as accounts
from telemed.accounts.models import Role, User
from telemed.accounts.security import token_digest, tokens_equal
from telemed.accounts.session_cache import SessionCache
from telemed.clock import Clock
from telemed.errors import Forbidden, NotAuthenticated
from telemed.i18n import N_
from telemed.offers.policy import OfferPolicy
from telemed.settings import Settings
from telemed.uow import Units

SESSION_COOKIE = "telemed_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


# Dependencies that do no I/O are `async def`: FastAPI runs sync ones in the threadpool,
# and each hop costs more than the work itself.


async def get_app_settings(request: Request) -> Settings:
    """The settings the app was made with; services take them as a parameter, never
    reading the environment themselves (a test or a job can then hand in its own)."""
    settings: Settings = request.app.state.settings
    return settings


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def get_db(request: Request) -> AsyncIterator[Session]:
    """The request's unit of work (``telemed.uow``): committed once the endpoint has
    returned, rolled back if anything raised.

    ``SessionDep`` declares this dependency with ``scope="function"``: FastAPI then runs the
    code after ``yield`` as soon as the endpoint has returned its response object and
    *before* that response is sent (with the default scope it would run after the response
    went out, and a failed commit would follow an acknowledgement). So a client that got a
    2xx knows its write is committed, and a commit that fails is answered by the error
    handlers (500: "nothing was saved"). Creating the session does no I/O; ending it goes to
    a worker thread, and only if the request used the database.

    On SQLite the unit reads without a lock; a writing request queues on the write gate
    before its endpoint (``_authenticate_and_check_csrf``), and one that only read queues
    here, if it has rows to write whatever happens (a read's audit row): ``telemed.uow``.
    """
    session = uow.new_session(request.app.state.engine)
    gate: uow.WriteGate = request.app.state.write_gate
    gate.attach(session)
    try:
        yield session
    except BaseException:
        if uow.has_work(session):
            if uow.needs_gate(session):
                await gate.enter(session)
            await run_in_threadpool(uow.rollback, session)
        raise
    else:
        if uow.has_work(session):
            if uow.needs_gate(session):
                await gate.enter(session)
            await run_in_threadpool(uow.commit, session)
    finally:
        session.close()
        gate.leave(session)


async def _writing_db(request: Request, db: SessionDep) -> Session:
    """The request's unit for an endpoint that writes with no logged-in user (a signed
    link's accept, a registration, an unlock, a login's second step): on SQLite it queues
    for the write lock before the endpoint reads what it will write on (``telemed.uow``),
    as an authenticated write does in ``_authenticate_and_check_csrf``. Two taps on one
    link at once must meet in that queue, not in SQLite's "database is locked"."""
    # Read first, a slow sender must not hold the lock (see there); a form as a form, which
    # FastAPI may have parsed already (the stream is then consumed, and the form cached).
    if request.headers.get("content-type", "").startswith(FORM_TYPES):
        await request.form()
    else:
        await request.body()
    gate: uow.WriteGate = request.app.state.write_gate
    await gate.enter(db)
    return db


async def get_units(request: Request) -> Units:
    """Units of work of their own on the application's database, for the rare endpoint
    that must commit part of its work before a slow step (an upload's last chunk before
    the photo is decoded); everything else uses the request's unit (``SessionDep``)."""
    return Units(request.app.state.engine)


async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


def now_of(request: Request) -> datetime:
    """The request's "now": read from the application's clock once, then kept on the
    request, so that the endpoint, its services and the page it renders agree on it."""
    now: datetime | None = getattr(request.state, "now", None)
    if now is None:
        clock: Clock = request.app.state.clock
        now = request.state.now = clock.now()
    return now


async def get_now(request: Request) -> datetime:
    return now_of(request)


async def get_policy(request: Request) -> OfferPolicy:
    """The offer policy, built once from the settings when the app is made."""
    policy: OfferPolicy = request.app.state.policy
    return policy


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
PolicyDep = Annotated[OfferPolicy, Depends(get_policy)]
SessionDep = Annotated[Session, Depends(get_db, scope="function")]
WritingSessionDep = Annotated[Session, Depends(_writing_db)]
UnitsDep = Annotated[Units, Depends(get_units)]
ClockDep = Annotated[Clock, Depends(get_clock)]
NowDep = Annotated[datetime, Depends(get_now)]


@dataclass(frozen=True)
class Auth:
    user: User
    csrf_token: str


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _authenticate(request: Request, db: Session) -> Auth:
    """The request's user. Async so that a remembered session costs no threadpool hop;
    only a lookup in the database goes to a worker thread. A plain function, not a
    dependency of its own (nor is "now" here): each dependency FastAPI resolves costs a
    request more than the work it does (issue 13)."""
    now = now_of(request)
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise NotAuthenticated(N_("Log in first."))
    cache: SessionCache = request.app.state.session_cache
    digest = token_digest(token)
    found = cache.get(digest)
    if found is None:
        found = await run_in_threadpool(accounts.resolve_session, db, token, now)
        if found is None:
            raise NotAuthenticated(N_("Log in first."))
        cache.put(digest, found, now)
    # The user is a detached snapshot: a rollback later in the request (after an error)
    # cannot expire it while the error page is being rendered.
    auth = Auth(user=found.user, csrf_token=found.csrf_token)
    request.state.auth = auth
    i18n.set_language(found.user.language)  # the profile's language beats cookie and browser
    return auth


async def _authenticate_and_check_csrf(request: Request, db: SessionDep) -> Auth:
    """The request's user; and every state-changing request must prove it came from our
    own page or API client.

    Such a request then queues for the write lock (on SQLite; ``telemed.uow``): its body is
    read by now, so a slow link never holds the queue, and nothing it reads from here on
    can change before it commits."""
    auth = await _authenticate(request, db)
    if request.method in UNSAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.headers.get("content-type", "").startswith(FORM_TYPES):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
        if not sent or not tokens_equal(sent, auth.csrf_token):
            raise Forbidden(N_("missing or wrong CSRF token; reload the page and try again"))
        if not request.headers.get("content-type", "").startswith(FORM_TYPES):
            # A raw body (an upload's chunk, JSON) is read here, before the queue: a link cut
            # mid-chunk would otherwise hold the write lock for as long as the socket lives
            # (seen in the 2G lab: every later write, logins too, waited behind it). It is
            # at most the app's body limit, and the endpoint reads it from the cache.
            await request.body()
        gate: uow.WriteGate = request.app.state.write_gate
        await gate.enter(db)
    return auth


CurrentAuth = Annotated[Auth, Depends(_authenticate_and_check_csrf)]


async def _current_user(auth: CurrentAuth) -> User:
    return auth.user


CurrentUser = Annotated[User, Depends(_current_user)]


def require_role(*roles: Role) -> object:
    async def check(user: CurrentUser) -> User:
        if user.role not in roles:
            raise Forbidden(N_("this needs the role %(roles)s"), roles=" or ".join(roles))
        return user

    return Depends(check)
