"""Offline-first intake in real Chromium: a request with photos or a message "sent" while the
link is down is queued on the device (IndexedDB), listed on the home page and delivered
exactly once when the link comes back, also when the send is repeated or its answer lost;
an expired session keeps the queue until the clinician logs in again; logout empties it; the
home and request pages open offline after a first visit (service worker).

Delivery is checked in the server's database, not in the page."""

from __future__ import annotations

import io
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import BrowserContext, Page, Route, expect

from tests.browser.conftest import Server
from tests.browser.test_clinician_journey import fill_request, log_in

pytestmark = pytest.mark.browser

CLINICIAN = ("clinician@demo.telemed.org.ls", "clinician-demo-2026")
QUEUED = re.compile("queued on this device")


def photo(path: Path, seed: int) -> Path:
    """A noisy 1200x900 JPEG (a few hundred KB: two upload chunks or more)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (900, 1200, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=85)
    path.write_bytes(out.getvalue())
    return path


def query(server: Server, sql: str, *args: object) -> list[tuple[Any, ...]]:
    database = server.log.parent / "telemed.sqlite3"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        return connection.execute(sql, args).fetchall()


def queued(page: Page) -> int:
    """How many writes wait in this browser's offline queue."""
    count: int = page.evaluate(
        "import('/static/offline/queue.js').then((q) => q.all()).then((items) => items.length)"
    )
    return count


@contextmanager
def clinician(browser: Any, server: Server) -> Iterator[tuple[BrowserContext, Page]]:
    """Logged in, with the service worker installed and controlling the page (the first
    visit, online)."""
    context = browser.new_context(base_url=server.url)
    page: Page = context.new_page()
    log_in(page, server, *CLINICIAN)
    expect(page.locator("h1")).to_have_text("Consults of your facility")
    page.evaluate("navigator.serviceWorker.ready")
    page.reload()
    assert page.evaluate("!!navigator.serviceWorker.controller")
    try:
        yield context, page
    finally:
        context.close()


def open_consult(page: Page, patient_ref: str) -> str:
    page.locator("tbody tr", has_text=patient_ref).locator("a").first.click()
    found = re.search(r"/consults/(\d+)", page.url)
    assert found, page.url
    return found.group(1)


def eventually(
    page: Page, probe: Callable[[], object], wanted: object, timeout_s: float = 30
) -> None:
    """Wait for ``probe()`` to give ``wanted`` (the page works on its own time)."""
    deadline = time.monotonic() + timeout_s
    while (got := probe()) != wanted:
        assert time.monotonic() < deadline, f"still {got!r}, wanted {wanted!r}"
        page.wait_for_timeout(200)


def messages_with(server: Server, body: str) -> int:
    return int(query(server, "SELECT count(*) FROM messages WHERE body = ?", body)[0][0])


def test_a_request_with_two_photos_typed_offline_is_delivered_once(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    photos = [str(photo(tmp_path / "ulcer-1.jpg", 1)), str(photo(tmp_path / "ulcer-2.jpg", 2))]
    with clinician(browser, server) as (context, page):
        context.set_offline(True)
        fill_request(  # the request page itself comes from the service worker's cache
            page,
            patient_ref="MOT-OFFLINE-1",
            age_years="52",
            sex="female",
            specialty="dermatology",
            urgency="routine",
            mode="asynchronous",
            language="st",
            question="Ulcer of the foot for two months, typed while the link was down.",
        )
        page.check("#consent_sharing")
        page.set_input_files("#request-photos", photos)
        page.click("button[value=submit]")
        expect(page.locator("[data-offline-status]")).to_contain_text(QUEUED)
        assert queued(page) == 1

        page.goto("/")  # offline: the home page from the cache, the queue from IndexedDB
        panel = page.locator("[data-offline-queue]")
        expect(panel).to_be_visible()
        expect(panel).to_contain_text("Waiting to be sent: 1")
        expect(panel).to_contain_text("MOT-OFFLINE-1")
        expect(panel).to_contain_text("photos: 2")
        assert (
            query(server, "SELECT count(*) FROM cases WHERE patient_ref = 'MOT-OFFLINE-1'")[0][0]
            == 0
        )

        context.set_offline(False)  # the link is back: the `online` event sends it
        page.evaluate("dispatchEvent(new Event('online')); dispatchEvent(new Event('online'))")
        expect(panel).to_be_hidden(timeout=60_000)
        assert queued(page) == 0
        page.reload()
        page.evaluate("dispatchEvent(new Event('online'))")

    consults = query(
        server,
        "SELECT c.id, c.state FROM consults c JOIN cases k ON k.id = c.case_id "
        "WHERE k.patient_ref = 'MOT-OFFLINE-1'",
    )
    assert len(consults) == 1, consults
    consult_id, state = consults[0]
    assert state != "draft"
    files = query(
        server, "SELECT filename FROM attachments WHERE consult_id = ? ORDER BY id", consult_id
    )
    assert [f for (f,) in files] == ["ulcer-1.jpg", "ulcer-2.jpg"]


def test_a_message_typed_offline_is_delivered_once_though_its_answer_is_lost(
    browser: Any, server: Server
) -> None:
    body = "Typed offline: the swelling is less today."
    with clinician(browser, server) as (context, page):
        consult_id = open_consult(page, "MOT-2026-0141")
        context.set_offline(True)
        page.fill("#body", body)
        page.click("form[data-offline=message] button[type=submit]")
        expect(page.locator("[data-offline-status]")).to_contain_text(QUEUED)

        # The link comes back, but the first answer is lost on the way (the server has the
        # message; the page does not know): the queue keeps it.
        lost: list[str] = []

        def lose_the_answer(route: Route) -> None:
            if route.request.method == "POST" and not lost:
                lost.append(route.request.headers["idempotency-key"])
                route.fetch()
                route.abort("connectionreset")
                return
            route.continue_()

        page.route(f"**/api/v1/consults/{consult_id}/messages", lose_the_answer)
        context.set_offline(False)
        page.evaluate("dispatchEvent(new Event('online'))")
        eventually(page, lambda: len(lost), 1)
        eventually(page, lambda: messages_with(server, body), 1)
        assert queued(page) == 1

        # Sent again on the next page load, with the same key: the server replays the first
        # answer, and the queue is empty.
        page.reload()
        eventually(page, lambda: queued(page), 0)
        page.evaluate("dispatchEvent(new Event('online')); dispatchEvent(new Event('online'))")
        page.reload()
        expect(page.locator(".msg", has_text=body)).to_have_count(1)
        replays = query(server, "SELECT count(*) FROM idempotency_keys WHERE key = ?", lost[0])[0][
            0
        ]
        assert replays == 1
    assert messages_with(server, body) == 1


def test_a_session_expired_while_offline_keeps_the_queue_until_login(
    browser: Any, server: Server
) -> None:
    body = "Typed offline, session expired meanwhile."
    with clinician(browser, server) as (context, page):
        open_consult(page, "MOT-2026-0141")
        context.set_offline(True)
        page.fill("#body", body)
        page.click("form[data-offline=message] button[type=submit]")
        expect(page.locator("[data-offline-status]")).to_contain_text(QUEUED)

        context.clear_cookies()  # the session is gone by the time the link is back
        context.set_offline(False)
        page.evaluate("dispatchEvent(new Event('online'))")
        prompt = page.locator("#offline-login")
        expect(prompt).to_contain_text("Your session has expired")
        expect(prompt).to_contain_text("1 kept on this device")
        assert queued(page) == 1
        assert messages_with(server, body) == 0

        prompt.locator("a").click()
        page.fill("#email", CLINICIAN[0])
        page.fill("#password", CLINICIAN[1])
        page.click("button[type=submit]")
        expect(page).to_have_url(re.compile(r"/consults/\d+"))
        eventually(page, lambda: queued(page), 0)
    assert messages_with(server, body) == 1


def test_logout_clears_the_queue_and_the_caches(browser: Any, server: Server) -> None:
    body = "Queued, then the clinician logged out."
    with clinician(browser, server) as (context, page):
        open_consult(page, "MOT-2026-0141")
        context.set_offline(True)
        page.fill("#body", body)
        page.click("form[data-offline=message] button[type=submit]")
        expect(page.locator("[data-offline-status]")).to_contain_text(QUEUED)
        page.route("**/api/v1/**", lambda route: route.abort("connectionreset"))
        context.set_offline(False)
        assert queued(page) == 1
        assert page.evaluate("caches.keys().then((k) => k.length)") == 2

        page.click("header button:has-text('Log out')")
        expect(page).to_have_url(re.compile(r"/login"))
        assert queued(page) == 0
        assert page.evaluate("caches.keys().then((k) => k.length)") == 0
        # The service worker went too: only the response's Clear-Site-Data does that.
        assert (
            page.evaluate("navigator.serviceWorker.getRegistrations().then((r) => r.length)") == 0
        )
    assert messages_with(server, body) == 0


def test_the_home_and_request_pages_open_offline_and_nothing_clinical_is_cached(
    browser: Any, server: Server
) -> None:
    with clinician(browser, server) as (context, page):
        consult_id = open_consult(page, "MOT-2026-0141")
        page.goto("/")
        context.set_offline(True)
        page.goto("/")
        expect(page.locator("h1")).to_have_text("Consults of your facility")
        page.goto("/consults/new")
        expect(page.locator("h1")).to_have_text("Request a consult")
        expect(page.locator("#patient_ref")).to_be_visible()
        page.goto(f"/consults/{consult_id}")  # a consult page is never kept
        expect(page.locator("h1")).to_contain_text("No connection")
        kept: list[str] = page.evaluate(
            "caches.keys().then((names) => Promise.all(names.map((n) => caches.open(n)"
            ".then((c) => c.keys())))).then((all) => all.flat().map((r) => new URL(r.url).pathname))"
        )
    assert "/" in kept
    assert "/consults/new" in kept
    assert not [p for p in kept if p.startswith(("/api/", "/consults/")) and p != "/consults/new"]


def test_a_note_signed_offline_is_created_and_signed_once(browser: Any, server: Server) -> None:
    text = "Written offline: wound clean, granulating."
    with clinician(browser, server) as (context, page):
        consult_id = open_consult(page, "MOT-2026-0141")
        page.click("text=Write a note")
        context.set_offline(True)
        page.fill("#subjective", text)
        page.fill("#diagnoses", "M30.3")
        page.click("button[value=sign]")
        expect(page.locator("[data-offline-status]")).to_contain_text(QUEUED)
        context.set_offline(False)
        page.evaluate("dispatchEvent(new Event('online')); dispatchEvent(new Event('online'))")
        eventually(page, lambda: queued(page), 0)
    notes = query(
        server,
        "SELECT status, consult_id FROM consult_notes WHERE subjective = ?",
        text,
    )
    assert notes == [("signed", int(consult_id))]
