"""All SQL of the accounts domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from telemed.accounts.models import LoginAttempt, User, UserSession


def get_user(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def get_user_by_email(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(User.email == email.strip().lower())).first()


def users_by_id(session: Session, user_ids: set[int]) -> dict[int, User]:
    if not user_ids:
        return {}
    return {u.id or 0: u for u in session.exec(select(User).where(col(User.id).in_(user_ids)))}


def list_users(session: Session) -> list[User]:
    return list(session.exec(select(User).order_by(col(User.role), col(User.email))))


def get_live_session(
    session: Session, digest: str, now: datetime
) -> tuple[UserSession, User] | None:
    row = session.exec(
        select(UserSession, User)
        .join(User, col(User.id) == col(UserSession.user_id))
        .where(
            UserSession.id == digest,
            col(UserSession.revoked_at).is_(None),
            UserSession.expires_at > now,
            col(User.is_active).is_(True),
        )
    ).first()
    return (row[0], row[1]) if row else None


def revoke_session(session: Session, digest: str, now: datetime) -> None:
    session.execute(update(UserSession).where(col(UserSession.id) == digest).values(revoked_at=now))


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
