"""The consult page's upload script resumes after a dropped connection (real Chromium)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import Server
from tests.browser.test_clinician_journey import log_in

pytestmark = pytest.mark.browser


def test_a_dropped_chunk_is_resumed_from_the_servers_offset(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 2800 + b"\n%%EOF\n"  # about 700 KB: 3 chunks
    path = tmp_path / "culture-result.pdf"
    path.write_bytes(pdf)
    context = browser.new_context()
    page: Page = context.new_page()
    log_in(page, server, "clinician@demo.telemed.org.ls", "clinician-demo-2026")
    page.locator("tbody tr", has_text="MOT-2026-0141").locator("a").first.click()
    expect(page.locator("#attachments")).to_be_visible()

    seen: list[str] = []
    dropped: list[str] = []

    def drop_the_second_chunk(route: Route) -> None:
        request = route.request
        seen.append(f"{request.method} {request.headers.get('upload-offset', '')}")
        patches = sum(s.startswith("PATCH") for s in seen)
        if request.method == "PATCH" and not dropped and patches == 2:
            dropped.append(request.headers["upload-offset"])
            route.abort("connectionreset")  # the 2G link drops mid-upload
            return
        route.continue_()

    page.route("**/api/v1/uploads/*", drop_the_second_chunk)
    page.set_input_files("#attachment-file", str(path))
    page.click("form[data-upload] button[type=submit]")
    page.wait_for_url("**?attached=*", timeout=30_000)
    expect(page.locator("#attachments")).to_contain_text("culture-result.pdf")

    assert dropped == ["262144"]
    # After the drop the script asked where the server was, then carried on from there.
    after = seen[seen.index("PATCH 262144") + 1 :]
    assert after[0].startswith("HEAD")
    assert "PATCH 262144" in after
    assert "PATCH 524288" in after
    link = page.locator("#attachments a", has_text="culture-result.pdf")
    cookies = {c["name"]: c["value"] for c in context.cookies()}
    got = httpx.get(f"{server.url}{link.get_attribute('href')}", cookies=cookies)
    assert got.status_code == 200
    assert hashlib.sha256(got.content).hexdigest() == hashlib.sha256(pdf).hexdigest()
    context.close()
