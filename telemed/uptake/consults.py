"""The consults behind a number of the dashboard: a page of them (audited as a clinical
read: which consults were shown to whom) or all of them as a streamed CSV."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from telemed.accounts.models import User
from telemed.audit import service as audit
from telemed.audit.models import AuditAction
from telemed.consults.models import Consult
from telemed.errors import ValidationFailed
from telemed.facilities.models import District, Facility
from telemed.i18n import N_
from telemed.uptake import counting
from telemed.uptake.auth import ensure_coordinator
from telemed.uptake.filters import Bucket, Filters, in_maseru
from telemed.uptake.indicators import INDICATORS, Indicator
from telemed.uptake.sql import stream

CONSULTS_PAGE = 50


@dataclass
class ConsultRow:
    id: int
    facility: str
    district: str
    specialty: str
    urgency: str
    state: str
    requested_at: datetime | None


@dataclass
class ConsultPage:
    indicator: Indicator
    filters: Filters
    bucket: Bucket | None
    category: str | None
    rows: list[ConsultRow]
    page: int
    has_next: bool


def _behind(
    filters: Filters, indicator: str, bucket: str | None, category: str | None
) -> tuple[Indicator, Filters, Bucket | None]:
    ind = INDICATORS.get(indicator)
    if ind is None or not ind.consult_based:
        raise ValidationFailed(
            N_("unknown indicator %(indicator)s"), indicator=repr(indicator), field="indicator"
        )
    chosen = None
    if bucket:
        chosen = next((b for b in filters.buckets() if b.key == bucket), None)
        if chosen is None:
            raise ValidationFailed(
                N_("bucket %(bucket)s is not a period of the range"),
                bucket=repr(bucket),
                field="bucket",
            )
        filters = filters.narrowed(chosen)
    if category and category not in ind.categories:
        raise ValidationFailed(
            N_("%(name)s has no category %(category)s"),
            name=ind.label,
            category=repr(category),
            field="category",
        )
    return ind, filters, chosen


def _consult_rows(ind: Indicator, filters: Filters, category: str | None) -> Any:
    ids = counting.consult_ids(ind, filters, category).subquery("ids")
    return (
        sa_select(
            col(Consult.id),
            col(Facility.code),
            col(District.name),
            col(Consult.specialty),
            col(Consult.urgency),
            col(Consult.state),
            col(Consult.requested_at),
        )
        .join(ids, ids.c.consult_id == col(Consult.id))
        .join(Facility, col(Facility.id) == col(Consult.facility_id))
        .join(District, col(District.id) == col(Facility.district_id))
        .order_by(col(Consult.id).desc())
    )


def consults_behind(
    session: Session,
    user: User,
    filters: Filters,
    indicator: str,
    *,
    bucket: str | None = None,
    category: str | None = None,
    page: int = 1,
) -> ConsultPage:
    """The consults counted in one number of the dashboard, newest first, a page at a
    time; the list is a clinical read and audited (which consults were shown to whom)."""
    ensure_coordinator(user)
    ind, narrowed, chosen = _behind(filters, indicator, bucket, category)
    rows = [
        ConsultRow(*r)
        for r in session.execute(
            _consult_rows(ind, narrowed, category)
            .limit(CONSULTS_PAGE + 1)
            .offset((page - 1) * CONSULTS_PAGE)
        )
    ]
    shown = rows[:CONSULTS_PAGE]
    audit.record_access(
        session,
        user,
        AuditAction.list,
        "uptake_consults",
        indicator,
        detail=f"{filters.query(bucket=bucket, category=category)} consults "
        + ",".join(str(r.id) for r in shown),
    )
    return ConsultPage(ind, filters, chosen, category, shown, page, len(rows) > CONSULTS_PAGE)


CSV_COLUMNS = ["consult", "facility", "district", "specialty", "urgency", "state", "requested_at"]


def consults_export(
    session: Session,
    user: User,
    filters: Filters,
    indicator: str,
    *,
    bucket: str | None = None,
    category: str | None = None,
) -> Any:
    """The query of every consult behind a number, for a streamed CSV. Checked and
    audited here, in the request's unit of work, before the first row is sent: one row
    naming the indicator and the filters (a million ids would not fit in it)."""
    ensure_coordinator(user)
    ind, narrowed, _chosen = _behind(filters, indicator, bucket, category)
    audit.record_access(
        session,
        user,
        AuditAction.download,
        "uptake_consults",
        indicator,
        detail=f"CSV {filters.query(bucket=bucket, category=category)}",
    )
    return _consult_rows(ind, narrowed, category)


def export_rows(session: Session, statement: Any) -> Iterator[list[Any]]:
    """The rows of ``consults_export``'s query, fetched in chunks."""
    for r in stream(session, statement):
        at = r[6]
        yield [*r[:6], "" if at is None else in_maseru(at).isoformat(timespec="seconds")]
