"""All SQL of the accounts domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from telemed.accounts.models import LoginAttempt, User, UserSession
from telemed.accounts.session_cache import LiveSession
from telemed.db import pk


def get_user_by_email(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(User.email == email.strip().lower())).first()


def users_by_id(session: Session, user_ids: set[int]) -> dict[int, User]:
    if not user_ids:
        return {}
    return {pk(u): u for u in session.exec(select(User).where(col(User.id).in_(user_ids)))}


def list_users(session: Session) -> list[User]:
    return list(session.exec(select(User).order_by(col(User.role), col(User.email))))


# What a request needs to know about its user; the password hash stays in the database.
_SESSION_USER_FIELDS = (
    "id",
    "email",
    "full_name",
    "role",
    "facility_id",
    "timezone",
    "language",
    "created_at",
)


def get_live_session(session: Session, digest: str, now: datetime) -> LiveSession | None:
    """The session's CSRF token, expiry and a detached snapshot of its user, in one light
    query (this runs on every request)."""
    row = session.execute(
        select(
            col(UserSession.csrf_token),
            col(UserSession.expires_at),
            *(getattr(User, name) for name in _SESSION_USER_FIELDS),
        )
        .join(User, col(User.id) == col(UserSession.user_id))
        .where(
            col(UserSession.id) == digest,
            col(UserSession.revoked_at).is_(None),
            col(UserSession.expires_at) > now,
            col(User.is_active).is_(True),
        )
    ).first()
    if row is None:
        return None
    csrf_token, expires_at, *values = row
    fields = dict(zip(_SESSION_USER_FIELDS, values, strict=True))
    user = User(**fields, password_hash="", is_active=True)
    return LiveSession(csrf_token=str(csrf_token), user=user, expires_at=expires_at)


def revoke_session(session: Session, digest: str, now: datetime) -> None:
    session.execute(update(UserSession).where(col(UserSession.id) == digest).values(revoked_at=now))


def revoke_sessions_of(session: Session, user_id: int, now: datetime) -> list[str]:
    """Revoke every session of the user still open; their digests."""
    digests = list(
        session.exec(
            select(UserSession.id).where(
                UserSession.user_id == user_id, col(UserSession.revoked_at).is_(None)
            )
        )
    )
    session.execute(
        update(UserSession)
        .where(col(UserSession.user_id) == user_id, col(UserSession.revoked_at).is_(None))
        .values(revoked_at=now)
    )
    return digests


def failures_since(
    session: Session, *, email: str | None = None, address: str | None = None, since: datetime
) -> int:
    """Failed attempts after ``since`` and after the last success for the same e-mail."""
    query = (
        select(func.count())
        .select_from(LoginAttempt)
        .where(col(LoginAttempt.succeeded).is_(False), LoginAttempt.at > since)
    )
    if email is not None:
        last_success = (
            select(func.max(LoginAttempt.at))
            .where(LoginAttempt.email == email, col(LoginAttempt.succeeded).is_(True))
            .scalar_subquery()
        )
        query = query.where(
            LoginAttempt.email == email,
            (last_success.is_(None)) | (col(LoginAttempt.at) > last_success),
        )
    if address is not None:
        query = query.where(LoginAttempt.client_address == address)
    return int(session.exec(query).one())
