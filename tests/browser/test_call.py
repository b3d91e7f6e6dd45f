"""Two headless Chromium pages hold a call on demo consult 1: media both ways, chat stored on
the thread, a photo shared and shown on the other side, a dropped signalling socket resumes
while media keeps flowing, and everything is on the consult afterwards."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import Server, wait_until
from tests.browser.test_clinician_journey import log_in

pytestmark = pytest.mark.browser

TIMEOUT_MS = 30_000


#: What the pre-call test of a slow clinic link measures: the call starts in "low".
SLOW_LINK = {"rtt_ms": 500, "probes_sent": 100, "probes_received": 97, "up_kbps": 300}


def open_call(
    browser: Any, server: Server, email: str, password: str, tested: dict[str, int] | None = None
) -> Page:
    context = browser.new_context()
    page: Page = context.new_page()
    log_in(page, server, email, password)
    page.locator("tbody tr", has_text="MOT-2026-0141").locator("a").first.click()
    if tested is not None:  # the pre-call test's result, stored as its page stores it
        status = page.evaluate(
            """measured => fetch('/api/v1/network-tests', {method: 'POST',
                 credentials: 'same-origin', headers: {'Content-Type': 'application/json',
                 'X-CSRF-Token': document.querySelector('input[name=csrf_token]').value},
                 body: JSON.stringify(measured)}).then(r => r.status)""",
            {**tested, "down_kbps": tested["up_kbps"]},
        )
        assert status == 201
    page.click("#join-call")
    expect(page.locator("h1")).to_contain_text("Call")
    # The page's modules (call.js and its imports) have run.
    wait_until(page, "() => window.telemedCall !== undefined", timeout_ms=TIMEOUT_MS)
    return page


def stats(page: Page) -> dict[str, Any]:
    value: dict[str, Any] = page.evaluate("window.telemedCall.stats()")
    return value


def api_get(page: Page, path: str) -> Any:
    """A JSON read with the page's own session cookie."""
    return page.evaluate(
        "path => fetch(path, {credentials: 'same-origin'}).then(r => r.json())", path
    )


def wait_for_frames(page: Page, above: int = 0) -> None:
    wait_until(
        page,
        f"window.telemedCall.stats().then(s => s.framesDecoded > {above})",
        timeout_ms=TIMEOUT_MS,
        every_ms=250,
    )


def test_two_browsers_hold_a_call_chat_and_resume(browser: Any, server: Server) -> None:
    clinician = open_call(
        browser, server, "clinician@demo.telemed.org.ls", "clinician-demo-2026", SLOW_LINK
    )
    before = api_get(clinician, "/api/v1/consults/1")["state"]  # the clinician is alone yet
    assert before == "scheduled"  # the demo books consult 1 from the minute it is seeded
    # The clinic's pre-call test chose the low-bandwidth profile; the specialist's is video.
    expect(clinician.locator("input[value=low]")).to_be_checked()
    assert stats(clinician)["mode"] == "low"
    specialist = open_call(
        browser, server, "specialist@demo.telemed.org.ls", "specialist-demo-2026"
    )
    for page in (clinician, specialist):
        wait_for_frames(page)
        expect(page.locator("#presence")).to_contain_text("(you)")
        # In the call: said calmly (not in a red alert box).
        status = page.locator("#call-status")
        expect(status).to_have_text("In the call.", timeout=TIMEOUT_MS)
        expect(status).to_have_attribute("data-tone", "ok")
        expect(status).not_to_have_class(re.compile("alert"))
    expect(clinician.locator("#presence")).to_contain_text("specialist")
    expect(specialist.locator("#presence")).to_contain_text("clinician")
    expect(clinician.locator("#quality")).not_to_have_text("unknown", timeout=TIMEOUT_MS)
    expect(specialist.locator("#presence")).to_contain_text("· low", timeout=TIMEOUT_MS)
    assert stats(specialist)["mode"] == "normal"
    clinician.check("input[value=normal]")  # the user may change it at any time
    expect(specialist.locator("#presence")).not_to_contain_text("· low", timeout=TIMEOUT_MS)

    # Chat over the data channel, kept on the consult's thread.
    text = "Please show me the rash on the hands."
    specialist.fill("#chat-input", text)
    specialist.press("#chat-input", "Enter")
    expect(clinician.locator("#chat-log")).to_contain_text(text, timeout=TIMEOUT_MS)
    wait_until(
        clinician,
        """text => fetch('/api/v1/consults/1/messages', {credentials: 'same-origin'})
             .then(r => r.json()).then(list => list.some(m => m.body === text))""",
        text,
        timeout_ms=TIMEOUT_MS,
        every_ms=500,
    )

    # A photo from the clinician's phone: uploaded to the consult, shown on the other side,
    # through the consult page's resumable uploader: the link drops during the first chunk,
    # the uploader asks the server for its offset (HEAD) and sends the chunk again.
    uploads: list[str] = []

    def drop_the_first_chunk(route: Route) -> None:
        uploads.append(route.request.method)
        if uploads == ["PATCH"]:
            route.abort("connectionreset")
            return
        route.continue_()

    clinician.route("**/api/v1/uploads/*", drop_the_first_chunk)
    photo = io.BytesIO()
    Image.new("RGB", (320, 240), (180, 40, 40)).save(photo, "JPEG")
    clinician.set_input_files(
        "#photo-input",
        files=[{"name": "rash-hands.jpg", "mimeType": "image/jpeg", "buffer": photo.getvalue()}],
    )
    shown = specialist.locator("#chat-log img.shared-photo")
    expect(shown).to_have_attribute("alt", "rash-hands.jpg", timeout=TIMEOUT_MS)
    wait_until(
        specialist,
        "() => { const i = document.querySelector('#chat-log img.shared-photo');"
        " return i && i.complete && i.naturalWidth > 0; }",
        timeout_ms=TIMEOUT_MS,
        every_ms=250,
    )
    expect(specialist.locator("#chat-log")).to_contain_text("shared a photo")
    expect(clinician.locator("#photo-status")).to_have_text("")
    assert uploads == ["PATCH", "HEAD", "PATCH"]
    clinician.unroute("**/api/v1/uploads/*")
    attachments = api_get(specialist, "/api/v1/consults/1/attachments")
    shared = [a for a in attachments if a["filename"] == "rash-hands.jpg"]
    assert len(shared) == 1
    assert shared[0]["message_id"] is not None
    thread = api_get(specialist, "/api/v1/consults/1/messages")
    note = next(m for m in thread if m["id"] == shared[0]["message_id"])
    assert note["body"] == "shared a photo during the call: rash-hands.jpg"

    # Drop the clinician's signalling socket: it resumes and media keeps flowing.
    earlier = stats(clinician)
    clinician.evaluate("window.telemedCall.dropSocket()")
    wait_until(
        clinician,
        "window.telemedCall.stats().then(s => s.resumes >= 1 && s.socket === 1)",
        timeout_ms=TIMEOUT_MS,
        every_ms=250,
    )
    # Resumed: "reconnecting…" is over (nothing else would change the line).
    expect(clinician.locator("#call-status")).to_have_text("In the call.", timeout=TIMEOUT_MS)
    after = stats(clinician)
    assert after["session"] == earlier["session"]
    assert after["fullReconnects"] == earlier["fullReconnects"]
    wait_for_frames(clinician, earlier["framesDecoded"])
    wait_for_frames(specialist, stats(specialist)["framesDecoded"])
    assert stats(clinician)["connection"] == "connected"

    # Audio-only is announced to the other side, and sends no more video.
    specialist.check("input[value=audio-only]")
    expect(clinician.locator("#presence")).to_contain_text("· audio only", timeout=TIMEOUT_MS)
    assert stats(specialist)["mode"] == "audio-only"
    wait_until(
        clinician,
        "window.telemedCall.stats().then(s => s.connection === 'connected')",
        timeout_ms=TIMEOUT_MS,
        every_ms=250,
    )
    # Both sides in the room: the scheduled consult is in session.
    during = "in_session"
    wait_until(
        clinician,
        """state => fetch('/api/v1/consults/1', {credentials: 'same-origin'})
             .then(r => r.json()).then(c => c.state === state)""",
        during,
        timeout_ms=TIMEOUT_MS,
        every_ms=500,
    )

    # Without a data channel, what reaches the thread reaches the call page (once).
    specialist.evaluate("window.telemedCall.dropChannels()")
    late = "Both feet are swollen since yesterday."
    clinician.fill("#chat-input", late)
    clinician.press("#chat-input", "Enter")
    wait_until(
        clinician,
        """text => fetch('/api/v1/consults/1/messages', {credentials: 'same-origin'})
             .then(r => r.json()).then(list => list.some(m => m.body === text))""",
        late,
        timeout_ms=TIMEOUT_MS,
        every_ms=500,
    )
    specialist.evaluate("window.telemedCall.pollFeed()")
    log = specialist.locator("#chat-log li")
    expect(log.filter(has_text=late)).to_have_count(1, timeout=TIMEOUT_MS)
    expect(log.filter(has_text="rash on the hands")).to_have_count(1)  # its own, not again
    expect(log.filter(has_text="shared a photo")).to_have_count(1)  # the photo, not its note
    expect(specialist.locator("#chat-log img.shared-photo")).to_have_count(1)

    # Both leave; the consult page shows the call with its events.
    specialist.click("#leave")
    clinician.click("#leave")
    clinician.wait_for_url(f"{server.url}/consults/1", timeout=TIMEOUT_MS)
    wait_until(
        clinician,
        """() => fetch('/api/v1/consults/1/sessions', {credentials: 'same-origin'})
             .then(r => r.json())
             .then(list => list.length > 0 && list[list.length - 1].ended_at !== null)""",
        timeout_ms=TIMEOUT_MS,
        every_ms=500,
    )
    assert api_get(clinician, "/api/v1/consults/1")["state"] == before
    clinician.reload()
    calls = clinician.locator(".call-session").last
    expect(calls).to_contain_text("joined the call")
    expect(calls).to_contain_text("switched to audio only")
    expect(calls).to_contain_text("call ended")
    expect(calls).to_contain_text("shared a photo: rash-hands.jpg")
    expect(calls.locator(f'a[href="#attachment-{shared[0]["id"]}"]')).to_be_visible()
