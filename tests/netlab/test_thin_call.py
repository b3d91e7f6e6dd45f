"""An audio-only call over the 2G lab's link shaped to 64 kbit/s (lab.py): the clinician's
Chromium behind the link, the specialist's beside the server, so the media crosses it both
ways. The send bitrate is getStats' (window.telemedCall.stats()), the wire's the veth's.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Server
from tests.browser.test_clinician_journey import log_in
from tests.netlab.conftest import record
from tests.netlab.lab import Lab
from tests.netlab.test_thin_link import CLINICIAN, SLOW_MS, SPECIALIST

pytestmark = [pytest.mark.browser, pytest.mark.netlab]


CALL_GOAL_KBPS = 40  # audio-only, sent per side (issue 12)
HOLD_S = 30


def join_call(browser: Any, server: Server, who: tuple[str, str]) -> Page:
    """Log in, open demo consult 1's call and choose "Audio only" as a user would."""
    page: Page = browser.new_context().new_page()
    page.set_default_timeout(SLOW_MS)
    log_in(page, server, *who)
    page.locator("tbody tr", has_text="MOT-2026-0141").locator("a").first.click()
    page.click("#join-call")
    expect(page.locator("h1")).to_contain_text("Call", timeout=SLOW_MS)
    deadline = time.monotonic() + SLOW_MS / 1000
    # Polled from here: Playwright's own polling evaluates strings, which the page's CSP refuses.
    while not page.evaluate("window.telemedCall !== undefined"):
        assert time.monotonic() < deadline, "the call page's modules did not run"
        time.sleep(0.5)
    page.check("input[value=audio-only]")
    return page


def call_stats(page: Page) -> dict[str, Any]:
    value: dict[str, Any] = page.evaluate("window.telemedCall.stats()")
    return value


def audio_flowing(stats: dict[str, Any]) -> bool:
    return bool(
        stats["connection"] == "connected"
        and stats["mode"] == "audio-only"
        and stats["bytesReceived"] > 0
    )


def kbps(octets: float, seconds: float) -> float:
    return octets * 8 / 1000 / seconds


@pytest.mark.timeout(420)
def test_an_audio_only_call_connects_on_64_kbit_and_holds_30_s(
    the_lab: Lab, lab_server: Server, clinic_browser: Any, hospital_browser: Any
) -> None:
    the_lab.shape(64)
    # The clinician behind the link, the specialist beside the server: media crosses the link.
    clinician = join_call(clinic_browser, lab_server, CLINICIAN)
    specialist = join_call(hospital_browser, lab_server, SPECIALIST)
    sides = {"clinician": clinician, "specialist": specialist}
    deadline = time.monotonic() + SLOW_MS / 1000
    for name, page in sides.items():
        while not audio_flowing(call_stats(page)):
            assert time.monotonic() < deadline, f"{name}: no call: {call_stats(page)}"
            time.sleep(0.5)
    expect(clinician.locator("#presence")).to_contain_text("· audio only", timeout=SLOW_MS)

    first = {name: call_stats(page) for name, page in sides.items()}
    wire_before = the_lab.wire()
    started = time.monotonic()
    for _ in range(HOLD_S // 5):  # connected all along, not just at both ends
        time.sleep(5)
        for name, page in sides.items():
            assert call_stats(page)["connection"] == "connected", f"{name} lost the call"
    held = time.monotonic() - started
    wire = the_lab.wire() - wire_before
    last = {name: call_stats(page) for name, page in sides.items()}

    def sent_kbps(name: str, *keys: str) -> float:
        return kbps(sum(last[name][k] - first[name][k] for k in keys), held)

    payload = {n: sent_kbps(n, "bytesSent") for n in sides}
    sent = {n: sent_kbps(n, "bytesSent", "headerBytesSent") for n in sides}  # RTP packets
    got = {n: kbps(last[n]["bytesReceived"] - first[n]["bytesReceived"], held) for n in sides}
    rtt = last["clinician"]["rttMs"]
    record(
        f"audio-only call, held {held:.0f} s, connected throughout | 64 kbit/s | getStats sent"
        f" per side: clinician {sent['clinician']:.1f}, specialist {sent['specialist']:.1f}"
        f" kbit/s RTP ({payload['clinician']:.1f} / {payload['specialist']:.1f} Opus payload);"
        f" on the wire {kbps(wire.up, held):.1f} up, {kbps(wire.down, held):.1f} down kbit/s"
        f" with SRTP, RTCP, UDP/IP/Ethernet | round trip {rtt or 0:.0f} ms"
    )
    for name in sides:
        assert got[name] >= 6, f"{name} heard almost nothing: {got[name]:.1f} kbit/s"
        assert last[name]["framesDecoded"] == first[name]["framesDecoded"], "video was sent"
        assert sent[name] <= CALL_GOAL_KBPS, f"{name} sent {sent[name]:.1f} kbit/s"
    for page in sides.values():
        page.click("#leave")
        page.context.close()
