"""The specialist's own profile page: the profile and its verification as the specialist
sees them, the onboarding checklist, the warning before the registration expires, and the
form that edits the profile through the directory service (a changed registration goes
back to the verification queue; bad input saves nothing)."""

from __future__ import annotations

import html
from datetime import timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlmodel import Session

from telemed.accounts.models import Role
from telemed.db import utcnow
from telemed.directory.models import SpecialistProfile
from telemed.settings import Settings
from telemed.timefmt import local_time
from tests.conftest import LoginFn
from tests.directory_helpers import Specialists
from tests.helpers import ApiClient, ManualClock, Users

PAGE = "/specialists/profile"
ME = "/api/v1/specialists/me"


@pytest.fixture
def specialists(db: Session, settings: Settings, users: Users) -> Specialists:
    return Specialists(db, settings, users)


def profile_form(api: ApiClient, **changes: object) -> dict[str, object]:
    """The page's form as the specialist's stored profile fills it, with ``changes``."""
    me = api.get(ME).json()
    form: dict[str, object] = {
        "csrf_token": api.csrf,
        "specialties": me["specialties"],
        "sub_specialties": me["sub_specialties"],
        "languages": me["languages"],
        "country": me["country"],
        "time_zone": me["time_zone"],
        "registration_body": me["registration_body"],
        "registration_number": me["registration_number"],
        "registration_expires_on": me["registration_expires_on"],
        "bio": me["bio"],
    }
    form.update(changes)
    return form


def post(api: ApiClient, form: dict[str, object]) -> httpx.Response:
    return api.client.post(PAGE, data=form, follow_redirects=False)


def text_of(response: httpx.Response) -> str:
    return html.unescape(response.text)


def test_a_newcomer_sees_the_profile_and_what_is_left_to_do(
    specialists: Specialists, login: LoginFn
) -> None:
    newcomer = specialists.make(time_zone="Europe/London", verified=False, windows=[])
    api = login(newcomer)
    page = api.get(PAGE)
    assert page.status_code == 200
    text = text_of(page)
    me = api.get(ME).json()
    expires = f"{utcnow().date() + timedelta(days=365):%d %b %Y}"
    for shown in (
        newcomer.full_name,
        newcomer.email,
        "Paediatrics and neonatology",
        "Sesotho, English",
        "country ZA",
        "time zone Europe/London",
        f"HPCSA {me['registration_number']}",
        f"valid until {expires}",
        "a coordinator has yet to check your registration",
    ):
        assert shown in text, shown
    assert "Before you receive offers" in text
    assert '✓ <strong>Registered</strong> · <span class="state">done</span>' in page.text
    assert '☐ <strong>Verified by a coordinator</strong> · <span class="state">pending</span>' in (
        page.text
    )
    assert '☐ <strong>Availability set</strong> · <span class="state">to do</span>' in page.text
    assert 'href="/specialists/availability">Set the hours when you can take consults' in text
    assert "✓ <strong>Not away</strong>" in page.text
    assert 'href="/specialists/profile">Profile</a>' in page.text  # in the header
    assert "expires on" not in text  # a year ahead: no warning


def test_a_verified_specialist_sees_who_verified_when_and_on_what_evidence(
    specialists: Specialists, login: LoginFn, db: Session
) -> None:
    user = specialists.make(time_zone="America/Toronto")
    api = login(user)
    text = text_of(api.get(PAGE))
    profile = db.get(SpecialistProfile, user.id)
    assert profile is not None
    assert profile.verified_at is not None
    when = local_time(profile.verified_at, ZoneInfo("America/Toronto"))
    assert when.endswith(("EST", "EDT"))
    assert f"by {specialists.coordinator.full_name} on {when}; you can receive offers." in text
    assert "Evidence checked: HPCSA register, online" in text
    assert "Before you receive offers" not in text  # verified, hours set, not away


def test_an_away_specialist_is_sent_to_the_availability_page(
    specialists: Specialists, login: LoginFn
) -> None:
    api = login(specialists.make(away=True))
    text = text_of(api.get(PAGE))
    assert '☐ <strong>Not away</strong> · <span class="state">to do</span>' in text
    assert 'href="/specialists/availability">Untick “Away” to receive offers again' in text


def test_editing_the_bio_saves_it_and_keeps_the_verification(
    specialists: Specialists, login: LoginFn
) -> None:
    api = login(specialists.make())
    bio = "Paediatrician, 12 years in Cape Town <b>not bold</b>"
    form = profile_form(api, bio=bio, sub_specialties="neonatal sepsis", phone="+27 82 555 0101")
    saved = post(api, form)
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == f"{PAGE}?saved=yes"
    me = api.get(ME).json()
    assert (me["bio"], me["sub_specialties"], me["status"]) == (bio, "neonatal sepsis", "verified")
    page = api.get(saved.headers["location"])
    assert "Your profile is saved." in page.text
    assert "verify them again" not in page.text
    assert "&lt;b&gt;not bold&lt;/b&gt;" in page.text  # the specialist's text is escaped
    assert 'value="+27825550101"' in page.text  # the phone for emergency SMS, in E.164


def test_changing_the_registration_number_sends_it_back_to_verification(
    specialists: Specialists, login: LoginFn
) -> None:
    api = login(specialists.make())
    saved = post(api, profile_form(api, registration_number="MP0999999"))
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == f"{PAGE}?saved=reverify"
    me = api.get(ME).json()
    assert (me["registration_number"], me["status"], me["eligible"]) == (
        "MP0999999",
        "pending",
        False,
    )
    assert me["verification_note"] == ""
    text = text_of(api.get(saved.headers["location"]))
    assert "a coordinator must verify them again: you receive no offers until then" in text
    assert "HPCSA MP0999999" in text
    assert '☐ <strong>Verified by a coordinator</strong> · <span class="state">pending</span>' in (
        text
    )
    assert "Evidence checked" not in text

    # Saving again while pending says only that it is saved.
    again = post(api, profile_form(api, registration_number="MP0888888"))
    assert again.headers["location"] == f"{PAGE}?saved=yes"


def test_a_new_time_zone_shows_the_times_in_it_at_once(
    specialists: Specialists, login: LoginFn, db: Session
) -> None:
    user = specialists.make(time_zone="Europe/London")
    api = login(user)
    assert "Europe/London" in api.get(PAGE).text  # the session's zone is now remembered
    saved = post(api, profile_form(api, time_zone="Asia/Kolkata"))
    assert saved.status_code == 303, saved.text
    text = text_of(api.get(PAGE))
    profile = db.get(SpecialistProfile, user.id)
    assert profile is not None
    assert profile.verified_at is not None
    assert f"on {local_time(profile.verified_at, ZoneInfo('Asia/Kolkata'))}" in text
    assert "IST" in text
    assert api.get(ME).json()["status"] == "verified"  # a new zone is not a new registration


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"time_zone": "Mars/Olympus"},
            "time_zone",
            "Time zone: unknown time zone; choose one such as",
        ),
        ({"specialties": ["astrology"]}, "specialties", "unknown specialty 'astrology'"),
        (
            {"registration_expires_on": "2001-01-01"},
            "registration_expires_on",
            "the registration has already expired; renew it first",
        ),
        ({"country": "ZAF"}, "country", "Country is not in the expected form"),
        ({"languages": []}, "languages", "Tick at least one language you can consult in"),
    ],
)
def test_bad_input_is_refused_with_the_field_named_and_nothing_is_saved(
    specialists: Specialists,
    login: LoginFn,
    changes: dict[str, object],
    field: str,
    message: str,
) -> None:
    api = login(specialists.make(time_zone="Europe/London"))
    before = api.get(ME).json()
    form = profile_form(api, bio="A new bio that must not be saved", **changes)
    refused = post(api, form)
    assert refused.status_code == 422
    text = text_of(refused)
    assert f'<p class="error" id="{field}-error" role="alert">{message}' in text
    assert "A new bio that must not be saved</textarea>" in text  # kept for correcting
    assert api.get(ME).json() == before


def test_a_form_without_the_right_csrf_token_is_refused(
    specialists: Specialists, login: LoginFn
) -> None:
    api = login(specialists.make())
    before = api.get(ME).json()
    form = profile_form(api, bio="forged", registration_number="MP0777777")
    del form["csrf_token"]
    assert post(api, form).status_code == 403
    assert post(api, {**form, "csrf_token": "not-the-token"}).status_code == 403
    assert api.get(ME).json() == before


@pytest.mark.parametrize("role", [Role.clinician, Role.coordinator])
def test_only_specialists_have_a_profile_page(users: Users, login: LoginFn, role: Role) -> None:
    api = login(users.make(role))
    assert api.get(PAGE).status_code == 403
    sent = api.client.post(PAGE, data={"csrf_token": api.csrf, "bio": "x"})
    assert sent.status_code == 403
    assert "this is for specialists" in sent.text


def test_a_registration_expiring_soon_or_expired_is_warned_about(
    specialists: Specialists, login: LoginFn, db: Session, clock: ManualClock
) -> None:
    """ "In 10 days" is counted by the server from the application clock's date; the test
    takes its dates from the same clock, so a run at midnight cannot see them disagree."""
    today = clock.set_midday().date()
    user = specialists.make()
    api = login(user)
    soon = today + timedelta(days=10)
    assert post(api, profile_form(api, registration_expires_on=soon.isoformat())).status_code == (
        303
    )
    specialists.db.rollback()
    coordinator = login(specialists.coordinator)
    verified = coordinator.post(f"/api/v1/specialists/{user.id}/verify", {"note": "HPCSA, again"})
    assert verified.status_code == 200, verified.text
    text = text_of(api.get(PAGE))
    assert f"Your registration expires on {soon:%d %b %Y} (in 10 days)." in text
    assert "you receive no offers until it is verified again" in text
    assert "you can receive offers." in text  # still verified until then

    db.rollback()
    profile = db.get(SpecialistProfile, user.id)
    assert profile is not None
    past = today - timedelta(days=3)
    profile.registration_expires_on = past  # time passes
    db.add(profile)
    db.commit()
    text = text_of(api.get(PAGE))
    assert f"Your registration expired on {past:%d %b %Y}: you receive no offers" in text
    assert "the registration has expired." in text
    assert (
        '☐ <strong>Verified by a coordinator</strong> · <span class="state">expired</span>'
        ' · <a href="#registration">Enter your renewed registration</a>'
    ) in text
