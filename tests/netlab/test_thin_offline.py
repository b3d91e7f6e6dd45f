"""Offline-first intake over the 2G lab (lab.py): a consult request typed and "sent" while the
clinic's link is down (``ip link set … down``) is queued on the device, and delivered
exactly once when the link comes back; the database holds one consult, whatever copies of
the request the page (or TCP, finishing a send the page gave up on) got to the server.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Server
from tests.browser.test_clinician_journey import fill_request, log_in
from tests.netlab.conftest import record, settled
from tests.netlab.lab import Lab
from tests.netlab.test_thin_link import CLINICIAN, SLOW_MS, loaded

pytestmark = [pytest.mark.browser, pytest.mark.netlab]

PATIENT = "MOT-LAB-OFFLINE-1"


def consults_of(server: Server, patient_ref: str) -> int:
    database = server.log.parent / "telemed.sqlite3"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        found = connection.execute(
            "SELECT count(*) FROM consults c JOIN cases k ON k.id = c.case_id "
            "WHERE k.patient_ref = ?",
            (patient_ref,),
        ).fetchone()
    return int(found[0])


def queued(page: Page) -> int:
    """The queue's length, read with the page's own module: the versioned URL the page
    imported (the service worker keeps that one, and the link is down)."""
    count: int = page.evaluate(
        """() => {
          const url = performance.getEntriesByType("resource").map((e) => e.name)
            .find((name) => name.includes("/static/offline/queue.js"));
          return import(url).then((q) => q.all()).then((items) => items.length);
        }"""
    )
    return count


@pytest.mark.timeout(600)
def test_a_request_typed_while_the_link_is_down_is_delivered_exactly_once(
    the_lab: Lab, lab_server: Server, clinic_browser: Any
) -> None:
    the_lab.shape(128)
    context = clinic_browser.new_context()
    page: Page = context.new_page()
    posts: list[str] = []
    page.on(
        "request",
        lambda r: (
            posts.append(r.headers.get("idempotency-key", ""))
            if r.method == "POST" and r.url.endswith("/api/v1/consults")
            else None
        ),
    )
    log_in(page, lab_server, *CLINICIAN)
    expect(page.locator("h1")).to_have_text("Consults of your facility", timeout=SLOW_MS)
    loaded(page)
    fill_request(page)  # opens the request page while the link is up
    loaded(page)
    settled(the_lab)

    with the_lab.link_down():
        page.fill("#patient_ref", PATIENT)
        page.fill("#age_years", "61")
        page.select_option("#sex", "male")
        page.select_option("#specialty", "cardiology")
        page.fill("#question", "Breathless on exertion, ankle swelling: typed with the link down.")
        page.check("#consent_sharing")
        page.click("button[value=submit]")
        status = page.locator("[data-offline-status]")
        expect(status).to_contain_text("queued on this device", timeout=120_000)
        assert queued(page) == 1
        assert consults_of(lab_server, PATIENT) == 0

    before = the_lab.wire()
    back = time.monotonic()
    deadline = back + 240
    while queued(page):  # sent on `online`, or by the page's retry every 30 s
        assert time.monotonic() < deadline, f"still queued; POSTs seen: {posts}"
        page.wait_for_timeout(500)
    delivered_s = time.monotonic() - back
    wire = settled(the_lab) - before
    page.evaluate("dispatchEvent(new Event('online'))")  # a late second try changes nothing
    page.wait_for_timeout(2000)

    assert consults_of(lab_server, PATIENT) == 1
    assert len(set(posts)) == 1, posts  # every copy carried the one key made at "send"
    record(
        f"request typed while the link was down, sent when it came back | 128 kbit/s | {wire}"
        f" | {delivered_s:.0f} s after the link returned; {len(posts)} POST(s) with one key,"
        " 1 consult stored"
    )
    context.close()
