"""A specialist registers on a 360 px phone: the time-zone picker comes preselected with
the browser's own zone, nothing overflows sideways, and the page after registering says
what happens next. The screenshots are kept beside the test's temporary files."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Server

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}


def _fits(page: Page) -> bool:
    width: bool = page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    return width


def test_registration_on_a_phone_preselects_the_browser_zone(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    context = browser.new_context(viewport=PHONE, timezone_id="America/New_York")
    page: Page = context.new_page()
    page.goto(f"{server.url}/specialists/register")
    expect(page.locator("#time_zone")).to_have_value("America/New_York")
    expect(page.locator("input[name=languages]:checked")).to_have_count(0)
    assert _fits(page)
    page.screenshot(path=str(tmp_path / "register-360.png"), full_page=True)

    page.fill("#full_name", "Dr Ama Owusu")
    page.fill("#email", "ama.owusu@example.org")
    page.fill("#password", "a long phone password")
    page.fill("#phone", "+1 212 555 0100")
    page.check("input[name=specialties][value=dermatology]")
    page.fill("#country", "US")
    page.select_option("#registration_body", index=1)
    page.fill("#registration_number", "NY-445566")
    valid_until = server.started.date() + timedelta(days=300)
    page.fill("#registration_expires_on", valid_until.isoformat())
    page.click("button[type=submit]")
    # No language ticked: refused beside the field, in a sentence, the zone kept.
    expect(page.locator("#languages-error")).to_contain_text("Tick at least one language")
    expect(page.locator("#time_zone")).to_have_value("America/New_York")
    assert _fits(page)

    page.fill("#password", "a long phone password")
    page.check("input[name=languages][value=en]")
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_contain_text("your registration is received")
    expect(page.locator("main")).to_contain_text("You get an e-mail once it is verified")
    assert _fits(page)
    page.screenshot(path=str(tmp_path / "registered-360.png"), full_page=True)
    context.close()
