"""Server-rendered pages: the clinician's journey without JavaScript, errors next to fields,
times in the viewer's zone, escaping, and the 60 KB first-load budget."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from telemed.accounts.models import Role, User
from telemed.consults.models import Consult
from telemed.timefmt import local_time
from telemed.web.templating import TEMPLATES_DIR, duration
from tests.helpers import PASSWORD, Users

PAGE_BUDGET_BYTES = 60 * 1024


def page_login(client: TestClient, user: User) -> None:
    csrf = client.get("/login").cookies["telemed_login_csrf"]
    response = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": csrf}
    )
    assert response.status_code == 200, response.text


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF field"
    return match.group(1)


def form_fields(**overrides: str) -> dict[str, str]:
    fields = {
        "patient_ref": "MOT-77",
        "age_years": "6",
        "birth_year": "",
        "sex": "male",
        "specialty": "paediatrics",
        "urgency": "urgent",
        "mode": "audio",
        "language": "st",
        "question": "Wheeze not responding to salbutamol <b>twice</b>",
        "history": "Asthma since age 3.",
        "examination": "",
        "current_treatment": "",
        "bp_systolic": "",
        "bp_diastolic": "",
        "pulse_bpm": "128",
        "respiratory_rate": "38",
        "temperature_c": "37.9",
        "spo2_percent": "91",
        "weight_kg": "19.5",
        "action": "submit",
    }
    fields.update(overrides)
    return fields


def test_clinician_journey_without_javascript(
    client: TestClient, users: Users, db: Session
) -> None:
    nurse = users.make(Role.clinician)
    page_login(client, nurse)
    form = client.get("/consults/new")
    assert form.status_code == 200
    created = client.post(
        "/consults/new",
        data={**form_fields(), "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert created.status_code == 303
    detail_url = created.headers["location"]
    detail = client.get(detail_url)
    assert "Wheeze not responding to salbutamol &lt;b&gt;twice&lt;/b&gt;" in detail.text
    assert "<b>twice</b>" not in detail.text
    assert "SpO₂ 91%" in detail.text
    assert "draft → requested" in detail.text

    reply = client.post(
        f"{detail_url}/messages",
        data={
            "body": "<script>alert('x')</script> sent photos",
            "csrf_token": csrf_of(detail.text),
        },
    )
    assert reply.status_code == 200
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; sent photos" in reply.text
    assert "<script>alert" not in reply.text

    home = client.get("/")
    assert "MOT-77" in home.text
    assert "requested" in home.text
    assert "SAST" in home.text  # Africa/Maseru is shown as SAST


def test_form_errors_are_shown_next_to_their_fields(
    client: TestClient, users: Users, db: Session
) -> None:
    page_login(client, users.make(Role.clinician))
    csrf = csrf_of(client.get("/consults/new").text)
    response = client.post(
        "/consults/new",
        data={
            **form_fields(age_years="", specialty="astrology", spo2_percent="140", question="?"),
            "csrf_token": csrf,
        },
    )
    assert response.status_code == 422
    html = response.text
    for field, text in [
        ("age_years", "age in years or birth year"),
        ("spo2_percent", "SpO₂ must be 100 or less."),
        ("question", "Clinical question needs at least 5 characters."),
    ]:
        assert re.search(rf'id="{field}-error"[^>]*>[^<]*{re.escape(text)}', html), field
    assert 'value="MOT-77"' in html  # what was typed is kept
    half_bp = client.post(
        "/consults/new", data={**form_fields(bp_systolic="80"), "csrf_token": csrf}
    )
    assert re.search(r'id="bp_systolic-error"[^>]*>[^<]*both systolic and diastolic', half_bp.text)
    unknown = client.post(
        "/consults/new", data={**form_fields(specialty="astrology"), "csrf_token": csrf}
    )
    assert unknown.status_code == 422
    assert re.search(r'id="specialty-error"[^>]*>unknown specialty', unknown.text)
    assert db.exec(select(func.count()).select_from(Consult)).one() == 0


def test_draft_then_submit_and_cancel_through_pages(client: TestClient, users: Users) -> None:
    page_login(client, users.make(Role.clinician))
    csrf = csrf_of(client.get("/consults/new").text)
    created = client.post(
        "/consults/new",
        data={**form_fields(action="draft"), "csrf_token": csrf},
        follow_redirects=False,
    )
    url = created.headers["location"]
    page = client.get(url)
    assert "Request consult" in page.text
    submitted = client.post(f"{url}/submit", data={"csrf_token": csrf})
    assert "draft → requested" in submitted.text
    no_reason = client.post(f"{url}/cancel", data={"csrf_token": csrf, "reason": ""})
    assert no_reason.status_code == 422
    assert "say why the consult is cancelled" in no_reason.text
    cancelled = client.post(f"{url}/cancel", data={"csrf_token": csrf, "reason": "referred"})
    assert "requested → cancelled" in cancelled.text
    again = client.post(f"{url}/submit", data={"csrf_token": csrf})
    assert again.status_code == 409
    assert "cannot become" in again.text


def test_empty_reply_is_shown_next_to_the_reply_box(client: TestClient, users: Users) -> None:
    page_login(client, users.make(Role.clinician))
    csrf = csrf_of(client.get("/consults/new").text)
    url = client.post(
        "/consults/new", data={**form_fields(), "csrf_token": csrf}, follow_redirects=False
    ).headers["location"]
    response = client.post(f"{url}/messages", data={"body": "   ", "csrf_token": csrf})
    assert response.status_code == 422
    assert "the message is empty" in response.text


def test_other_facilitys_consult_page_is_not_found(
    client: TestClient, users: Users, login: object
) -> None:
    other = users.make(Role.clinician, "PARAY")
    page_login(client, other)
    csrf = csrf_of(client.get("/consults/new").text)
    url = client.post(
        "/consults/new", data={**form_fields(), "csrf_token": csrf}, follow_redirects=False
    ).headers["location"]
    client.post("/logout", data={"csrf_token": csrf})
    page_login(client, users.make(Role.clinician, "MOTEBANG"))
    response = client.get(url)
    assert response.status_code == 404
    assert "not found" in response.text
    assert "MOT-77" not in response.text


def test_role_homes_list_what_each_may_see(client: TestClient, users: Users) -> None:
    page_login(client, users.make(Role.clinician))
    csrf = csrf_of(client.get("/consults/new").text)
    client.post("/consults/new", data={**form_fields(), "csrf_token": csrf})
    client.post("/logout", data={"csrf_token": csrf})

    page_login(client, users.make(Role.specialist, timezone="Europe/London"))
    specialist_home = client.get("/")
    assert "Your consults" in specialist_home.text
    assert "MOT-77" not in specialist_home.text
    assert "Europe/London" in specialist_home.text
    client.post("/logout", data={"csrf_token": csrf_of(specialist_home.text)})

    page_login(client, users.make(Role.coordinator))
    coordinator_home = client.get("/")
    assert "All consults" in coordinator_home.text
    assert "MOT-77" in coordinator_home.text
    assert "Motebang Hospital" in coordinator_home.text
    client.post("/logout", data={"csrf_token": csrf_of(coordinator_home.text)})

    page_login(client, users.make(Role.admin))
    admin_home = client.get("/")
    assert "Administration" in admin_home.text
    assert "MOT-77" not in admin_home.text


def test_clinicians_cannot_be_others_and_others_cannot_request(
    client: TestClient, users: Users
) -> None:
    page_login(client, users.make(Role.specialist))
    assert client.get("/consults/new").status_code == 403


@pytest.mark.parametrize("role", [Role.clinician, Role.coordinator, Role.specialist, Role.admin])
def test_first_load_of_each_page_fits_the_2g_budget(
    client: TestClient, users: Users, role: Role
) -> None:
    user = users.make(role)
    login_page = client.get("/login")
    page_login(client, user)
    css = client.get("/static/app.css")
    pages = [client.get("/")]
    if role is Role.clinician:
        pages.append(client.get("/consults/new"))
        csrf = csrf_of(pages[-1].text)
        url = client.post(
            "/consults/new", data={**form_fields(), "csrf_token": csrf}, follow_redirects=False
        ).headers["location"]
        pages.append(client.get(url))
    for page in [login_page, *pages]:
        assert page.status_code == 200
        assert "http://" not in page.text.replace("http://testserver", "")  # nothing from a CDN
        assert len(page.content) + len(css.content) <= PAGE_BUDGET_BYTES


@pytest.mark.parametrize(
    "path",
    [
        "/login",
        "/static/app.css",
        "/static/call.js",
        "/static/call/peers.js",
        "/static/uploader.js",
        "/static/precall.js",
    ],
)
def test_pages_and_scripts_travel_compressed(client: TestClient, path: str) -> None:
    """What a phone on 2G downloads is gzip: a quarter to a half of the bytes."""
    plain = client.get(path, headers={"Accept-Encoding": "identity"})
    packed = client.get(path, headers={"Accept-Encoding": "gzip"})
    assert plain.status_code == packed.status_code == 200
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.content == plain.content  # the same bytes once unpacked
    assert packed.num_bytes_downloaded < 0.6 * plain.num_bytes_downloaded


def test_times_follow_the_viewers_zone_across_daylight_saving() -> None:
    winter = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
    summer = datetime(2026, 7, 15, 10, 0, tzinfo=UTC)
    maseru, london, toronto = (
        ZoneInfo("Africa/Maseru"),
        ZoneInfo("Europe/London"),
        ZoneInfo("America/Toronto"),
    )
    assert local_time(winter, maseru) == "15 Jan 2026 12:00 SAST"
    assert local_time(summer, maseru) == "15 Jul 2026 12:00 SAST"
    assert local_time(winter, london) == "15 Jan 2026 10:00 GMT"
    assert local_time(summer, london) == "15 Jul 2026 11:00 BST"
    assert local_time(winter, toronto) == "15 Jan 2026 05:00 EST"
    assert local_time(summer, toronto) == "15 Jul 2026 06:00 EDT"
    # The night London's clocks go back, one UTC hour apart shows the same wall hour twice.
    assert local_time(datetime(2026, 10, 25, 0, 30, tzinfo=UTC), london) == "25 Oct 2026 01:30 BST"
    assert local_time(datetime(2026, 10, 25, 1, 30, tzinfo=UTC), london) == "25 Oct 2026 01:30 GMT"


def test_waiting_time_is_compact() -> None:
    start = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)
    assert duration(start, datetime(2026, 3, 28, 22, 7, tzinfo=UTC)) == "7 min"
    assert duration(start, datetime(2026, 3, 29, 1, 5, tzinfo=UTC)) == "3 h 05 min"
    assert duration(start, datetime(2026, 3, 31, 2, 0, tzinfo=UTC)) == "2 d 4 h"


def test_no_template_compares_the_users_role() -> None:
    """Role-dependent parts of pages are flags computed in the views (``nav``,
    ``can_request``, ``can_read_audit``, ...), never ``user.role == "..."`` in a
    template, so the rule of who sees what stays beside the rule of who may do it."""
    comparison = re.compile(r"\brole\s*(==|!=|\bin\b|\bnot\s+in\b)")
    offending = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(TEMPLATES_DIR.glob("*.html"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if comparison.search(line)
    ]
    assert offending == []


HEADER_LINKS = {
    "/consults/new": {Role.clinician},
    "/schedule": {Role.clinician, Role.specialist},
    "/offers": {Role.specialist},
    "/specialists/availability": {Role.specialist},
    "/specialists/profile": {Role.specialist},
    "/coordinator/specialists": {Role.coordinator},
    "/coordinator/escalations": {Role.coordinator},
    "/coordinator/deliveries": {Role.coordinator},
    "/coordinator/network": {Role.coordinator},
}


@pytest.mark.parametrize("role", [Role.clinician, Role.specialist, Role.coordinator, Role.admin])
def test_each_role_sees_its_own_links_buttons_and_columns(
    client: TestClient, users: Users, role: Role
) -> None:
    """What the role flags decide, role by role: the header's links, the home page's
    buttons, the schedule's heading."""
    page_login(client, users.make(role))
    home = client.get("/")
    assert home.status_code == 200
    header = home.text.split("</header>")[0]
    for link, roles in HEADER_LINKS.items():
        assert (f'href="{link}"' in header) == (role in roles), link
    assert ("Request a consult" in home.text) == (role is Role.clinician)
    assert ("Your open offers" in home.text) == (role is Role.specialist)
    assert ('id="network-test-link"' in home.text) == (role in (Role.clinician, Role.specialist))
    if role is not Role.admin:
        titles = {
            Role.clinician: "Our facility's schedule",
            Role.specialist: "My schedule",
            Role.coordinator: "Schedule",
        }
        assert f"<h1>{titles[role]}</h1>" in client.get("/schedule").text


def test_the_facility_column_and_the_audit_link_follow_the_role(
    client: TestClient, users: Users
) -> None:
    """A clinician's home lists their own facility's consults (no facility column) and
    their consult page has no link to the case's audit log; a coordinator's has both."""
    page_login(client, users.make(Role.clinician))
    csrf = csrf_of(client.get("/consults/new").text)
    url = client.post(
        "/consults/new", data={**form_fields(), "csrf_token": csrf}, follow_redirects=False
    ).headers["location"]
    facility_column = '<th class="hide-narrow">Facility</th>'
    assert "MOT-77" in client.get("/").text
    assert facility_column not in client.get("/").text
    clinician_page = client.get(url)
    assert "Case timeline" in clinician_page.text
    assert "Audit log of this case" not in clinician_page.text
    client.post("/logout", data={"csrf_token": csrf_of(clinician_page.text)})
    page_login(client, users.make(Role.coordinator))
    assert facility_column in client.get("/").text
    assert "Audit log of this case" in client.get(url).text
