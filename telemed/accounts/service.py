"""Accounts: creating users, logging in (with throttling) and out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from telemed import i18n, uow
from telemed.accounts import repository, throttle
from telemed.accounts.models import LoginAttempt, Role, User, UserSession
from telemed.accounts.security import (
    MIN_PASSWORD_LENGTH,
    hash_password,
    needs_rehash,
    new_token,
    token_digest,
    verify_password,
)
from telemed.accounts.session_cache import LiveSession, SessionCache
from telemed.accounts.throttle import ThrottlePolicy
from telemed.db import pk
from telemed.errors import (
    Conflict,
    NotAuthenticated,
    NotFound,
    ValidationFailed,
)
from telemed.facilities.models import Facility
from telemed.i18n import N_
from telemed.settings import Settings
from telemed.validation import E164, check_zone, compact_phone

DEACTIVATED_MESSAGE = "This account has been deactivated; ask an administrator to restore it."


def normalize_phone(phone: str | None) -> str | None:
    """An E.164 number (``+26658123456``) from what a person typed; spaces, dots, dashes and
    brackets are dropped. Empty means none."""
    if phone is None or not phone.strip():
        return None
    compact = compact_phone(phone)
    if not E164.fullmatch(compact):
        raise ValidationFailed(
            N_("phone must be in international format, e.g. +26658123456"), field="phone"
        )
    return compact


@dataclass(frozen=True)
class LoggedIn:
    user: User
    token: str  # the cookie value; only its digest is stored
    csrf_token: str


def create_user(
    session: Session,
    settings: Settings,
    *,
    email: str,
    full_name: str,
    role: Role,
    password: str,
    facility_code: str | None = None,
    timezone: str | None = None,
    phone: str | None = None,
    language: str = i18n.DEFAULT_LANGUAGE,
) -> User:
    email = email.strip().lower()
    chosen_language = i18n.normal(language)
    if chosen_language is None:
        raise ValidationFailed(
            N_("unknown language %(language)s: en or st"), language=repr(language), field="language"
        )
    phone = normalize_phone(phone)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            N_("password must have at least %(min_password_length)s characters"),
            min_password_length=MIN_PASSWORD_LENGTH,
            field="password",
        )
    facility_id: int | None = None
    if role is Role.clinician and not facility_code:
        raise ValidationFailed(N_("a clinician belongs to a facility"), field="facility_code")
    if facility_code:
        facility = session.exec(select(Facility).where(Facility.code == facility_code)).first()
        if facility is None:
            raise ValidationFailed(
                N_("unknown facility code %(facility_code)s"),
                facility_code=repr(facility_code),
                field="facility_code",
            )
        facility_id = facility.id
    if timezone is None:
        timezone = (
            settings.clinician_timezone if role is Role.clinician else settings.default_timezone
        )
    check_zone(timezone)
    if repository.get_user_by_email(session, email) is not None:
        raise Conflict(
            N_("a user with e-mail %(email)s already exists"), email=email, field="email"
        )
    user = User(
        email=email,
        full_name=full_name.strip(),
        role=role,
        facility_id=facility_id,
        timezone=timezone,
        password_hash=hash_password(password, settings.password_hashing),
        phone=phone,
        language=chosen_language,
    )
    try:
        with session.begin_nested():  # a refusal leaves the caller's unit of work usable
            session.add(user)
    except IntegrityError as exc:  # a concurrent create with the same e-mail
        raise Conflict(
            N_("a user with e-mail %(email)s already exists"), email=email, field="email"
        ) from exc
    return user


def log_in(
    session: Session,
    settings: Settings,
    *,
    email: str,
    password: str,
    address: str,
    now: datetime,
) -> LoggedIn:
    """Password check and a new session at once: for users without a second step."""
    user = check_password(
        session, settings, email=email, password=password, address=address, now=now
    )
    return open_session(session, settings, user, now)


def check_password(
    session: Session,
    settings: Settings,
    *,
    email: str,
    password: str,
    address: str,
    now: datetime,
) -> User:
    """The user whose password this is (throttled, every attempt recorded). No session
    yet: a login with a second factor (telemed.mfa) opens it after the code."""
    email = email.strip().lower()
    throttle.check(session, ThrottlePolicy.from_settings(settings), email, address, now)
    user = repository.get_user_by_email(session, email)
    # The hash is slow on purpose: verified in the read transaction, which holds no lock.
    ok = verify_password(user.password_hash if user else None, password, settings.password_hashing)
    succeeded = ok and user is not None and user.is_active
    if not succeeded or user is None:
        # The failure counts although the request fails (401): see telemed.uow.
        uow.persist_regardless(
            session,
            lambda unit: unit.add(
                LoginAttempt(email=email, client_address=address, succeeded=False, at=now)
            ),
        )
        if ok:  # only someone who knows the password learns that the account exists
            raise NotAuthenticated(DEACTIVATED_MESSAGE)
        raise NotAuthenticated(N_("Wrong e-mail or password."))
    cost = settings.password_hashing
    rehashed = hash_password(password, cost) if needs_rehash(user.password_hash, cost) else None
    uow.begin_writing(session)  # only now the write lock (SQLite), for the rows below
    session.add(LoginAttempt(email=email, client_address=address, succeeded=True, at=now))
    if rehashed is not None:
        user.password_hash = rehashed
    return user


def open_session(session: Session, settings: Settings, user: User, now: datetime) -> LoggedIn:
    """A new login session for ``user``, whose identity is proven."""
    token, csrf = new_token(), new_token()
    session.add(
        UserSession(
            id=token_digest(token),
            user_id=pk(user),
            csrf_token=csrf,
            created_at=now,
            expires_at=now + timedelta(hours=settings.session_hours),
        )
    )
    session.flush()
    return LoggedIn(user=user, token=token, csrf_token=csrf)


def resolve_session(session: Session, token: str, now: datetime) -> LiveSession | None:
    """The CSRF token, user and expiry of a live session, or None."""
    return repository.get_live_session(session, token_digest(token), now)


def log_out(session: Session, token: str, cache: SessionCache, now: datetime) -> None:
    digest = token_digest(token)
    repository.revoke_session(session, digest, now)
    # Forgotten once revoked for good: a request between now and the commit could
    # otherwise remember the session again from the database.
    uow.after_commit(session, lambda: cache.forget(digest))


def set_language(
    session: Session, user: User, language: str, *, cache: SessionCache, token: str
) -> None:
    """The language of ``user``'s pages and messages from now on. ``cache`` remembers the
    session's user, language included: forgotten once the change commits."""
    chosen = i18n.normal(language)
    if chosen is None:
        raise ValidationFailed(i18n.gettext("Choose English or Sesotho."), field="language")
    stored = session.get(User, pk(user))
    if stored is None:
        raise NotFound(N_("user %(user_id)s not found"), user_id=pk(user))
    stored.language = chosen
    session.add(stored)
    session.flush()
    digest = token_digest(token)
    uow.after_commit(session, lambda: cache.forget(digest))


def set_phone(session: Session, user: User, phone: str) -> User:
    """The mobile number emergency and other SMS notices go to; blank removes it. Not in
    the session's snapshot of the user, so nothing remembered needs forgetting."""
    stored = session.get(User, pk(user))
    if stored is None:
        raise NotFound(N_("user %(user_id)s not found"), user_id=pk(user))
    stored.phone = normalize_phone(phone)
    session.add(stored)
    session.flush()
    return stored


def deactivate_user(
    session: Session,
    user_id: int,
    *,
    by: User | None,
    cache: SessionCache | None,
    now: datetime,
) -> User:
    """The user can no longer log in, and every session they have stops working: at once in
    this process (``cache``), within ``session_cache_seconds`` in the others (their session
    caches). Nothing is deleted: their notes, messages and audit rows stay theirs.
    Idempotent. ``by`` is the admin (None: the command line), who cannot lock themselves out."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(N_("user %(user_id)s not found"), user_id=user_id)
    if by is not None and user.id == by.id:
        raise Conflict(N_("you cannot deactivate your own account"), field="user_id")
    user.is_active = False
    session.add(user)
    digests = repository.revoke_sessions_of(session, user_id, now)
    session.flush()
    if cache is not None:
        remembered = cache

        def forget() -> None:
            for digest in digests:
                remembered.forget(digest)

        uow.after_commit(session, forget)
    return user
