"""The directory endpoints no other test calls: a specialist's own upcoming slots, and the
coordinators' list of registrations about to expire (who may call it, and what it lists).

Both answer relative to the present moment; the tests build their data around "now" so that
no slot or expiry date sits near a boundary the request could cross while it runs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session

from telemed.accounts.models import Role, User
from telemed.db import utcnow
from telemed.directory.models import SpecialistProfile
from telemed.directory.schemas import WindowIn
from telemed.settings import Settings
from tests.conftest import LoginFn
from tests.directory_helpers import Specialists
from tests.helpers import ApiClient, Users

ZONE = "Africa/Johannesburg"  # UTC+2 all year: slots in UTC differ from the wall clock
SLOTS = "/api/v1/specialists/me/slots"
EXPIRING = "/api/v1/specialists/expiring"


@pytest.fixture
def specialists(db: Session, settings: Settings, users: Users) -> Specialists:
    return Specialists(db, settings, users)


def field_refused(api: ApiClient, url: str, params: dict[str, object]) -> str:
    response = api.get(url, params=params)
    assert response.status_code == 422, response.text
    return str(response.json()["error"]["fields"][0]["field"])


# --- GET /api/v1/specialists/me/slots -------------------------------------------------------


def far_hour(now: datetime, zone: ZoneInfo) -> int:
    """A local hour about twelve hours from ``now``: a daily window starting then is never
    cut by the start or the end of a horizon that begins at (about) ``now``."""
    return (now.astimezone(zone).hour + 12) % 24


def expected_slots(
    now: datetime, zone: ZoneInfo, hour: int, days: int, leave: set[date]
) -> list[tuple[datetime, datetime]]:
    """Two half-hour slots a day at ``hour`` local time, computed here without the
    scheduling library: within (now, now + days], skipping the days on leave."""
    today = now.astimezone(zone).date()
    found = []
    for offset in range(-1, days + 2):
        day = today + timedelta(days=offset)
        if day in leave:
            continue
        start = datetime.combine(day, time(hour), tzinfo=zone).astimezone(UTC)
        for half in (start, start + timedelta(minutes=30)):
            end = half + timedelta(minutes=30)
            if half >= now and end <= now + timedelta(days=days):
                found.append((half, end))
    return found


def slots_of(api: ApiClient, days: int) -> list[tuple[datetime, datetime]]:
    response = api.get(SLOTS, params={"days": days})
    assert response.status_code == 200, response.text
    return [
        (datetime.fromisoformat(s["start"]), datetime.fromisoformat(s["end"]))
        for s in response.json()
    ]


def test_my_slots_are_my_weekly_hours_in_utc_for_the_days_asked_without_my_leave(
    specialists: Specialists, login: LoginFn
) -> None:
    zone = ZoneInfo(ZONE)
    now = utcnow()
    hour = far_hour(now, zone)
    end = time((hour + 1) % 24)  # 00:00 as an end is the end of the day
    daily = [WindowIn(weekday=d, start=time(hour), end=end) for d in range(7)]
    api = login(specialists.make(time_zone=ZONE, windows=daily))

    week = slots_of(api, 7)
    assert week == expected_slots(now, zone, hour, 7, set())
    assert len(week) == 14  # seven days, one hour a day
    assert all(start.tzinfo is not None and start.utcoffset() == timedelta(0) for start, _ in week)
    assert all(start.astimezone(zone).hour == hour for start, _ in week)
    assert slots_of(api, 1) == week[:2]  # `days` is honoured
    assert slots_of(api, 7) == week  # the default is seven days
    assert len(slots_of(api, 60)) == 120

    # A day of leave (in the specialist's zone) takes that day's slots away.
    leave_day = week[4][0].astimezone(zone).date()
    body = {
        "weekly": [
            {"weekday": d, "start": f"{hour:02d}:00", "end": end.strftime("%H:%M")}
            for d in range(7)
        ],
        "leave": [{"first_day": leave_day.isoformat(), "last_day": leave_day.isoformat()}],
    }
    saved = api.client.put(
        "/api/v1/specialists/me/availability", json=body, headers={"X-CSRF-Token": api.csrf}
    )
    assert saved.status_code == 200, saved.text
    on_leave = slots_of(api, 7)
    assert on_leave == expected_slots(now, zone, hour, 7, {leave_day})
    assert len(on_leave) == 12
    assert [s for s in week if s not in on_leave] == week[4:6]


def test_my_slots_are_empty_without_availability_and_the_days_are_checked(
    specialists: Specialists, login: LoginFn
) -> None:
    api = login(specialists.make(windows=[]))
    assert slots_of(api, 7) == []
    for days in (0, 61, "a week"):
        assert field_refused(api, SLOTS, {"days": days}) == "days"


@pytest.mark.parametrize("role", [Role.clinician, Role.coordinator, Role.admin])
def test_only_specialists_have_slots(users: Users, login: LoginFn, role: Role) -> None:
    response = login(users.make(role)).get(SLOTS)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


# --- GET /api/v1/specialists/expiring -------------------------------------------------------


def expiring_on(db: Session, user: User, day: date) -> None:
    """Set the registration's expiry date (as if entered long ago: a new registration must
    not have expired, and verification refuses expired ones)."""
    db.rollback()
    profile = db.get(SpecialistProfile, user.id)
    assert profile is not None
    profile.registration_expires_on = day
    db.add(profile)
    db.commit()


@pytest.fixture
def registrations(specialists: Specialists, db: Session) -> dict[str, User]:
    """Specialists whose registrations end at chosen days from today."""
    today = utcnow().date()
    made = {}
    for name, in_days, verified in [
        ("expired yesterday", -1, True),
        ("ends today", 0, True),
        ("in 20 days", 20, True),
        ("in 30 days", 30, True),
        ("in 31 days", 31, True),
        ("in a year", 365, True),
        ("pending, in 10 days", 10, False),
    ]:
        user = specialists.make(verified=verified)
        expiring_on(db, user, today + timedelta(days=in_days))
        made[name] = user
    return made


def names_in(response_json: list[dict[str, object]], made: dict[str, User]) -> list[str]:
    by_id = {user.id: name for name, user in made.items()}
    return [by_id[int(str(p["user_id"]))] for p in response_json]


def test_expiring_lists_verified_registrations_ending_within_the_window(
    registrations: dict[str, User], users: Users, login: LoginFn
) -> None:
    coordinator = login(users.make(Role.coordinator))
    default = coordinator.get(EXPIRING)
    assert default.status_code == 200, default.text
    # Soonest first; the window includes today and its last day; expired, pending and
    # later registrations are not in it.
    assert names_in(default.json(), registrations) == ["ends today", "in 20 days", "in 30 days"]
    today = utcnow().date()
    first = default.json()[1]
    specialist = registrations["in 20 days"]
    assert (first["email"], first["full_name"]) == (specialist.email, specialist.full_name)
    assert first["registration_expires_on"] == (today + timedelta(days=20)).isoformat()
    assert (first["status"], first["eligible"]) == ("verified", True)

    wider = coordinator.get(EXPIRING, params={"days": 31}).json()
    assert names_in(wider, registrations)[-1] == "in 31 days"
    narrow = coordinator.get(EXPIRING, params={"days": 1}).json()
    assert names_in(narrow, registrations) == ["ends today"]
    whole_year = coordinator.get(EXPIRING, params={"days": 365}).json()
    assert "in a year" in names_in(whole_year, registrations)
    for days in (0, 366, "soon"):
        assert field_refused(coordinator, EXPIRING, {"days": days}) == "days"


def test_only_coordinators_see_expiring_registrations(
    registrations: dict[str, User], users: Users, login: LoginFn
) -> None:
    """Every role tried on the same data: coordinators get the list, the others a 403,
    including the specialist whose own registration is on it."""
    callers = {role: users.make(role) for role in Role} | {"listed": registrations["in 20 days"]}
    answers = {who: login(user).get(EXPIRING) for who, user in callers.items()}
    assert {who: r.status_code for who, r in answers.items()} == {
        Role.clinician: 403,
        Role.specialist: 403,
        Role.coordinator: 200,
        Role.admin: 403,
        "listed": 403,
    }
    for who, response in answers.items():
        if who is not Role.coordinator:
            error = response.json()["error"]
            assert (error["code"], error["message"]) == ("forbidden", "this is for coordinators")
    assert len(answers[Role.coordinator].json()) == 3
