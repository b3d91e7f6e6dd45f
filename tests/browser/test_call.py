"""Two headless Chromium pages hold a call on demo consult 1: media both ways, chat stored on
the thread, and a dropped signalling socket resumes while media keeps flowing."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Server
from tests.browser.test_clinician_journey import log_in

pytestmark = pytest.mark.browser

TIMEOUT_MS = 30_000


def open_call(browser: Any, server: Server, email: str, password: str) -> Page:
    context = browser.new_context()
    page: Page = context.new_page()
    log_in(page, server, email, password)
    page.locator("tbody tr", has_text="MOT-2026-0141").locator("a").first.click()
    page.click("#join-call")
    expect(page.locator("h1")).to_contain_text("Call")
    return page


def stats(page: Page) -> dict[str, Any]:
    value: dict[str, Any] = page.evaluate("window.telemedCall.stats()")
    return value


def wait_for_frames(page: Page, above: int = 0) -> None:
    page.wait_for_function(
        f"window.telemedCall.stats().then(s => s.framesDecoded > {above})",
        timeout=TIMEOUT_MS,
        polling=250,
    )


def test_two_browsers_hold_a_call_chat_and_resume(browser: Any, server: Server) -> None:
    clinician = open_call(browser, server, "clinician@demo.telemed.org.ls", "clinician-demo-2026")
    specialist = open_call(
        browser, server, "specialist@demo.telemed.org.ls", "specialist-demo-2026"
    )
    for page in (clinician, specialist):
        wait_for_frames(page)
        expect(page.locator("#presence")).to_contain_text("(you)")
    expect(clinician.locator("#presence")).to_contain_text("specialist")
    expect(specialist.locator("#presence")).to_contain_text("clinician")
    expect(clinician.locator("#quality")).not_to_have_text("unknown", timeout=TIMEOUT_MS)

    # Chat over the data channel, kept on the consult's thread.
    text = "Please show me the rash on the hands."
    specialist.fill("#chat-input", text)
    specialist.press("#chat-input", "Enter")
    expect(clinician.locator("#chat-log")).to_contain_text(text, timeout=TIMEOUT_MS)
    clinician.wait_for_function(
        """text => fetch('/api/v1/consults/1/messages', {credentials: 'same-origin'})
             .then(r => r.json()).then(list => list.some(m => m.body === text))""",
        arg=text,
        timeout=TIMEOUT_MS,
        polling=500,
    )

    # Drop the clinician's signalling socket: it resumes and media keeps flowing.
    before = stats(clinician)
    clinician.evaluate("window.telemedCall.dropSocket()")
    clinician.wait_for_function(
        "window.telemedCall.stats().then(s => s.resumes >= 1 && s.socket === 1)",
        timeout=TIMEOUT_MS,
        polling=250,
    )
    after = stats(clinician)
    assert after["session"] == before["session"]
    assert after["fullReconnects"] == before["fullReconnects"]
    wait_for_frames(clinician, before["framesDecoded"])
    wait_for_frames(specialist, stats(specialist)["framesDecoded"])
    assert stats(clinician)["connection"] == "connected"

    # Audio-only is announced to the other side.
    specialist.check("input[value=audio-only]")
    expect(clinician.locator("#presence")).to_contain_text("audio-only", timeout=TIMEOUT_MS)

    # Both leave; the consult page shows the call with its events.
    specialist.click("#leave")
    clinician.click("#leave")
    clinician.wait_for_url(f"{server.url}/consults/1", timeout=TIMEOUT_MS)
    clinician.wait_for_function(
        """() => fetch('/api/v1/consults/1/sessions', {credentials: 'same-origin'})
             .then(r => r.json())
             .then(list => list.length > 0 && list[list.length - 1].ended_at !== null)""",
        timeout=TIMEOUT_MS,
        polling=500,
    )
    clinician.reload()
    calls = clinician.locator(".call-session").last
    expect(calls).to_contain_text("joined the call")
    expect(calls).to_contain_text("switched to audio only")
    expect(calls).to_contain_text("call ended")
