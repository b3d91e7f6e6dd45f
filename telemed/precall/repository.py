"""All SQL of network test results."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from telemed.facilities.models import District, Facility
from telemed.precall.models import NetworkTest


def add(session: Session, row: NetworkTest) -> NetworkTest:
    session.add(row)
    session.flush()
    return row


def latest_for_user(session: Session, user_id: int, since: datetime) -> NetworkTest | None:
    return session.exec(
        select(NetworkTest)
        .where(NetworkTest.user_id == user_id, col(NetworkTest.created_at) >= since)
        .order_by(col(NetworkTest.created_at).desc(), col(NetworkTest.id).desc())
        .limit(1)
    ).first()


def latest_for_facility(session: Session, facility_id: int, since: datetime) -> NetworkTest | None:
    return session.exec(
        select(NetworkTest)
        .where(NetworkTest.facility_id == facility_id, col(NetworkTest.created_at) >= since)
        .order_by(col(NetworkTest.created_at).desc(), col(NetworkTest.id).desc())
        .limit(1)
    ).first()


def facilities(session: Session) -> list[tuple[Facility, str]]:
    """Every facility with its district's name, by district then facility name."""
    rows = session.exec(
        select(Facility, District.name)
        .join(District, col(District.id) == col(Facility.district_id))
        .order_by(col(District.name), col(Facility.name))
    )
    return [(facility, district) for facility, district in rows]


def latest_per_facility(session: Session) -> dict[int, NetworkTest]:
    ranked = (
        select(
            col(NetworkTest.id).label("id"),
            func.row_number()
            .over(
                partition_by=col(NetworkTest.facility_id),
                order_by=(col(NetworkTest.created_at).desc(), col(NetworkTest.id).desc()),
            )
            .label("rank"),
        )
        .where(col(NetworkTest.facility_id).is_not(None))
        .subquery()
    )
    rows = session.exec(
        select(NetworkTest)
        .join(ranked, ranked.c.id == col(NetworkTest.id))
        .where(ranked.c.rank == 1)
    )
    return {row.facility_id: row for row in rows if row.facility_id is not None}


def counts_per_facility(session: Session) -> dict[int, int]:
    rows = session.exec(
        select(NetworkTest.facility_id, func.count())
        .where(col(NetworkTest.facility_id).is_not(None))
        .group_by(col(NetworkTest.facility_id))
    )
    return {facility_id: count for facility_id, count in rows if facility_id is not None}
