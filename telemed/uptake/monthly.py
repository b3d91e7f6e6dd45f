"""One month's counts and sums per facility: what an aggregate export (DHIS2) sends.

Only counts and sums: ratios, medians and percentiles cannot be added up across
facilities or months, so they are left to the receiving system's indicators (an average
wait is the sum of seconds divided by the count).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlmodel import Session, select

from telemed.facilities.models import Facility
from telemed.uptake import counting
from telemed.uptake.filters import month_filters
from telemed.uptake.indicators import INDICATORS, Measure

__all__ = ["FacilityValue", "facility_month_values", "month_filters"]

# Indicators sent by category (one value per category option).
BY_CATEGORY = ("requests", "outcomes", "network_tests")
# Not per facility: specialists serve every facility, so a facility's "active
# specialists" would be counted again in every facility they served.
NOT_PER_FACILITY = ("active_specialists",)


@dataclass(frozen=True)
class FacilityValue:
    """``indicator`` is an indicator key (``telemed.uptake.indicators``), or for a
    duration ``<key>_seconds_sum`` and ``<key>_count``; ``facility`` a facility code;
    ``category`` the category option (urgency, outcome, recommendation) or None."""

    indicator: str
    facility: str
    value: int | float
    category: str | None = None


def facility_month_values(session: Session, month: date) -> list[FacilityValue]:
    """Every count and sum of the Maseru calendar month that contains ``month``, per
    facility (and category); zeros are left out. Sorted for a stable export."""
    filters = month_filters(month)
    codes = dict(session.exec(select(Facility.id, Facility.code)).all())
    out: list[FacilityValue] = []
    for key, ind in INDICATORS.items():
        if key in NOT_PER_FACILITY:
            continue
        if ind.measure is Measure.duration:
            for fid, (seconds, n) in counting.seconds_sums(
                session, ind, filters, "facility"
            ).items():
                out.append(FacilityValue(f"{key}_seconds_sum", codes[fid], round(seconds)))
                out.append(FacilityValue(f"{key}_count", codes[fid], n))
        elif key in BY_CATEGORY:
            for (fid, cat), amount in counting.grouped(
                session, ind, filters, "facility", "category"
            ).items():
                out.append(FacilityValue(key, codes[fid], _number(amount), str(cat)))
        else:
            for fid, amount in counting.by_one(session, ind, filters, "facility").items():
                out.append(FacilityValue(key, codes[fid], _number(amount)))
    out = [v for v in out if v.value]
    out.sort(key=lambda v: (v.indicator, v.facility, v.category or ""))
    return out


def _number(amount: float) -> int | float:
    return int(amount) if float(amount).is_integer() else round(float(amount), 2)
