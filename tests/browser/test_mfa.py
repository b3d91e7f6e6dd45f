"""Two-step login in a real browser: a coordinator of the demo sets it up from the QR
page (the secret read from the page, as an app would from the code), keeps the recovery
codes, and logs in again with password and code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from telemed.mfa import totp
from tests.browser.conftest import Server
from tests.browser.test_clinician_journey import log_in

pytestmark = pytest.mark.browser

EMAIL = "coordinator@demo.telemed.org.ls"
PASSWORD = "coordinator-demo-2026"


def code_now(secret: str, steps_ahead: int = 0) -> str:
    """The app's code: the browser and the server share this machine's clock."""
    at = datetime.now(UTC) + timedelta(seconds=30 * steps_ahead)
    return totp.code_at_step(secret, totp.step_at(secret, at))


def test_coordinator_enrols_and_logs_in_with_a_code(browser: Any, server: Server) -> None:
    context = browser.new_context()
    page: Page = context.new_page()
    log_in(page, server, EMAIL, PASSWORD)
    page.click("text=Two-step login")
    expect(page.locator("h1")).to_have_text("Two-step login")
    page.click("text=Set up two-step login")
    expect(page.locator("figure svg.qr")).to_be_visible()  # drawn by the server, inline
    secret = page.locator("#totp-secret").inner_text()
    page.fill("#code", code_now(secret))
    page.click("main button[type=submit]")
    expect(page.locator("h1")).to_have_text("Recovery codes")
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    page.click("text=I have written them down: continue")
    expect(page.locator("main")).to_contain_text("Two-step login is on")

    page.click("header form[action='/logout'] button")
    page.wait_for_url(f"{server.url}/login")  # the logout's own navigation, before ours
    log_in(page, server, EMAIL, PASSWORD)
    expect(page.locator("h1")).to_have_text("Two-step login")
    expect(page).to_have_url(f"{server.url}/login/code")
    # The enrolment's code is spent; the next step's is within the accepted drift.
    page.fill("#code", code_now(secret, steps_ahead=1))
    page.click("main button[type=submit]")
    expect(page.locator("header .who")).to_contain_text("Lineo Mphutlane")
    context.close()
