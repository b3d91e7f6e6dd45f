"""The demo clinician runs the pre-call network test in headless Chromium against the
server's aiortc echo peer; the result shows on the page, is stored for her facility and
appears on the coordinators' facility links."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Server
from tests.browser.test_clinician_journey import log_in

pytestmark = pytest.mark.browser

TIMEOUT_MS = 30_000
LABELS = {"video", "low-bandwidth video", "audio only", "messages and photos (no live call)"}


def test_the_clinician_tests_her_link_and_the_coordinator_sees_it(
    browser: Any, server: Server
) -> None:
    page: Page = browser.new_context().new_page()
    log_in(page, server, "clinician@demo.telemed.org.ls", "clinician-demo-2026")
    page.click("#network-test-link")
    expect(page.locator("h1")).to_have_text("Network test")
    page.click("#precall-start")

    recommendation = page.locator("#precall-recommendation")
    expect(recommendation).to_have_attribute("data-recommendation", "normal", timeout=TIMEOUT_MS)
    state: dict[str, Any] = page.evaluate("window.telemedNetworkTest.state()")
    assert state["error"] is None
    measured, stored = state["measured"], state["stored"]
    assert measured["connected"] is True
    assert measured["probes_received"] == measured["probes_sent"] > 0  # loopback loses nothing
    assert stored["loss_percent"] == 0
    assert stored["up_kbps"] > 0
    assert stored["down_kbps"] > 0
    assert recommendation.text_content() == "video"
    expect(page.locator("#precall-rtt")).to_contain_text(" ms")
    expect(page.locator("#precall-status")).to_contain_text("Done")
    used_kb = int((page.locator("#precall-bytes").text_content() or "0 KB").split()[0])
    assert 0 < used_kb <= 300  # the plan keeps the test small

    # Stored for her and her facility, with the server's recommendation.
    database = server.log.parent / "telemed.sqlite3"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        row = connection.execute(
            "SELECT f.code, t.recommendation, t.user_agent FROM network_tests t "
            "JOIN facilities f ON f.id = t.facility_id WHERE t.id = ?",
            (stored["id"],),
        ).fetchone()
    assert row[0] == "MOTEBANG"
    assert row[1] == stored["recommendation"]
    assert "Chrome" in row[2]
    # The call page will start with this profile.
    profile = page.evaluate("fetch('/api/v1/network-tests/recommendation').then(r => r.json())")
    assert profile["profile"] == stored["recommendation"]

    # A reload shows the stored result without running the test again.
    page.reload()
    expect(page.locator("#precall-latest")).to_contain_text(stored["label"])

    coordinator: Page = browser.new_context().new_page()
    log_in(coordinator, server, "coordinator@demo.telemed.org.ls", "coordinator-demo-2026")
    coordinator.click("text=Facility links")
    row_el = coordinator.locator("#facility-MOTEBANG")
    expect(row_el).to_contain_text(stored["label"])
    expect(row_el).to_contain_text("0.0%")
    assert stored["label"] in LABELS
