"""A newcomer's journey in a real browser on the embedded default with its demo data."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Server

pytestmark = pytest.mark.browser


def log_in(page: Page, server: Server, email: str, password: str) -> None:
    page.goto(f"{server.url}/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")


def fill_request(page: Page, **fields: str) -> None:
    """Open "Request a consult" and fill it: ``fields`` maps input ids to text, except
    sex, specialty, urgency, mode and language, which are chosen from their lists."""
    page.click("text=Request a consult")
    for name, value in fields.items():
        if name in ("sex", "specialty", "urgency", "mode", "language"):
            page.select_option(f"#{name}", value)
        else:
            page.fill(f"#{name}", value)


def test_clinician_requests_a_consult_and_the_coordinator_sees_it(
    browser: Any, server: Server
) -> None:
    context = browser.new_context()
    page: Page = context.new_page()
    log_in(page, server, "clinician@demo.telemed.org.ls", "clinician-demo-2026")
    expect(page.locator("h1")).to_have_text("Consults of your facility")
    expect(page.locator("tbody")).to_contain_text("MOT-2026-0141")  # demo data

    fill_request(
        page,
        patient_ref="MOT-BROWSER-1",
        age_years="9",
        sex="female",
        specialty="dermatology",
        urgency="urgent",
        mode="asynchronous",
        language="en",
        question="Spreading blistering rash after co-trimoxazole: SJS?",
        spo2_percent="140",  # a typo the form must catch
    )
    page.click("button[value=submit]")
    expect(page.locator("#spo2_percent-error")).to_contain_text("SpO₂ must be 100 or less.")
    expect(page.locator("#patient_ref")).to_have_value("MOT-BROWSER-1")
    page.fill("#spo2_percent", "96")
    page.click("button[value=submit]")

    expect(page.locator("h1")).to_contain_text("dermatology")
    expect(page.locator("h1 .state")).to_have_text("requested")
    consult_url = page.url

    page.click("header >> text=Telemed")
    row = page.locator("tbody tr", has_text="MOT-BROWSER-1")
    expect(row).to_contain_text("requested")
    expect(row).to_contain_text("SAST")
    row.locator("a").click()
    assert page.url == consult_url

    page.fill("#body", "Photos of the rash are ready to send.")
    page.click("form[action$='/messages'] button")
    expect(page.locator(".msg").last).to_contain_text("Photos of the rash are ready to send.")
    page.click("header button")  # log out
    expect(page.locator("h1")).to_have_text("Log in")
    context.close()

    context = browser.new_context()
    page = context.new_page()
    log_in(page, server, "coordinator@demo.telemed.org.ls", "coordinator-demo-2026")
    expect(page.locator("h1")).to_have_text("All consults")
    row = page.locator("tbody tr", has_text="MOT-BROWSER-1")
    expect(row).to_contain_text("Motebang Hospital")
    row.locator("a").click()
    expect(page.locator(".msg").last).to_contain_text("Photos of the rash are ready to send.")
    context.close()
