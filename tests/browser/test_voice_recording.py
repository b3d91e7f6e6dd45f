"""A voice note recorded in real Chromium (its fake microphone: a beep), sent as Opus
through the resumable upload, played inline in the thread with its length."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Server, wait_until
from tests.browser.test_clinician_journey import log_in
from tests.browser.test_light_photos import consult_id_of

pytestmark = pytest.mark.browser


def test_a_voice_note_is_recorded_sent_and_played_in_the_thread(
    browser: Any, server: Server
) -> None:
    context = browser.new_context(base_url=server.url)
    page: Page = context.new_page()
    log_in(page, server, "clinician@demo.telemed.org.ls", "clinician-demo-2026")
    page.locator("tbody tr", has_text="MOT-2026-0141").locator("a").first.click()
    consult_id = consult_id_of(page)
    recorder = page.locator("[data-voice]")
    expect(recorder).to_be_visible()  # MediaRecorder can record Opus here
    recorder.locator("[data-voice-start]").click()
    expect(recorder.locator("[data-voice-time]")).to_have_text("0:03", timeout=10_000)
    recorder.locator("[data-voice-stop]").click()
    status = recorder.locator("[data-voice-status]")
    expect(status).to_contain_text("Recorded", timeout=10_000)
    kb = int(re.search(r"(\d+) KB to send", status.inner_text()).group(1))  # type: ignore[union-attr]
    assert kb <= 20  # a few seconds at 12 kbit/s
    expect(recorder.locator("audio")).to_be_visible()
    recorder.locator("[data-voice-send]").click()
    page.wait_for_url("**?voice=1*", timeout=30_000)

    thread = page.request.get(f"/api/v1/consults/{consult_id}/messages").json()
    note = thread[-1]["voice_note"]
    assert note is not None
    assert note["media_type"] == "audio/webm"  # Chromium records WebM; Firefox would send Ogg
    assert 2_500 <= note["duration_ms"] <= 6_000, note
    player = page.locator(
        f'#thread ~ .msg audio[src="/attachments/{note["attachment_id"]}/original"]'
    )
    expect(player).to_have_attribute("preload", "none")
    expect(page.locator(".voice-note").last).to_contain_text("voice note · 0:0")
    # The browser can play what was stored: its length as the browser reads it.
    player.evaluate("a => { a.preload = 'auto'; a.load(); }")
    wait_until(page, "a => a.readyState >= 1", player.element_handle(), timeout_ms=10_000)
    context.close()
