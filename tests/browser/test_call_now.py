"""Call now (issue 15): an emergency requested by the clinician and accepted "now" by the
specialist has both of them in its call page within a minute of the request, rather than
waiting for a booked half-hour slot. Headless Chromium on the embedded default."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Server, real_time, serve, wait_until
from tests.browser.test_clinician_journey import log_in
from tests.helpers import consult_payload

pytestmark = pytest.mark.browser

CLINICIAN = ("clinician@demo.telemed.org.ls", "clinician-demo-2026")
SPECIALIST = ("specialist@demo.telemed.org.ls", "specialist-demo-2026")
MINUTE_MS = 60_000


def _tomorrow_morning() -> datetime:
    """08:00 UTC tomorrow (10:00 for the Johannesburg paediatrician, inside their hours):
    in the future, so that the browser's real clock never sees the cookies as expired."""
    day = datetime.fromtimestamp(real_time(), UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve(tmp_path_factory.mktemp("call-now"), at=_tomorrow_morning()) as running:
        yield running


def api(page: Page, method: str, path: str, body: object = None) -> Any:
    """A JSON call with the page's own session cookie and CSRF token."""
    return page.evaluate(
        """([method, path, body]) => fetch(path, {method, credentials: 'same-origin',
             headers: {'Content-Type': 'application/json',
                       'X-CSRF-Token': document.querySelector('input[name=csrf_token]').value},
             body: body === null ? undefined : JSON.stringify(body)})
           .then(async r => ({status: r.status, json: await r.json()}))""",
        [method, path, body],
    )


def test_an_emergency_accepted_now_has_both_sides_in_the_call_within_a_minute(
    browser: Any, server: Server
) -> None:
    specialist: Page = browser.new_context().new_page()
    log_in(specialist, server, *SPECIALIST)
    # The demo's history fills the paediatrician's weekly cap: they lift it, as a
    # volunteer who takes emergencies whatever the week holds would.
    mine = api(specialist, "GET", "/api/v1/specialists/me/availability")["json"]
    lifted = {k: v for k, v in mine.items() if k != "time_zone"}
    lifted |= {"weekly_cap": None, "weekly_cap_hours": None}
    saved = api(specialist, "PUT", "/api/v1/specialists/me/availability", lifted)
    assert saved["status"] == 200, saved

    clinician: Page = browser.new_context().new_page()
    log_in(clinician, server, *CLINICIAN)
    expect(clinician.locator("h1")).to_have_text("Consults of your facility")
    # The demo books the paediatrician's video consult 1 from the minute it is seeded;
    # cancelling it releases the rest of its slot at once.
    cancelled = api(clinician, "POST", "/api/v1/consults/1/cancel", {"reason": "transferred"})
    assert cancelled["status"] == 200, cancelled

    made = api(
        clinician,
        "POST",
        "/api/v1/consults",
        consult_payload(urgency="emergency", mode="video", specialty="paediatrics"),
    )
    requested_at = time.monotonic()
    assert made["status"] == 201, made
    consult_id = made["json"]["id"]
    assert made["json"]["state"] == "offered", made

    specialist.goto(f"{server.url}/offers")
    specialist.locator("section.card", has_text=f"consult {consult_id}").locator(
        "button[name=start_now][value='1']"
    ).click()
    expect(specialist.locator("h1")).to_contain_text(str(consult_id))

    for page in (specialist, clinician):
        page.goto(f"{server.url}/consults/{consult_id}")
        page.click("#join-call")
        expect(page.locator("h1")).to_contain_text("Call")

    # Both sides in the room moves the consult to in_session; the budget is what is left
    # of the minute since the request.
    left_ms = int(MINUTE_MS - (time.monotonic() - requested_at) * 1000)
    assert left_ms > 0, "the call pages took more than a minute to open"
    wait_until(
        clinician,
        """id => fetch('/api/v1/consults/' + id, {credentials: 'same-origin'})
                 .then(r => r.json()).then(c => c.state === 'in_session')""",
        consult_id,
        timeout_ms=left_ms,
    )
