"""Each role's main pages on a 360 x 740 phone (issue 15): nothing scrolls sideways, and on a
consult with an hour of call history the thread's reply box is within the first two screens,
and no id is used twice.
Screenshots of every page go to the test's temporary directory (and, with
TELEMED_TOUR_DIR=docs/tour, to the tour the README links). The call page tells the truth:
with no candidate pair the thread is offered within 15 s, and without JavaScript it says so.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from signaling.events import SessionEvent
from telemed.db import make_engine
from telemed.sessions import service as call_service
from telemed.settings import Settings
from tests.browser.conftest import Server, wait_until
from tests.browser.test_clinician_journey import log_in

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}
TWO_SCREENS = 2 * PHONE["height"]
TIMEOUT_MS = 30_000

#: role -> (e-mail, password, the role's main pages)
ROLES = {
    "clinician": (
        "clinician@demo.telemed.org.ls",
        "clinician-demo-2026",
        ["/", "/consults/1", "/consults/new", "/schedule", "/notifications"],
    ),
    "specialist": (
        "specialist@demo.telemed.org.ls",
        "specialist-demo-2026",
        ["/", "/consults/1", "/offers", "/schedule", "/specialists/availability"],
    ),
    "coordinator": (
        "coordinator@demo.telemed.org.ls",
        "coordinator-demo-2026",
        [
            "/",
            "/consults/1",
            "/coordinator/specialists",
            "/coordinator/escalations",
            "/coordinator/oncall",
            "/coordinator/deliveries",
            "/coordinator/network",
        ],
    ),
    "admin": (
        "admin@demo.telemed.org.ls",
        "admin-demo-2026",
        ["/", "/admin/users", "/admin/facilities"],
    ),
}

OVERFLOW = """() => {
  const root = document.documentElement;
  const wide = Array.from(document.querySelectorAll('body *'))
    .filter((e) => e.getBoundingClientRect().right > root.clientWidth + 1)
    .slice(0, 5).map((e) => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className);
  return {scroll: root.scrollWidth, client: root.clientWidth, wide};
}"""

#: Ids used twice on a page (a label's ``for`` or a ``#fragment`` would reach the first only:
#: the outcome heading and its select once shared ``id="outcome"``).
REPEATED_IDS = """() => {
  const seen = new Set(), twice = [];
  for (const e of document.querySelectorAll('[id]')) {
    if (seen.has(e.id)) twice.push(e.id);
    seen.add(e.id);
  }
  return twice;
}"""


def seed_call_history(server: Server, consult_id: int, minutes: int = 60) -> None:
    """An hour-long call on the consult as the signalling hub records it: a quality report
    from each side every 30 s, a drop and a resume, then the end (the issue's consult 1)."""
    data = server.log.parent
    engine = make_engine(Settings(data_dir=data).sqlalchemy_url)
    room = call_service.room_of(consult_id)
    start = datetime.now(UTC) - timedelta(minutes=minutes + 5)
    events = []
    for i in range(minutes * 2):
        for side, rtt in (("u-1", 180 + i % 7 * 40), ("u-3", 220 + i % 5 * 30)):
            stats = {"rtt_ms": rtt, "loss": (i % 9) / 300, "kbps_in": 90 + i % 11 * 20}
            events.append(("quality", side, start + timedelta(seconds=30 * i), {"stats": stats}))
    events.append(("reconnecting", "u-3", start + timedelta(minutes=20), {}))
    events.append(("reconnected", "u-3", start + timedelta(minutes=20, seconds=6), {}))
    events.append(("ended", None, start + timedelta(minutes=minutes), {}))
    try:
        for kind, who, at, detail in sorted(events, key=lambda e: e[2]):
            call_service.record_event(
                engine,
                SessionEvent(
                    kind=kind,  # type: ignore[arg-type]
                    room=room,
                    participant=who,
                    role=None,
                    session=who and f"s-{who}",
                    at=at,
                    node="test",
                    detail=detail,
                ),
            )
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def history(server: Server) -> Server:
    seed_call_history(server, 1)
    return server


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=PHONE)
    yield context
    context.close()


def shoot(page: Page, name: str, folder: Path) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    tour = os.environ.get("TELEMED_TOUR_DIR")
    if tour:  # the README's tour: refreshed by hand (docs/tour.md says how)
        Path(tour).mkdir(parents=True, exist_ok=True)
        shutil.copy(folder / f"{name}.png", Path(tour) / f"{name}.png")


@pytest.mark.parametrize("role", list(ROLES))
def test_main_pages_fit_a_phone(role: str, history: Server, phone: Any, tmp_path: Path) -> None:
    email, password, paths = ROLES[role]
    page: Page = phone.new_page()
    log_in(page, history, email, password)
    page.wait_for_url(f"{history.url}/")
    for path in paths:
        response = page.goto(history.url + path)
        assert response is not None
        assert response.status == 200, (role, path)
        width = page.evaluate(OVERFLOW)
        assert width["scroll"] <= width["client"], (role, path, width)
        assert page.evaluate(REPEATED_IDS) == [], (role, path)
        name = f"{role}-" + (re.sub(r"[^a-z0-9]+", "-", path.strip("/")) or "home")
        shoot(page, name, tmp_path)
        if path == "/consults/1" and role != "coordinator":
            # An hour of quality reports is one line; the reply box is near the top.
            calls = page.locator(".call-session").last
            expect(calls.locator(".call-quality")).to_have_count(1)
            expect(calls.locator(".call-quality")).to_contain_text("240 quality reports")
            reply = page.locator("#body").bounding_box()
            assert reply is not None
            assert reply["y"] + reply["height"] <= TWO_SCREENS, reply
            expect(page.locator("#next-step")).to_be_visible()
            assert page.locator("#timeline").get_attribute("open") is None  # folded
            if role == "clinician":  # the outcome heading and its select, ids apart
                expect(page.locator("h2#outcome + p + form #outcome-choice")).to_have_count(1)
    if role in ("clinician", "specialist"):
        # The home list: a stack of cards whose whole row opens the consult.
        page.goto(history.url + "/")
        card = page.locator("tbody tr", has_text="MOT-2026-0141")
        expect(card.locator("td.state-cell")).to_be_visible()
        if role == "clinician":  # consult 2 waits for a specialist: for how long shows
            waiting = page.locator("tbody tr", has_text="MOT-2026-0207").locator("td.waiting")
            expect(waiting).to_have_text(re.compile(r"\d+ (d|h|min)"))
        box = card.bounding_box()
        assert box is not None
        page.mouse.click(box["x"] + box["width"] - 10, box["y"] + box["height"] - 8)
        page.wait_for_url(f"{history.url}/consults/1")


def drop_candidates(ws: WebSocketRoute) -> None:
    """A network where no media path exists: the signalling passes, the ICE candidates
    do not (as with UDP blocked and no TURN relay)."""
    server = ws.connect_to_server()
    ws.on_message(lambda m: None if '"candidate"' in str(m) else server.send(m))
    server.on_message(lambda m: None if '"candidate"' in str(m) else ws.send(m))


def test_without_a_candidate_pair_the_thread_is_offered_within_15_s(
    browser: Any, server: Server
) -> None:
    pages = []
    for email, password in (
        ("clinician@demo.telemed.org.ls", "clinician-demo-2026"),
        ("specialist@demo.telemed.org.ls", "specialist-demo-2026"),
    ):
        context = browser.new_context(viewport=PHONE)
        context.route_web_socket(re.compile(r".*/ws/signal.*"), drop_candidates)
        page = context.new_page()
        log_in(page, server, email, password)
        page.goto(f"{server.url}/consults/1/call")
        pages.append(page)
    try:
        for page in pages:
            fallback = page.locator("#call-fallback")
            expect(fallback).to_be_visible(timeout=TIMEOUT_MS)
            expect(fallback.locator('a[href="/consults/1#thread"]')).to_be_visible()
            status = page.locator("#call-status")
            # Said by the 15-second check for a candidate pair (not the 30-second media one).
            expect(status).to_have_text("No media connection yet; still trying…")
            expect(status).not_to_have_class(re.compile("alert"))
            assert page.evaluate(OVERFLOW)["scroll"] <= PHONE["width"]
    finally:
        for page in pages:
            page.context.close()


def test_without_javascript_the_call_page_says_so(browser: Any, server: Server) -> None:
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    try:
        page = context.new_page()
        log_in(page, server, "clinician@demo.telemed.org.ls", "clinician-demo-2026")
        page.goto(f"{server.url}/consults/1/call")
        notice = page.locator("#call-noscript")
        expect(notice).to_be_visible()
        expect(notice.locator('a[href="/consults/1#thread"]')).to_be_visible()
        expect(page.locator("#call-status")).to_be_hidden()  # no "Preparing camera…"
    finally:
        context.close()


def test_links_in_calendar_files_name_the_address_served(browser: Any, server: Server) -> None:
    """TELEMED_PUBLIC_BASE_URL unset: `telemed serve --port N` writes its own address."""
    context = browser.new_context()
    try:
        page = context.new_page()
        log_in(page, server, "clinician@demo.telemed.org.ls", "clinician-demo-2026")
        wait_until(page, "() => location.pathname === '/'")
        ics = page.evaluate(
            "() => fetch('/consults/1/appointment.ics', {credentials: 'same-origin'})"
            ".then(r => r.text())"
        )
        assert f"{server.url}/consults/1" in ics.replace("\r\n ", "")
    finally:
        context.close()
