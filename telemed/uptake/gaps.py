"""What the indicators' fact rows do not show: the volunteers' hours and load (from the
directory), dormant facilities and specialties without cover. Each reads a few hundred rows
at most (facilities, specialties, specialists' windows), never the consults themselves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, func, select

from telemed.accounts.models import User
from telemed.consults.models import Consult, Specialty
from telemed.directory.models import (
    AvailabilityWindow,
    SpecialistProfile,
    SpecialistSpecialty,
    VerificationStatus,
)
from telemed.facilities.models import District, Facility
from telemed.uptake import counting
from telemed.uptake.filters import Filters, in_maseru
from telemed.uptake.indicators import INDICATORS, Indicator, Measure
from telemed.uptake.tables import NONE, Cell, Table, number, percent, text

DORMANT_DAYS = 30


def hours_offered(session: Session, filters: Filters) -> list[float]:
    """Per bucket: the weekly availability windows of verified specialists who are not
    away (and who offer the filtered specialty), in hours, times the bucket's weeks.
    Leave and extra hours are not taken off or added; district and facility filters do
    not apply (a specialist serves every facility)."""
    query = (
        select(col(AvailabilityWindow.start_time), col(AvailabilityWindow.end_time))
        .join(SpecialistProfile, col(SpecialistProfile.user_id) == col(AvailabilityWindow.user_id))
        .where(
            col(SpecialistProfile.status) == VerificationStatus.verified,
            col(SpecialistProfile.away).is_(False),
        )
    )
    if filters.specialty:
        query = query.where(
            col(AvailabilityWindow.user_id).in_(
                select(SpecialistSpecialty.user_id).where(
                    SpecialistSpecialty.specialty_code == filters.specialty
                )
            )
        )
    weekly = 0.0
    for start_time, end_time in session.execute(query).all():  # columns: no ORM objects
        start = start_time.hour * 60 + start_time.minute
        end = end_time.hour * 60 + end_time.minute or 24 * 60
        weekly += max(0, end - start) / 60
    return [round(weekly * (b.end - b.start).days / 7, 1) for b in filters.buckets()]


Grouped = Callable[[Indicator, counting.GroupBy], dict[tuple[Any, ...], float]]


def specialist_load(session: Session, filters: Filters, grouped: Grouped | None = None) -> Table:
    """Consults each specialist accepted in the range against their weekly cap times the
    range's weeks. ``grouped`` counts (the dashboard's: the rollup's when there is one)."""
    f = filters
    if grouped is None:
        by_specialist = counting.by_one(session, _accepted_by_specialist(), f, "subject")
    else:
        by_specialist = {k[0]: v for k, v in grouped(_accepted_by_specialist(), "subject").items()}
    weeks = (f.end - f.first).days / 7
    table = Table(
        "load",
        "Load against caps",
        ["Specialist", "Accepted", "Weekly cap", "Cap over the period", "Load"],
    )
    if not by_specialist:
        return table
    rows = session.execute(
        select(col(User.id), col(User.full_name), col(SpecialistProfile.weekly_cap))
        .outerjoin(SpecialistProfile, col(SpecialistProfile.user_id) == col(User.id))
        .where(col(User.id).in_(list(by_specialist)))
        .order_by(User.full_name)
    ).all()
    for user_id, full_name, weekly in rows:  # no profile: no cap
        n = by_specialist[user_id]
        cap = None if weekly is None else weekly * weeks
        table.add(
            text(full_name),
            number(n),
            text("no cap" if weekly is None else str(weekly)),
            Cell(None if cap is None else round(cap, 1), NONE if cap is None else f"{cap:,.0f}"),
            percent(None if not cap else n / cap),
        )
    return table


def _accepted_by_specialist() -> Indicator:
    """Accepted offers per specialist: the active specialists' facts, every row counted."""
    return replace(INDICATORS["active_specialists"], measure=Measure.rows)


def dormant_facilities(session: Session, filters: Filters, now: datetime) -> Table:
    """Facilities (of the filtered district or facility) with no consult requested in the
    30 days before the end of the range (or before now, if the range runs to today)."""
    until = min(filters.end_utc, now)
    since = until - timedelta(days=DORMANT_DAYS)
    recent = (
        select(col(Consult.id))
        .where(
            col(Consult.facility_id) == col(Facility.id),
            col(Consult.requested_at) >= since,
            col(Consult.requested_at) < until,
        )
        .exists()
    )
    last = (
        select(func.max(Consult.requested_at))
        .where(col(Consult.facility_id) == col(Facility.id), col(Consult.requested_at) < until)
        .scalar_subquery()
    )
    query = (
        select(col(Facility.code), col(Facility.name), col(District.name), last)
        .join(District, col(District.id) == col(Facility.district_id))
        .where(~recent)
    )
    query = _place_where(query, filters)
    table = Table(
        "dormant",
        f"Dormant facilities (no request in {DORMANT_DAYS} days)",
        ["Facility", "Name", "District", "Last request"],
    )
    for code, name, district, last_at in session.execute(query.order_by(Facility.name)).all():
        when = "never" if last_at is None else f"{in_maseru(last_at):%Y-%m-%d}"
        table.add(text(code), text(name), text(district), text(when))
    return table


def _place_where(query: Any, filters: Filters) -> Any:
    if filters.district:
        query = query.where(col(District.code) == filters.district)
    if filters.facility:
        query = query.where(col(Facility.code) == filters.facility)
    return query


def uncovered_specialties(session: Session, filters: Filters) -> Table:
    """Active specialties that no verified specialist who is not away and has at least
    one weekly availability window offers."""
    covered = (
        select(col(SpecialistSpecialty.specialty_code))
        .join(SpecialistProfile, col(SpecialistProfile.user_id) == col(SpecialistSpecialty.user_id))
        .where(
            col(SpecialistProfile.status) == VerificationStatus.verified,
            col(SpecialistProfile.away).is_(False),
            select(col(AvailabilityWindow.id))
            .where(col(AvailabilityWindow.user_id) == col(SpecialistSpecialty.user_id))
            .exists(),
        )
    )
    query = select(col(Specialty.code), col(Specialty.name)).where(
        col(Specialty.active).is_(True), col(Specialty.code).not_in(covered)
    )
    if filters.specialty:
        query = query.where(col(Specialty.code) == filters.specialty)
    table = Table("uncovered", "Specialties with no cover", ["Specialty", "Name"])
    for code, name in session.execute(query.order_by(Specialty.name)).all():
        table.add(text(code), text(name))
    return table
