"""The availability editor as a week grid: ticked half-hours in the specialist's own zone
become merged weekly windows; bad cells or an unknown zone save nothing; the preview shows
the concrete slots of a daylight-saving week at the same local hours."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlmodel import Session, func, select

from telemed.accounts.models import Role
from telemed.audit.models import AuditEntry
from telemed.db import utcnow
from telemed.directory.schemas import WindowIn
from telemed.settings import Settings
from tests.conftest import LoginFn
from tests.directory_helpers import Specialists
from tests.helpers import ApiClient, Users
from tests.test_pages import PAGE_BUDGET_BYTES

PAGE = "/specialists/availability"
API = "/api/v1/specialists/me/availability"
_CELL = re.compile(r'<input type="checkbox" name="cell" value="([^"]+)"[^>]*?( checked)?>')


@pytest.fixture
def specialists(db: Session, settings: Settings, users: Users) -> Specialists:
    return Specialists(db, settings, users)


def cells_on(html: str) -> dict[str, bool]:
    """Every grid cell on the page and whether it is ticked."""
    return {value: bool(checked) for value, checked in _CELL.findall(html)}


def ticked(html: str) -> set[str]:
    return {value for value, on in cells_on(html).items() if on}


def grid_form(api: ApiClient, cells: list[str], **fields: str) -> dict[str, object]:
    form: dict[str, object] = {
        "csrf_token": api.csrf,
        "grid": "1",
        "source": "grid",
        "cell": cells,
        "time_zone": "Europe/London",
        "leave": "",
        "extra": "",
        "weekly_cap": "",
        "min_notice_minutes": "0",
    }
    form.update(fields)
    return form


def post(api: ApiClient, form: dict[str, object]) -> httpx.Response:
    return api.client.post(PAGE, data=form, follow_redirects=False)


def test_grid_shows_the_saved_windows_ticked_in_the_specialists_zone(
    specialists: Specialists, login: LoginFn
) -> None:
    windows = [
        WindowIn(weekday=0, start=time(9), end=time(12)),
        WindowIn(weekday=6, start=time(22), end=time(0)),  # until midnight
    ]
    api = login(specialists.make(time_zone="Europe/London", windows=windows))
    page = api.get(PAGE)
    assert page.status_code == 200
    assert "Times in Europe/London" in page.text
    assert re.search(r"09:00 in Europe/London is 1[01]:00 in Maseru", page.text)
    on = ticked(page.text)
    assert on == {f"0-{h:02d}{m:02d}" for h in (9, 10, 11) for m in (0, 30)} | {
        "6-2200",
        "6-2230",
        "6-2300",
        "6-2330",
    }
    shown = cells_on(page.text)
    assert "0-0600" in shown  # 06:00 onwards by default...
    assert "0-0530" not in shown
    assert shown["6-2330"]  # ...widened so that no saved window is hidden
    everything = cells_on(api.get(PAGE, params={"hours": "all"}).text)
    assert len(everything) == 7 * 48
    assert ticked(api.get(PAGE, params={"hours": "all"}).text) == on


def test_posted_cells_are_saved_as_merged_windows(
    specialists: Specialists, login: LoginFn, db: Session
) -> None:
    api = login(specialists.make(time_zone="Europe/London", verified=False))
    cells = ["0-0900", "0-0930", "0-1000", "0-1400", "1-2300", "1-2330", "0-0930"]
    form = grid_form(
        api,
        cells,
        leave="2026-12-21..2027-01-03",
        extra="2027-01-09 10:00-12:00",
        weekly_cap="4",
        min_notice_minutes="90",
        away="on",
        day_0="07:00-08:00",  # the typed fallback is ignored when the grid is saved
    )
    saved = post(api, form)
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == PAGE

    stored = api.get(API).json()
    assert stored["weekly"] == [
        {"weekday": 0, "start": "09:00:00", "end": "10:30:00"},
        {"weekday": 0, "start": "14:00:00", "end": "14:30:00"},
        {"weekday": 1, "start": "23:00:00", "end": "00:00:00"},  # 00:00 = midnight
    ]
    assert stored["leave"] == [{"first_day": "2026-12-21", "last_day": "2027-01-03"}]
    assert stored["extra"] == [{"day": "2027-01-09", "start": "10:00:00", "end": "12:00:00"}]
    assert (stored["weekly_cap"], stored["min_notice_minutes"], stored["away"]) == (4, 90, True)
    assert stored["time_zone"] == "Europe/London"

    page = api.get(PAGE).text
    assert ticked(page) == set(cells)
    assert "09:00-10:30, 14:00-14:30" in page  # the typed fallback shows the same windows
    assert "23:00-24:00" in page
    assert "You are away: no slots are offered" in page
    audited = db.exec(
        select(func.count())
        .select_from(AuditEntry)
        .where(AuditEntry.object_type == "availability", AuditEntry.actor_id == api.user.id)
    ).one()
    assert audited == 2  # once at registration, once now

    cleared = post(api, grid_form(api, []))
    assert cleared.status_code == 303
    assert api.get(API).json()["weekly"] == []


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("x-9999", "is not a cell of the week grid"),
        ("8-0900", "day 8 is not 0 (Monday) to 6 (Sunday)"),
        ("0-0915", "09:15 is not on the half-hour grid"),
        ("0-2400", "24:00 is not a time of day"),
    ],
)
def test_nonsense_cells_are_refused_and_nothing_is_saved(
    specialists: Specialists, login: LoginFn, cell: str, message: str
) -> None:
    windows = [WindowIn(weekday=2, start=time(8), end=time(9))]
    api = login(specialists.make(time_zone="Europe/London", windows=windows))
    before = api.get(API).json()
    refused = post(api, grid_form(api, ["0-0900", cell], weekly_cap="2"))
    assert refused.status_code == 422
    assert message in refused.text
    assert 'role="alert"' in refused.text
    assert ticked(refused.text) == {"0-0900"}  # what they ticked is kept for correcting
    assert api.get(API).json() == before


def test_unknown_time_zone_is_refused_and_a_known_one_moves_the_grid(
    specialists: Specialists, login: LoginFn
) -> None:
    windows = [WindowIn(weekday=0, start=time(9), end=time(10))]
    api = login(specialists.make(time_zone="Europe/London", windows=windows))
    before = api.get(API).json()
    refused = post(api, grid_form(api, ["3-1000"], time_zone="Mars/Olympus"))
    assert refused.status_code == 422
    assert "unknown time zone; choose one such as Africa/Maseru" in refused.text
    assert "Times in Europe/London" in refused.text
    assert api.get(API).json() == before
    assert api.get("/api/v1/specialists/me").json()["time_zone"] == "Europe/London"

    moved = post(api, grid_form(api, ["0-0900", "0-0930"], time_zone="America/Toronto"))
    assert moved.status_code == 303, moved.text
    after = api.get(API).json()
    assert after["time_zone"] == "America/Toronto"
    assert after["weekly"] == [{"weekday": 0, "start": "09:00:00", "end": "10:00:00"}]
    page = api.get(PAGE).text
    assert "Times in America/Toronto" in page
    assert ticked(page) == {"0-0900", "0-0930"}
    profile = api.get("/api/v1/specialists/me").json()
    assert profile["status"] == "verified"  # a new zone is not a new registration


def _next_clock_change_in_london(today: date) -> date:
    """The last Sunday of March after ``today`` (London goes from GMT to BST)."""
    for year in (today.year, today.year + 1):
        sunday = date(year, 3, 31) - timedelta(days=(date(year, 3, 31).weekday() - 6) % 7)
        if sunday > today + timedelta(days=3):
            return sunday
    raise AssertionError("unreachable")


def test_preview_of_a_daylight_saving_week_keeps_the_local_hours(
    specialists: Specialists, login: LoginFn
) -> None:
    api = login(specialists.make(time_zone="Europe/London", windows=[]))
    every_day = [f"{d}-{t}" for d in range(7) for t in ("0900", "0930")]
    assert post(api, grid_form(api, every_day)).status_code == 303
    change = _next_clock_change_in_london(utcnow().date())
    london = ZoneInfo("Europe/London")
    saturday, monday = (datetime.combine(change + timedelta(days=n), time(12)) for n in (-1, 1))
    assert london.utcoffset(saturday) != london.utcoffset(monday)
    first = change - timedelta(days=3)
    page = api.get(PAGE, params={"week": first.isoformat()})
    assert page.status_code == 200
    days = dict(re.findall(r"<li><strong>([^<]+)</strong>: ([^<]*)</li>", page.text))
    expected = {}
    for n in range(7):
        day = first + timedelta(days=n)
        if day < change:
            expected[f"{day:%a %d %b}"] = "09:00-10:00 GMT (11:00-12:00)"
        else:
            expected[f"{day:%a %d %b}"] = "09:00-10:00 BST (10:00-11:00)"
    assert days == expected
    assert f"is 11:00 in Maseru, 10:00 from {change:%a %d %b}." in page.text
    # The clock-change rule of scheduling.availability, in the specialist's words (issue 10).
    assert "when the clocks go back, the repeated hour only the first time" in page.text

    far = api.get(PAGE, params={"week": (utcnow().date() + timedelta(days=800)).isoformat()})
    assert far.status_code == 422
    assert "within a year" in far.text


def test_typed_windows_remain_a_fallback(specialists: Specialists, login: LoginFn) -> None:
    api = login(specialists.make(time_zone="Europe/London", windows=[]))
    form = grid_form(api, ["4-0900"], source="text", day_0="08:00-09:00, 18:00-24:00")
    saved = post(api, form)
    assert saved.status_code == 303, saved.text
    assert api.get(API).json()["weekly"] == [
        {"weekday": 0, "start": "08:00:00", "end": "09:00:00"},
        {"weekday": 0, "start": "18:00:00", "end": "00:00:00"},
    ]
    overlapping = post(api, {**form, "day_0": "08:00-10:00, 09:00-11:00"})
    assert overlapping.status_code == 422
    assert "overlap" in overlapping.text
    assert len(api.get(API).json()["weekly"]) == 2


def test_the_full_grid_fits_the_first_load_budget(specialists: Specialists, login: LoginFn) -> None:
    api = login(specialists.make(time_zone="Europe/London"))  # every hour of every day
    page = api.get(PAGE, params={"hours": "all"})
    assert len(cells_on(page.text)) == 7 * 48
    css = api.get("/static/app.css")
    script = api.get("/static/availability.js")
    assert script.status_code == 200
    assert "http://" not in page.text.replace("http://testserver", "")
    assert len(page.content) + len(css.content) + len(script.content) <= PAGE_BUDGET_BYTES


@pytest.mark.parametrize("role", [Role.clinician, Role.coordinator])
def test_only_specialists_have_an_availability_editor(
    users: Users, login: LoginFn, role: Role
) -> None:
    api = login(users.make(role))
    assert api.get(PAGE).status_code == 403
    sent = api.client.post(PAGE, data={"csrf_token": api.csrf, "cell": ["0-0900"]})
    assert sent.status_code == 403
    assert api.get(API).status_code == 403


def test_saving_the_page_unchanged_keeps_the_windows(
    specialists: Specialists, login: LoginFn
) -> None:
    """No drift through the grid, early-morning and until-midnight windows included."""
    windows = [
        WindowIn(weekday=4, start=time(0), end=time(1)),
        WindowIn(weekday=4, start=time(6), end=time(0)),
    ]
    api = login(specialists.make(time_zone="Asia/Kolkata", windows=windows))
    page = api.get(PAGE).text
    before = api.get(API).json()
    again = post(api, grid_form(api, sorted(ticked(page)), time_zone="Asia/Kolkata"))
    assert again.status_code == 303
    assert api.get(API).json()["weekly"] == before["weekly"]
