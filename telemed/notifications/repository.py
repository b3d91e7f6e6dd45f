"""All SQL of notifications and the outbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from telemed.accounts.models import Role, User
from telemed.notifications.models import (
    DeliveryStatus,
    Notification,
    OutboxAttachment,
    OutboxMessage,
)

DUE = (DeliveryStatus.pending, DeliveryStatus.retrying)
PROBLEMS = (DeliveryStatus.failed, DeliveryStatus.retrying)


def insert_notification(session: Session, values: dict[str, Any]) -> int | None:
    """Insert a notification unless one with its dedupe key exists; its id, or None.

    ``INSERT ... ON CONFLICT DO NOTHING`` never raises on a duplicate, so the caller's
    transaction stays usable (an IntegrityError would abort it on PostgreSQL). A concurrent
    transaction inserting the same key makes this one wait for its outcome.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(Notification)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(col(Notification.id))
    )
    found = session.execute(statement).scalar_one_or_none()
    return int(found) if found is not None else None


def existing_keys(session: Session, keys: Sequence[str]) -> set[str]:
    """Which of ``keys`` already have a notification (one query, by the unique index)."""
    if not keys:
        return set()
    rows = session.exec(
        select(Notification.dedupe_key).where(col(Notification.dedupe_key).in_(list(keys)))
    )
    return set(rows)


def active_coordinators(session: Session) -> list[User]:
    return list(
        session.exec(
            select(User)
            .where(User.role == Role.coordinator, col(User.is_active).is_(True))
            .order_by(col(User.id))
        )
    )


# In-app notifications


def notifications_of(session: Session, user_id: int, offset: int, limit: int) -> list[Notification]:
    return list(
        session.exec(
            select(Notification)
            .where(Notification.user_id == user_id)
            .order_by(col(Notification.created_at).desc(), col(Notification.id).desc())
            .offset(offset)
            .limit(limit)
        )
    )


def count_of(session: Session, user_id: int, *, unread_only: bool = False) -> int:
    query = select(func.count()).select_from(Notification).where(Notification.user_id == user_id)
    if unread_only:
        query = query.where(col(Notification.read_at).is_(None))
    return int(session.exec(query).one())


def get_notification(session: Session, notification_id: int) -> Notification | None:
    return session.exec(
        select(Notification)
        .where(Notification.id == notification_id)
        .execution_options(populate_existing=True)
    ).first()


def mark_read(session: Session, user_id: int, ids: Sequence[int], at: datetime) -> int:
    """Mark the given notifications of ``user_id`` read (others' are left alone)."""
    if not ids:
        return 0
    result = session.execute(
        update(Notification)
        .where(
            col(Notification.id).in_(list(ids)),
            col(Notification.user_id) == user_id,
            col(Notification.read_at).is_(None),
        )
        .values(read_at=at)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# The outbox


def due_message_ids(session: Session, now: datetime, limit: int) -> list[int]:
    return [
        int(i)
        for i in session.exec(
            select(OutboxMessage.id)
            .where(col(OutboxMessage.status).in_(DUE), OutboxMessage.next_attempt_at <= now)
            .order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
            .limit(limit)
        )
        if i is not None
    ]


def claim(session: Session, message_id: int, now: datetime) -> bool:
    """Mark a due message ``sending`` (one more attempt); False if it is no longer due,
    e.g. another run claimed it first."""
    result = session.execute(
        update(OutboxMessage)
        .where(
            col(OutboxMessage.id) == message_id,
            col(OutboxMessage.status).in_(DUE),
            col(OutboxMessage.next_attempt_at) <= now,
        )
        .values(
            status=DeliveryStatus.sending,
            claimed_at=now,
            attempts=OutboxMessage.attempts + 1,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def get_message(session: Session, message_id: int) -> OutboxMessage | None:
    return session.exec(
        select(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .execution_options(populate_existing=True)
    ).first()


def attachments_of(session: Session, message_id: int) -> list[OutboxAttachment]:
    return list(
        session.exec(
            select(OutboxAttachment)
            .where(OutboxAttachment.message_id == message_id)
            .order_by(col(OutboxAttachment.id))
        )
    )


def finish(session: Session, message_id: int, **values: Any) -> bool:
    """Record the outcome of a send; only a message still ``sending`` changes."""
    result = session.execute(
        update(OutboxMessage)
        .where(
            col(OutboxMessage.id) == message_id,
            col(OutboxMessage.status) == DeliveryStatus.sending,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def fail_interrupted(session: Session, claimed_before: datetime, error: str) -> list[int]:
    """Messages left ``sending`` since before ``claimed_before`` (the process died mid-send):
    failed, never sent again by themselves."""
    ids = [
        int(i)
        for i in session.exec(
            select(OutboxMessage.id).where(
                col(OutboxMessage.status) == DeliveryStatus.sending,
                col(OutboxMessage.claimed_at) < claimed_before,
            )
        )
        if i is not None
    ]
    if ids:
        session.execute(
            update(OutboxMessage)
            .where(
                col(OutboxMessage.id).in_(ids),
                col(OutboxMessage.status) == DeliveryStatus.sending,
            )
            .values(status=DeliveryStatus.failed, last_error=error)
            .execution_options(synchronize_session=False)
        )
    return ids


def problem_messages(session: Session, limit: int) -> list[OutboxMessage]:
    """Failed and retrying messages, the most recent first."""
    return list(
        session.exec(
            select(OutboxMessage)
            .where(col(OutboxMessage.status).in_(PROBLEMS))
            .order_by(col(OutboxMessage.created_at).desc(), col(OutboxMessage.id).desc())
            .limit(limit)
        )
    )


def requeue(session: Session, message_id: int, now: datetime) -> bool:
    """Put a failed or retrying message back to pending, due now, with fresh attempts."""
    result = session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.id) == message_id, col(OutboxMessage.status).in_(PROBLEMS))
        .values(status=DeliveryStatus.pending, next_attempt_at=now, attempts=0, claimed_at=None)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def count_failed(session: Session) -> int:
    """Messages that could not be delivered (and were not retried since)."""
    return int(
        session.exec(
            select(func.count()).where(OutboxMessage.status == DeliveryStatus.failed)
        ).one()
    )
