"""Light photos: a phone-sized photo is scaled in the browser (real Chromium) before the
resumable upload sends it, the page says how many bytes will be sent, and "send full
quality" keeps the original's size; on the consult page and with a new request. An ordinary
photo goes at 1280 px; one of pure noise (detail everywhere) steps down photo.js's ladder to
its floor, 1024 px, and is sent all the same."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, Request, expect

from tests.browser.conftest import Server
from tests.browser.test_clinician_journey import fill_request, log_in

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 3200, 2400


def noise_photo(path: Path) -> int:
    """A JPEG as large as a phone's (noise compresses badly: about 5.8 MB), its size."""
    pixels = np.random.default_rng(7).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=85)
    path.write_bytes(out.getvalue())
    return len(out.getvalue())


class Wire:
    """The bytes of the files the page announces to the resumable upload (the server takes
    exactly that many in chunks, and stores nothing else)."""

    def __init__(self, page: Page) -> None:
        self.sent = 0
        self.keys: list[str | None] = []
        page.on("request", self.seen)

    def seen(self, request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/uploads"):
            self.sent += int(json.loads(request.post_data or "{}")["length"])
            self.keys.append(request.headers.get("idempotency-key"))


def attachments_of(page: Page, consult_id: str) -> list[dict[str, Any]]:
    got = page.request.get(f"/api/v1/consults/{consult_id}/attachments")
    assert got.status == 200, got.text()
    listed: list[dict[str, Any]] = got.json()
    return listed


def smooth_photo(path: Path) -> int:
    """A JPEG of a phone's size with what most clinical photos have: smooth shading and a few
    sharp edges, a little grain (1.6 MB at 3200 x 2400, quality 95 as phones save), its size."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    skin = np.stack([200 - y / 40, 150 - x / 60, 120 + (x + y) / 100], axis=-1)
    spots = ((x // 400 + y // 300) % 5 == 0) & (np.hypot(x % 400 - 200, y % 300 - 150) < 60)
    skin[spots] = (140, 60, 60)
    grain = np.random.default_rng(3).normal(0, 3, skin.shape)
    pixels = np.clip(skin + grain, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=95)
    path.write_bytes(out.getvalue())
    return len(out.getvalue())


def consult_id_of(page: Page) -> str:
    found = re.search(r"/consults/(\d+)", page.url)
    assert found, page.url
    return found.group(1)


def test_a_photo_is_scaled_before_upload_unless_full_quality(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    photo = tmp_path / "rash.jpg"
    original = noise_photo(photo)
    assert original > 5_000_000
    context = browser.new_context(base_url=server.url)
    page: Page = context.new_page()
    log_in(page, server, "clinician@demo.telemed.org.ls", "clinician-demo-2026")
    page.locator("tbody tr", has_text="MOT-2026-0141").locator("a").first.click()
    consult_id = consult_id_of(page)
    wire = Wire(page)

    page.set_input_files("#attachment-file", str(photo))
    shown = page.locator("form[data-upload] [data-photo-bytes]")
    expect(shown).to_have_attribute("data-bytes", re.compile(r"\d+"), timeout=30_000)
    to_send = int(shown.get_attribute("data-bytes") or 0)
    expect(shown).to_contain_text("5.5 MB taken")
    assert to_send < original * 0.4, (to_send, original)
    page.click("form[data-upload] button[type=submit]")
    page.wait_for_url("**?attached=*", timeout=60_000)
    assert wire.sent == to_send  # what the page said is what went over the link
    scaled = attachments_of(page, consult_id)[-1]
    # Noise never fits photo.js's 160 KB budget: the ladder's floor, 1024 px at 0.6.
    assert (scaled["width"], scaled["height"]) == (1024, 768)

    wire.sent = 0
    page.set_input_files("#attachment-file", str(photo))
    page.check("form[data-upload] [data-full-quality]")
    expect(shown).to_have_attribute("data-bytes", str(original), timeout=30_000)
    expect(shown).to_contain_text("5.5 MB to send")
    page.click("form[data-upload] button[type=submit]")
    page.wait_for_url(re.compile(rf"attached=(?!{scaled['id']}\b)"), timeout=120_000)
    assert wire.sent == original
    # Each new upload was announced with a key of its own (a lost answer is not a 2nd upload).
    assert len(wire.keys) == 2
    assert all(key and re.fullmatch(r"[0-9a-f]{32}", key) for key in wire.keys)
    assert wire.keys[0] != wire.keys[1]
    full = attachments_of(page, consult_id)[-1]
    assert full["id"] != scaled["id"]
    assert (full["width"], full["height"]) == (WIDTH, HEIGHT)
    assert full["size_bytes"] > scaled["size_bytes"] * 2
    context.close()


def test_photos_chosen_with_a_request_are_scaled_and_sent_to_its_consult(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    photo = tmp_path / "wound.jpg"
    smooth_photo(photo)
    context = browser.new_context(base_url=server.url)
    page: Page = context.new_page()
    log_in(page, server, "clinician@demo.telemed.org.ls", "clinician-demo-2026")
    fill_request(
        page,
        patient_ref="MOT-PHOTOS-1",
        age_years="31",
        sex="male",
        specialty="dermatology",
        urgency="routine",
        mode="asynchronous",
        language="st",
        question="Non-healing ulcer of the shin for six weeks: what next?",
    )
    block = page.locator("[data-request-photo-block]")
    expect(block).to_be_visible()  # shown by the script only
    page.set_input_files("#request-photos", str(photo))
    expect(block.locator("[data-photo-bytes]")).to_contain_text("to send", timeout=30_000)
    page.click("button[value=submit]")
    page.wait_for_url(re.compile(r"/consults/\d+$"), timeout=60_000)
    expect(page.locator("h1")).to_contain_text("dermatology")
    expect(page.locator("#attachments")).to_contain_text("wound.jpg")
    listed = attachments_of(page, consult_id_of(page))
    assert [(a["filename"], a["width"], a["height"]) for a in listed] == [("wound.jpg", 1280, 960)]
    context.close()
