"""All SQL of the accounts domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, update
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from telemed.accounts.models import LoginAttempt, LoginUnlock, User, UserSession
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


def _failures(since: datetime, email: str | None, address: str | None) -> SelectOfScalar[datetime]:
    query = select(LoginAttempt.at).where(
        col(LoginAttempt.succeeded).is_(False), LoginAttempt.at > since
    )
    if email is not None:
        query = query.where(LoginAttempt.email == email)
    if address is not None:
        query = query.where(LoginAttempt.client_address == address)
    return query


def failures_since(
    session: Session, since: datetime, *, email: str | None = None, address: str | None = None
) -> tuple[int, datetime | None]:
    """How many failed attempts after ``since`` (for the e-mail, the address, or both),
    and when the latest was."""
    counted = _failures(since, email, address).subquery()
    count, latest = session.execute(select(func.count(), func.max(counted.c.at))).one()
    return int(count), latest


def failure_at(
    session: Session,
    since: datetime,
    offset: int,
    *,
    email: str | None = None,
    address: str | None = None,
) -> datetime:
    """When the failure ``offset`` places after the oldest one since ``since`` happened."""
    query = _failures(since, email, address).order_by(col(LoginAttempt.at)).offset(offset)
    return session.exec(query.limit(1)).one()


def last_success(session: Session, email: str, address: str | None = None) -> datetime | None:
    query = select(func.max(LoginAttempt.at)).where(
        LoginAttempt.email == email, col(LoginAttempt.succeeded).is_(True)
    )
    if address is not None:
        query = query.where(LoginAttempt.client_address == address)
    return session.exec(query).one()


def last_unlock(session: Session, email: str) -> datetime | None:
    """When the account's throttle was last cleared by an e-mail link."""
    return session.exec(
        select(func.max(LoginUnlock.used_at)).where(LoginUnlock.email == email)
    ).one()


def unlock_by_digest(session: Session, digest: str) -> LoginUnlock | None:
    return session.exec(select(LoginUnlock).where(LoginUnlock.token_digest == digest)).first()


def open_unlock_since(session: Session, email: str, since: datetime) -> bool:
    """Whether a link was sent to the account after ``since`` (one per quarter hour)."""
    query = select(LoginUnlock.id).where(LoginUnlock.email == email, LoginUnlock.issued_at > since)
    return session.exec(query.limit(1)).first() is not None


def use_unlock(session: Session, unlock_id: int, now: datetime, address: str) -> bool:
    """Mark the link used, once: False if another request used it first."""
    result = session.execute(
        update(LoginUnlock)
        .where(col(LoginUnlock.id) == unlock_id, col(LoginUnlock.used_at).is_(None))
        .values(used_at=now, used_from=address[:64])
    )
    return bool(getattr(result, "rowcount", 0) == 1)
