"""All SQL of the specialist directory."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from telemed.accounts.models import User
from telemed.db import rows_grouped_by
from telemed.directory.models import (
    AvailabilityException,
    AvailabilityWindow,
    SpecialistProfile,
    SpecialistSpecialty,
    VerificationStatus,
)


def get_profile(session: Session, user_id: int) -> SpecialistProfile | None:
    return session.get(SpecialistProfile, user_id)


def lock_profile(session: Session, user_id: int) -> SpecialistProfile | None:
    """The profile, freshly read and row-locked until the transaction ends (PostgreSQL;
    SQLite transactions hold the database write lock already): every check of a weekly cap
    and the booking or offer that follows it queue here, one specialist at a time."""
    return session.exec(
        select(SpecialistProfile)
        .where(SpecialistProfile.user_id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


def specialties_of(session: Session, user_ids: Iterable[int]) -> dict[int, list[str]]:
    rows = rows_grouped_by(
        session, SpecialistSpecialty, "user_id", user_ids, col(SpecialistSpecialty.specialty_code)
    )
    codes: dict[int, list[str]] = defaultdict(list)
    codes.update({uid: [r.specialty_code for r in found] for uid, found in rows.items()})
    return codes


def replace_specialties(session: Session, user_id: int, codes: Iterable[str]) -> None:
    session.execute(delete(SpecialistSpecialty).where(col(SpecialistSpecialty.user_id) == user_id))
    session.add_all(SpecialistSpecialty(user_id=user_id, specialty_code=c) for c in codes)


def list_profiles(
    session: Session, status: VerificationStatus | None = None
) -> list[tuple[SpecialistProfile, User]]:
    query = select(SpecialistProfile, User).join(
        User, col(User.id) == col(SpecialistProfile.user_id)
    )
    if status is not None:
        query = query.where(SpecialistProfile.status == status)
    rows = session.exec(query.order_by(col(SpecialistProfile.created_at)))
    return [(profile, user) for profile, user in rows]


def eligible_profiles(
    session: Session, today: date, specialty: str | None = None
) -> list[tuple[SpecialistProfile, User]]:
    """Verified, unexpired, not away, active users (optionally of one specialty)."""
    query = (
        select(SpecialistProfile, User)
        .join(User, col(User.id) == col(SpecialistProfile.user_id))
        .where(
            SpecialistProfile.status == VerificationStatus.verified,
            col(SpecialistProfile.registration_expires_on) >= today,
            col(User.is_active).is_(True),
        )
    )
    if specialty is not None:
        query = query.where(
            col(SpecialistProfile.user_id).in_(
                select(SpecialistSpecialty.user_id).where(
                    SpecialistSpecialty.specialty_code == specialty
                )
            )
        )
    rows = session.exec(query.order_by(col(SpecialistProfile.user_id)))
    return [(profile, user) for profile, user in rows]


def expiring(session: Session, first: date, last: date) -> list[tuple[SpecialistProfile, User]]:
    rows = session.exec(
        select(SpecialistProfile, User)
        .join(User, col(User.id) == col(SpecialistProfile.user_id))
        .where(
            SpecialistProfile.status == VerificationStatus.verified,
            col(SpecialistProfile.registration_expires_on) >= first,
            col(SpecialistProfile.registration_expires_on) <= last,
        )
        .order_by(col(SpecialistProfile.registration_expires_on))
    )
    return [(profile, user) for profile, user in rows]


def registrations_since(session: Session, address: str, since: datetime) -> int:
    return int(
        session.exec(
            select(func.count())
            .select_from(SpecialistProfile)
            .where(
                SpecialistProfile.registered_from == address,
                col(SpecialistProfile.created_at) >= since,
            )
        ).one()
    )


def windows_of(session: Session, user_ids: Iterable[int]) -> dict[int, list[AvailabilityWindow]]:
    return rows_grouped_by(
        session,
        AvailabilityWindow,
        "user_id",
        user_ids,
        col(AvailabilityWindow.weekday),
        col(AvailabilityWindow.start_time),
    )


def exceptions_of(
    session: Session, user_ids: Iterable[int]
) -> dict[int, list[AvailabilityException]]:
    return rows_grouped_by(
        session,
        AvailabilityException,
        "user_id",
        user_ids,
        col(AvailabilityException.first_day),
        col(AvailabilityException.start_time),
    )


def replace_availability(
    session: Session,
    user_id: int,
    windows: list[AvailabilityWindow],
    exceptions: list[AvailabilityException],
) -> None:
    session.execute(delete(AvailabilityWindow).where(col(AvailabilityWindow.user_id) == user_id))
    session.execute(
        delete(AvailabilityException).where(col(AvailabilityException.user_id) == user_id)
    )
    session.add_all(windows)
    session.add_all(exceptions)


def count_pending(session: Session) -> int:
    """Registrations awaiting a coordinator's verification."""
    return int(
        session.exec(
            select(func.count()).where(SpecialistProfile.status == VerificationStatus.pending)
        ).one()
    )


def expiring_registrations(
    session: Session, first: date, last: date
) -> list[tuple[SpecialistProfile, User]]:
    """Verified, active specialists whose registration expires between ``first`` and
    ``last`` (both included)."""
    rows = session.exec(
        select(SpecialistProfile, User)
        .join(User, col(User.id) == col(SpecialistProfile.user_id))
        .where(
            SpecialistProfile.status == VerificationStatus.verified,
            col(SpecialistProfile.registration_expires_on) <= last,
            col(SpecialistProfile.registration_expires_on) >= first,
            col(User.is_active).is_(True),
        )
    ).all()
    return [(profile, user) for profile, user in rows]
