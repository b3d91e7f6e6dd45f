"""The README's newcomer walk-through in a real browser on the embedded default: register
as a specialist, be verified by the demo coordinator, tick availability on the week grid,
receive the offer of a demo clinician's request, accept it, see the appointment on both
sides, and find the e-mails in the local mailbox."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Server, serve
from tests.browser.test_clinician_journey import fill_request, log_in

pytestmark = pytest.mark.browser

NEWCOMER = "lerato.newcomer@example.org"
PASSWORD = "a long newcomer password"
LONDON, MASERU = ZoneInfo("Europe/London"), ZoneInfo("Africa/Maseru")


def _next(month: int) -> datetime:
    """09:00 UTC on the 15th of the next ``month`` still to come: a date in the middle of
    London's winter (January) or summer (July), in the future so that the browser's real
    clock never sees the server's cookies as expired."""
    today = datetime.now(UTC).date()
    year = today.year if (today.month, today.day) < (month, 15) else today.year + 1
    return datetime(year, month, 15, 9, 0, tzinfo=UTC)


@pytest.fixture(
    scope="module",
    params=[pytest.param(1, id="winter"), pytest.param(7, id="summer")],
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The embedded default on a machine whose date is set to mid-January, then to
    mid-July (libfaketime): the walk-through's times must follow London's clock change."""
    with serve(tmp_path_factory.mktemp("newcomer"), at=_next(request.param)) as running:
        yield running


def zone_name(zone: ZoneInfo, on: date) -> str:
    """The abbreviation ``zone`` shows on ``on``, from the zone database (GMT or BST)."""
    return datetime(on.year, on.month, on.day, 12, tzinfo=UTC).astimezone(zone).tzname() or ""


def fresh_page(browser: Any) -> Page:
    page: Page = browser.new_context().new_page()
    return page


def mailbox(server: Server) -> str:
    """`telemed mailbox list` of the server's data directory, as the README says."""
    env = {**os.environ, "TELEMED_DATA_DIR": str(server.log.parent)}
    env.pop("TELEMED_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "telemed", "mailbox", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_a_newcomer_registers_is_verified_and_books_a_consult(browser: Any, server: Server) -> None:
    page = fresh_page(browser)
    page.goto(f"{server.url}/specialists/register")
    page.fill("#full_name", "Dr Lerato Mahase")
    page.fill("#email", NEWCOMER)
    page.fill("#password", PASSWORD)
    page.check("input[name=specialties][value=dermatology]")
    page.check("input[name=languages][value=en]")
    page.fill("#country", "GB")
    page.fill("#time_zone", "Europe/London")
    page.select_option("#registration_body", "GMC")
    page.fill("#registration_number", "7054321")
    valid_until = server.started.date() + timedelta(days=300)
    page.fill("#registration_expires_on", valid_until.isoformat())
    page.click("button[type=submit]")
    page.context.close()

    coordinator = fresh_page(browser)
    log_in(coordinator, server, "coordinator@demo.telemed.org.ls", "coordinator-demo-2026")
    coordinator.goto(f"{server.url}/coordinator/specialists?status=pending")
    card = coordinator.locator("section.card", has_text="Dr Lerato Mahase")
    expect(card).to_contain_text("status pending")
    card.locator("input[name=note]").fill("GMC online register checked")
    card.locator("button", has_text="Verify").click()
    coordinator.goto(f"{server.url}/coordinator/specialists?status=verified")
    expect(coordinator.locator("section.card", has_text="Dr Lerato Mahase")).to_contain_text(
        "Evidence: GMC online register checked"
    )
    coordinator.context.close()

    newcomer = fresh_page(browser)
    log_in(newcomer, server, NEWCOMER, PASSWORD)
    newcomer.goto(f"{server.url}/specialists/availability?hours=all")
    expect(newcomer.locator("body")).to_contain_text("Europe/London")
    newcomer.eval_on_selector_all(
        "input[name=cell]", "cells => cells.forEach(c => { c.checked = true; })"
    )
    # Saved means the 303 back to the editor (refused input comes back as 422 with alerts);
    # counting no alert on the page before the answer came would prove nothing.
    with newcomer.expect_response(lambda r: r.request.method == "POST") as answer:
        newcomer.click("button[name=source][value=grid]")
    assert answer.value.status == 303, answer.value.text()
    expect(newcomer.locator("[role=alert]")).to_have_count(0)
    newcomer.goto(f"{server.url}/specialists/availability?hours=all")
    expect(newcomer.locator("input[name=cell]:not(:checked)")).to_have_count(0)

    clinician = fresh_page(browser)
    log_in(clinician, server, "clinician@demo.telemed.org.ls", "clinician-demo-2026")
    fill_request(
        clinician,
        patient_ref="MOT-NEWCOMER-1",
        age_years="34",
        sex="male",
        specialty="dermatology",
        urgency="urgent",
        mode="video",
        language="en",
        question="Violaceous plaques on both shins for three weeks.",
    )
    clinician.check("#consent_sharing")  # the patient agreed, verbally: offered at once
    clinician.click("button[value=submit]")
    expect(clinician.locator("h1 .state")).to_have_text("offered")
    consult_url = clinician.url

    newcomer.goto(f"{server.url}/offers")
    expect(newcomer.locator("body")).to_contain_text("Violaceous plaques")
    newcomer.click("button:has-text('Accept')")
    expect(newcomer.locator("h1 .state")).to_have_text("scheduled")
    newcomer.goto(f"{server.url}/schedule")
    # The appointment is within a day of the server's date, far from a clock change.
    expect(newcomer.locator("body")).to_contain_text(zone_name(LONDON, server.started.date()))

    clinician.goto(consult_url)
    expect(clinician.locator("h1 .state")).to_have_text("scheduled")
    expect(clinician.locator("body")).to_contain_text("Dr Lerato Mahase")
    expect(clinician.locator("body")).to_contain_text(zone_name(MASERU, server.started.date()))

    # The scheduler delivers the outbox every 15 s into the local Maildir.
    subject = f"Consult #{consult_url.rstrip('/').rsplit('/', 1)[1]}: session booked"
    deadline = time.monotonic() + 60
    listing = mailbox(server)
    while listing.count(subject) < 2 and time.monotonic() < deadline:
        time.sleep(1)
        listing = mailbox(server)
    booked = [line for line in listing.splitlines() if subject in line]
    assert any(NEWCOMER in line for line in booked), listing
    assert any("clinician@demo.telemed.org.ls" in line for line in booked), listing
    offers = [line for line in listing.splitlines() if "New urgent dermatology" in line]
    assert any(NEWCOMER in line for line in offers), listing
