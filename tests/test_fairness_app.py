"""The fairness rule in the app (issue 10): the offers pass each specialist's load and
emergencies this week (counted as the caps count them) to ``scheduling.balance`` and
``scheduling.within_emergency_limit``; on both databases."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlmodel import Session

from telemed.accounts.models import Role
from telemed.db import utcnow
from telemed.offers.policy import OfferPolicy
from telemed.settings import Settings
from telemed.uow import Units
from tests.conftest import LoginFn
from tests.directory_helpers import Specialists, offers_of
from tests.helpers import Users, consult_payload
from tests.test_caps import set_caps
from tests.test_offers import _window_from, due

ZONE = "Africa/Johannesburg"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test settings with a weekly limit of one emergency, through the real setting."""
    return settings.model_copy(
        update={
            "max_emergencies_per_week": 1,
            "deadline_emergency_minutes": 180,  # room for a second slot after a booking
        }
    )


@pytest.fixture
def specialists(db: Session, settings: Settings, users: Users) -> Specialists:
    return Specialists(db, settings, users)


def test_the_batch_spreads_load_from_a_dense_specialist_to_sparse_ones(
    policy: OfferPolicy,
    units: Units,
    users: Users,
    specialists: Specialists,
    db: Session,
    login: LoginFn,
) -> None:
    """Four urgent requests wait; one specialist has every hour free, two have a window in
    five hours. By waiting cost alone the dense one gets all four (one more consult is
    cheaper than hours of waiting); the rule moves a request to the least loaded specialist
    within 12 hours while that lowers the load by two or more: two, one and one."""
    nurse = login(users.make(Role.clinician))
    waiting = [
        nurse.post("/api/v1/consults", consult_payload(urgency="urgent")).json()["id"]
        for _ in range(4)
    ]
    now = utcnow()
    dense = specialists.make(time_zone=ZONE)
    sparse = [
        specialists.make(time_zone=ZONE, windows=[_window_from(now, ZONE, 5, 120)])
        for _ in range(2)
    ]
    report = due(units, db, now, policy)
    assert sorted(report.offered) == sorted(waiting)
    given = Counter(o.specialist_id for c in waiting for o in offers_of(db, c))
    assert given == {dense.id: 2, sparse[0].id: 1, sparse[1].id: 1}


def test_a_specialist_loaded_this_week_gives_the_next_request_way(
    specialists: Specialists, db: Session, users: Users, login: LoginFn
) -> None:
    """Two open offers already count as the dense specialist's load this week (as the caps
    count them): the next request goes to the idle specialist, though later. Without that
    load the two would be equal and the earlier slot would win."""
    nurse = login(users.make(Role.clinician))
    dense = specialists.make(time_zone=ZONE)
    held = [
        nurse.post("/api/v1/consults", consult_payload(urgency="urgent")).json()["id"]
        for _ in range(2)
    ]
    assert [o.specialist_id for c in held for o in offers_of(db, c)] == [dense.id, dense.id]
    idle = specialists.make(time_zone=ZONE, windows=[_window_from(utcnow(), ZONE, 5, 60)])
    third = nurse.post("/api/v1/consults", consult_payload(urgency="urgent")).json()
    assert third["state"] == "offered"
    assert [o.specialist_id for o in offers_of(db, third["id"])] == [idle.id]


def test_no_more_than_the_weekly_emergencies_unless_nobody_else_can(
    specialists: Specialists, db: Session, users: Users, login: LoginFn
) -> None:
    """With a limit of one emergency a week (``TELEMED_MAX_EMERGENCIES_PER_WEEK``): the
    specialist who took one is left out of the next broadcast while someone else can take
    it, and still gets an emergency nobody else can (a language only they speak)."""
    nurse = login(users.make(Role.clinician))
    bilingual = specialists.make(languages=("st", "en"))
    first = nurse.post("/api/v1/consults", consult_payload(urgency="emergency")).json()["id"]
    [offer] = offers_of(db, first)
    assert offer.specialist_id == bilingual.id
    accepted = login(bilingual).post(f"/api/v1/offers/{offer.id}/accept")
    assert accepted.status_code == 200, accepted.text
    english = specialists.make(languages=("en",))
    second = nurse.post(
        "/api/v1/consults", consult_payload(urgency="emergency", language="en")
    ).json()["id"]
    assert [o.specialist_id for o in offers_of(db, second)] == [english.id]
    third = nurse.post(
        "/api/v1/consults", consult_payload(urgency="emergency", language="st")
    ).json()["id"]
    assert [o.specialist_id for o in offers_of(db, third)] == [bilingual.id]


def test_the_directory_page_shows_each_specialists_load_against_their_caps(
    specialists: Specialists, db: Session, users: Users, login: LoginFn
) -> None:
    """One emergency accepted (this week's load, one of the limit) shows beside the caps,
    on the page and in the API."""
    nurse = login(users.make(Role.clinician))
    doctor = specialists.make(time_zone=ZONE)
    api = login(doctor)
    assert set_caps(api, consults=3, hours=2).status_code == 200
    consult = nurse.post("/api/v1/consults", consult_payload(urgency="emergency")).json()["id"]
    [offer] = offers_of(db, consult)
    assert api.post(f"/api/v1/offers/{offer.id}/accept").status_code == 200
    coordinator = login(specialists.coordinator)
    page = coordinator.get("/coordinator/specialists?status=verified")
    assert page.status_code == 200
    assert "This week: 1 / 3 consults · 0.5 / 2 hours booked · 1 emergencies" in page.text
    loads = coordinator.get("/api/v1/specialists/load")
    assert loads.status_code == 200, loads.text
    [mine] = [row for row in loads.json() if row["user_id"] == doctor.id]
    assert mine == {
        "user_id": doctor.id,
        "full_name": doctor.full_name,
        "consults": 1,
        "max_consults": 3,
        "hours": 0.5,
        "max_hours": 2.0,
        "emergencies": 1,
    }
    assert api.get("/api/v1/specialists/load").status_code == 403
