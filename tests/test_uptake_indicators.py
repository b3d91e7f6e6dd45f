"""Every uptake indicator against answers worked out by hand from tests/uptake_fixture.py
(its docstring tells the story), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import Session

from telemed.consults.models import Urgency
from telemed.errors import ValidationFailed
from telemed.uptake import counting
from telemed.uptake.filters import Filters, Period, parse
from telemed.uptake.indicators import INDICATORS
from telemed.uptake.monthly import FacilityValue, facility_month_values
from tests.helpers import Users
from tests.uptake_fixture import NOW, build

OCT, NOV = 0, 1


@pytest.fixture
def months(db: Session, users: Users) -> Filters:
    build(db, users)
    return parse(db, NOW, period="month", from_="2026-10", to="2026-11")


def per_month(db: Session, key: str, f: Filters, category: str | None = None) -> list[float]:
    ind = INDICATORS[key]
    if category is None:
        got = counting.by_one(db, ind, f, "bucket")
        return [got.get(OCT, 0), got.get(NOV, 0)]
    both = counting.grouped(db, ind, f, "bucket", "category")
    return [both.get((OCT, category), 0), both.get((NOV, category), 0)]


EXPECTED = {
    # consult 2 (23:59 Maseru on 31 Oct) is October's, consult 3 (00:30 on 1 Nov) November's
    "requests": [2, 2],
    # consult 2's offer at 22:00 UTC on 31 Oct is midnight, 1 Nov, in Maseru
    "offers_made": [2, 2],
    "offers_accepted": [1, 2],
    "sessions_held": [1, 0],
    "answered_async": [0, 1],
    "escalated": [0, 1],
    "cancelled": [0, 1],
    "no_shows": [0, 1],
    "active_specialists": [1, 2],
    "hours_used": [0.5, 0],
    "follow_ups_due": [0, 2],
    "follow_ups_done": [0, 1],
    "calls_low": [1, 0],
    "calls_dropped": [1, 0],
    "calls_resumed": [0, 0],
}


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_counts_by_month(db: Session, months: Filters, key: str) -> None:
    assert per_month(db, key, months) == pytest.approx(EXPECTED[key])


def test_every_indicator_is_checked_and_defined() -> None:
    checked = set(EXPECTED) | {
        "outcomes",
        "network_tests",
        "wait_acceptance",
        "wait_response",
        "wait_session",
    }
    assert checked == set(INDICATORS)
    assert all(len(i.definition) > 40 for i in INDICATORS.values())


def test_categories(db: Session, months: Filters) -> None:
    assert per_month(db, "requests", months, "urgent") == [1, 1]
    assert per_month(db, "requests", months, "routine") == [1, 0]
    assert per_month(db, "requests", months, "emergency") == [0, 1]
    assert per_month(db, "outcomes", months, "treated_locally") == [1, 0]
    # consult 2's "referred" was corrected: only the latest outcome counts
    assert per_month(db, "outcomes", months, "referral_avoided") == [0, 1]
    assert per_month(db, "outcomes", months, "referred") == [0, 0]
    assert per_month(db, "network_tests", months, "normal") == [1, 0]
    assert per_month(db, "network_tests", months, "low") == [0, 1]
    assert per_month(db, "network_tests", months, "audio-only") == [0, 1]


def test_waits_median_and_p90(db: Session, months: Filters) -> None:
    acceptance = counting.waits(db, INDICATORS["wait_acceptance"], months, "bucket")
    # October: 2 h (consult 1) and 4 h 01 min (consult 2); November: 1 h (consult 4)
    assert acceptance == {OCT: [7200, 14460], NOV: [3600, 3600]}
    response = counting.waits(db, INDICATORS["wait_response"], months, "bucket")
    assert response == {OCT: [3600, 14460], NOV: [3600, 3600]}  # consult 1: the decline
    session = counting.waits(db, INDICATORS["wait_session"], months, "all")
    assert session == {0: [86400, 86400]}
    whole = counting.waits(db, INDICATORS["wait_acceptance"], months, "all")
    assert whole == {0: [7200, 14460]}  # nearest rank of 3600, 7200, 14460


def test_whole_range_counts_distinct(db: Session, months: Filters) -> None:
    assert counting.total(db, INDICATORS["active_specialists"], months) == 2
    assert counting.total(db, INDICATORS["requests"], months) == 4  # the draft is not


def test_filters_narrow(db: Session, months: Filters) -> None:
    from dataclasses import replace

    assert per_month(db, "requests", replace(months, district="MS")) == [1, 1]
    assert per_month(db, "requests", replace(months, facility="BEREA")) == [0, 1]
    assert per_month(db, "requests", replace(months, specialty="paediatrics")) == [1, 1]
    assert per_month(db, "requests", replace(months, urgency=Urgency.emergency)) == [0, 1]
    # network tests belong to no consult: the specialty filter does not apply to them
    tests = per_month(db, "network_tests", replace(months, specialty="paediatrics"), "low")
    assert tests == [0, 1]


def test_weeks_are_cut_at_maseru_midnight(db: Session, months: Filters) -> None:
    weeks = Filters(Period.week, date(2026, 10, 26), date(2026, 11, 9))
    got = counting.by_one(db, INDICATORS["requests"], weeks, "bucket")
    # week of 26 Oct: consult 2 (Sat 31 Oct 23:59 Maseru); week of 2 Nov: nothing; consult 3
    # (Sun 1 Nov 00:30 Maseru) is still in the week of 26 Oct (Monday to Sunday)
    assert got == {0: 2}
    assert [b.start for b in weeks.buckets()] == [date(2026, 10, 26), date(2026, 11, 2)]


def test_facility_month_values(db: Session, months: Filters) -> None:
    values = facility_month_values(db, date(2026, 11, 17))
    assert set(values) == {
        FacilityValue("answered_async", "MAFETENG", 1),
        FacilityValue("cancelled", "BEREA", 1),
        FacilityValue("escalated", "BEREA", 1),
        FacilityValue("follow_ups_done", "MAFETENG", 1),
        FacilityValue("follow_ups_due", "MAFETENG", 1),
        FacilityValue("follow_ups_due", "QMMH", 1),
        FacilityValue("network_tests", "BEREA", 1, "audio-only"),
        FacilityValue("network_tests", "QMMH", 1, "low"),
        FacilityValue("no_shows", "QMMH", 1),
        FacilityValue("offers_accepted", "MAFETENG", 1),
        FacilityValue("offers_accepted", "QMMH", 1),
        FacilityValue("offers_made", "MAFETENG", 1),
        FacilityValue("offers_made", "QMMH", 1),
        FacilityValue("outcomes", "MAFETENG", 1, "referral_avoided"),
        FacilityValue("requests", "BEREA", 1, "emergency"),
        FacilityValue("requests", "QMMH", 1, "urgent"),
        FacilityValue("wait_acceptance_count", "QMMH", 1),
        FacilityValue("wait_acceptance_seconds_sum", "QMMH", 3600),
        FacilityValue("wait_response_count", "QMMH", 1),
        FacilityValue("wait_response_seconds_sum", "QMMH", 3600),
    }
    assert values == sorted(values, key=lambda v: (v.indicator, v.facility, v.category or ""))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"to": "2027-01"}, "to"),
        ({"from": "2026-13"}, "from"),
        ({"from": "last year"}, "from"),
        ({"from": "2026-11", "to": "2026-10"}, "from"),
        ({"period": "day"}, "period"),
        ({"facility": "NOWHERE"}, "facility"),
        ({"specialty": "astrology"}, "specialty"),
        ({"district": "XX"}, "district"),
        ({"urgency": "whenever"}, "urgency"),
    ],
)
def test_bad_filters_name_their_field(db: Session, params: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationFailed) as raised:
        parse(db, NOW, **{("from_" if k == "from" else k): v for k, v in params.items()})
    assert raised.value.field == field


def test_load_against_caps(db: Session, months: Filters) -> None:
    from telemed.uptake.gaps import specialist_load

    table = specialist_load(db, months)
    # S2 accepted consults 1 and 2, S1 consult 4; neither has a profile: no cap
    assert sorted((r[0].value, r[1].value, r[2].value) for r in table.rows) == [
        ("Specialist 2", 1, "no cap"),
        ("Specialist 3", 2, "no cap"),
    ]


def test_hours_offered_and_cover(db: Session, months: Filters) -> None:
    from datetime import time

    from sqlmodel import select

    from telemed.accounts.models import User
    from telemed.directory.models import (
        AvailabilityWindow,
        SpecialistProfile,
        SpecialistSpecialty,
        VerificationStatus,
    )
    from telemed.uptake.gaps import hours_offered, uncovered_specialties

    s1, s2 = db.exec(select(User).where(User.role == "specialist").order_by(User.id)).all()
    for user, away in ((s1, False), (s2, True)):
        db.add(
            SpecialistProfile(
                user_id=user.id,
                languages="en",
                country="GB",
                registration_body="GMC",
                registration_number=f"R{user.id}",
                registration_expires_on=date(2030, 1, 1),
                status=VerificationStatus.verified,
                away=away,
                weekly_cap=2,
            )
        )
        db.flush()
        db.add(SpecialistSpecialty(user_id=user.id, specialty_code="paediatrics"))
        db.add(
            AvailabilityWindow(user_id=user.id, weekday=0, start_time=time(8), end_time=time(12))
        )
        db.add(
            AvailabilityWindow(user_id=user.id, weekday=2, start_time=time(18), end_time=time(0))
        )
    db.commit()
    # S1: 4 h + 6 h (to midnight) a week; S2 is away. October 31 days, November 30.
    assert hours_offered(db, months) == [round(10 * 31 / 7, 1), round(10 * 30 / 7, 1)]
    uncovered = {r[0].value for r in uncovered_specialties(db, months).rows}
    assert "paediatrics" not in uncovered
    assert {"cardiology", "internal_medicine"} <= uncovered
    from telemed.uptake.gaps import specialist_load

    load = {r[0].value: (r[3].value, r[4].value) for r in specialist_load(db, months).rows}
    weeks = 61 / 7  # 1 October to 30 November
    assert load["Specialist 2"] == (round(2 * weeks, 1), round(100 * 1 / (2 * weeks), 1))


def test_dormant_facilities_at_maseru_midnight(db: Session, months: Filters) -> None:
    from telemed.uptake.gaps import dormant_facilities

    rows = {r[0].value: r[3].value for r in dormant_facilities(db, months, NOW).rows}
    # the 30 days before 1 December (Maseru) begin at 00:00 on 1 November, Maseru: consult 3
    # (00:30) keeps BEREA active, consult 2 (23:59 the evening before) does not keep MAFETENG
    assert "BEREA" not in rows
    assert "QMMH" not in rows
    assert rows["MAFETENG"] == "2026-10-31"
    assert rows["SCOTT"] == "never"
