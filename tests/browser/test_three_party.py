"""A call of three (issue 14, item 4): on demo consult 1 the specialist invites an
interpreter from the consult page's form; the clinician and the specialist hold the call in
two headless Chromium pages and the interpreter joins with the protocol page's aiortc client
(examples/signaling_client.py). A mesh: every browser holds two peer connections, each
with its data channel and a tile captioned with the peer's role; the interpreter gets media
and chat from both."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Server, wait_until
from tests.browser.test_call import TIMEOUT_MS, open_call
from tests.browser.test_clinician_journey import log_in
from tests.process_helpers import read_line

pytestmark = pytest.mark.browser

EXAMPLE = Path(__file__).parents[2] / "examples" / "signaling_client.py"
INTERPRETER = ("specialist.london@demo.telemed.org.ls", "london-demo-2026")
INTERPRETER_NAME = "Dr Lerato Phiri"


def invite_interpreter(browser: Any, server: Server) -> None:
    """The assigned specialist uses the consult page's form (no script needed)."""
    context = browser.new_context()
    page: Page = context.new_page()
    log_in(page, server, "specialist@demo.telemed.org.ls", "specialist-demo-2026")
    page.goto(f"{server.url}/consults/1")
    option = page.locator("#guest-user option", has_text=INTERPRETER_NAME).first
    page.select_option("#guest-user", value=option.get_attribute("value"))
    page.check("#invite-form input[value=interpreter]")
    page.click("#invite-form button[type=submit]")
    expect(page.locator(".call-guests")).to_contain_text(INTERPRETER_NAME)
    context.close()


def interpreter_ticket(server: Server) -> dict[str, Any]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        email, password = INTERPRETER
        login = client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert login.status_code == 200, login.text
        csrf = login.json()["csrf_token"]
        # The invitation shows on their home page.
        assert 'href="/consults/1/call"' in client.get("/").text
        ticket = client.post("/api/v1/consults/1/call", headers={"X-CSRF-Token": csrf})
        assert ticket.status_code == 200, ticket.text
        return dict(ticket.json())


def two_peers_connected(page: Page) -> None:
    wait_until(
        page,
        """() => { const p = window.telemedCall.peers();
                   return p.length === 2 && p.every(x => x.connection === 'connected'
                                                       && x.channel === 'open'); }""",
        timeout_ms=TIMEOUT_MS * 2,
        every_ms=500,
    )


def test_three_in_a_call(browser: Any, server: Server, tmp_path: Path) -> None:
    invite_interpreter(browser, server)
    clinician = open_call(browser, server, "clinician@demo.telemed.org.ls", "clinician-demo-2026")
    specialist = open_call(
        browser, server, "specialist@demo.telemed.org.ls", "specialist-demo-2026"
    )
    ticket = interpreter_ticket(server)
    assert (ticket["role"], ticket["capacity"]) == ("interpreter", 3)
    ticket_file = tmp_path / "ticket.json"
    ticket_file.write_text(json.dumps(ticket))
    example = subprocess.Popen(
        [
            sys.executable,
            str(EXAMPLE),
            str(ticket_file),
            "--say",
            "Ke mofetoleli",
            "--seconds",
            "120",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # The interpreter came last: polite toward both, it waits for their offers.
        events: list[dict[str, Any]] = []
        wanted_media = 2  # at least audio from each browser
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            events.append(json.loads(read_line(example, 60, "the interpreter's events")))
            connected = {e["participant"] for e in events if e["event"] == "connected"}
            media = {(e["participant"], e["kind"]) for e in events if e["event"] == "media"}
            if len(connected) == 2 and len({p for p, _k in media}) == wanted_media:
                break
        peers = [e for e in events if e["event"] == "peer"]
        assert len(peers) == 2, events
        assert all(p["polite"] for p in peers), events
        assert len(connected) == 2, events
        assert {p for p, _k in media} == connected, events

        for page, other in ((clinician, "specialist"), (specialist, "clinician")):
            two_peers_connected(page)
            roles = sorted(p["role"] for p in page.evaluate("window.telemedCall.peers()"))
            assert roles == sorted([other, "interpreter"])
            # A tile per remote peer, captioned with the role.
            expect(page.locator("#remote-videos figure")).to_have_count(2, timeout=TIMEOUT_MS)
            expect(page.locator("#remote-videos figure[data-role=interpreter]")).to_contain_text(
                "interpreter"
            )
            expect(page.locator("#presence")).to_contain_text("interpreter")
            # The interpreter's chat line came over the data channel.
            expect(page.locator("#chat-log")).to_contain_text("Ke mofetoleli", timeout=TIMEOUT_MS)

        # Low and audio-only modes go to every connection: the others see it.
        clinician.check("input[value=audio-only]")
        expect(specialist.locator("#presence")).to_contain_text("audio only", timeout=TIMEOUT_MS)

        # Chat from each browser reaches the interpreter over its own data channel.
        clinician.evaluate("window.telemedCall.sendChat('From the clinic')")
        specialist.evaluate("window.telemedCall.sendChat('From the specialist')")
        said: set[str] = set()
        deadline = time.monotonic() + 60
        while len(said) < 2 and time.monotonic() < deadline:
            event = json.loads(read_line(example, 60, "the browsers' chat"))
            if event["event"] == "message":
                said.add(event["data"]["text"])
        assert said == {"From the clinic", "From the specialist"}

        example.send_signal(signal.SIGINT)  # the example sends leave and exits
        assert example.wait(15) == 0
        for page in (clinician, specialist):
            expect(page.locator("#remote-videos figure")).to_have_count(1, timeout=TIMEOUT_MS)
    finally:
        if example.poll() is None:
            example.kill()
            example.wait()
