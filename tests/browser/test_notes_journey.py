"""A specialist writes, signs and amends a note; the clinician sees both versions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Server
from tests.browser.test_clinician_journey import log_in

pytestmark = pytest.mark.browser


def open_demo_consult(page: Page) -> None:
    page.locator("tbody tr", has_text="MOT-2026-0141").locator("a").first.click()
    expect(page.locator("h1")).to_contain_text("paediatrics")


def test_specialist_signs_and_amends_a_note_and_the_clinician_sees_both(
    browser: Any, server: Server
) -> None:
    context = browser.new_context()
    page: Page = context.new_page()
    log_in(page, server, "specialist@demo.telemed.org.ls", "specialist-demo-2026")
    expect(page.locator("h1")).to_have_text("Your consults")
    open_demo_consult(page)
    page.click("text=Write a note")
    page.fill("#subjective", "Fever for 5 days, irritable child.")
    page.fill("#assessment", "Kawasaki disease, complete.")
    page.fill("#plan", "Refer for IV immunoglobulin today.")
    page.fill("#diagnoses", "M30.9")  # not a WHO code: the form must say so
    page.click("button[value=sign]")
    expect(page.locator("#diagnoses-error")).to_contain_text("unknown ICD-10 code 'M30.9'")
    page.fill("#diagnoses", "M30.3")
    follow_up = server.started.date() + timedelta(days=14)  # ahead of the server's today
    page.fill("#follow_up_on", follow_up.isoformat())
    page.fill("#follow_up_instruction", "Check platelets and peeling.")
    page.click("button[value=sign]")
    note = page.locator(".note").first
    expect(note).to_contain_text("M30.3 Mucocutaneous lymph node syndrome [Kawasaki]")
    expect(note).to_contain_text("signed")

    note.locator("text=Amend").click()
    page.fill("#reason", "Aspirin added after discussion")
    page.fill("#plan", "Refer for IV immunoglobulin today; start aspirin.")
    page.click("button[value=sign]")
    expect(page.locator(".note").first).to_contain_text("start aspirin")
    expect(page.locator(".note").first).to_contain_text("version 2")
    context.close()

    context = browser.new_context()
    page = context.new_page()
    log_in(page, server, "clinician@demo.telemed.org.ls", "clinician-demo-2026")
    open_demo_consult(page)
    expect(page.locator(".note").first).to_contain_text("start aspirin")
    page.click("text=Case timeline")
    timeline = page.locator("ol.timeline")
    expect(timeline).to_contain_text("Note version 1")
    expect(timeline).to_contain_text("Note version 2")
    expect(timeline).to_contain_text("Aspirin added after discussion")
    expect(timeline.locator("ins").first).to_contain_text("start aspirin")
    expect(timeline).to_contain_text("Follow-up due")
    context.close()
