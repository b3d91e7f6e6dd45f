"""The demo coordinator opens the uptake dashboard in headless Chromium, filters it by a
district, sees a chart, follows a number to the consults behind it and downloads the CSV."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Server
from tests.browser.test_clinician_journey import log_in

pytestmark = pytest.mark.browser


def test_the_coordinator_reads_uptake_by_district(browser: Any, server: Server) -> None:
    page: Page = browser.new_context(
        accept_downloads=True, viewport={"width": 360, "height": 740}
    ).new_page()
    log_in(page, server, "coordinator@demo.telemed.org.ls", "coordinator-demo-2026")
    page.click("header >> text=Uptake")
    expect(page.locator("h1")).to_have_text("Uptake")

    page.select_option("select[name=district]", "BE")  # Berea: history in both facilities
    page.click("form.filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"district=BE"))
    chart = page.locator("svg#requests_chart")
    expect(chart).to_be_visible()
    assert "Requests" in (chart.locator("title").first.text_content() or "")
    # The page is usable at 360 px: nothing pushes it wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    total = page.locator("#t-volume tbody tr").last.locator("td").nth(1)
    requests = int((total.text_content() or "0").replace(",", ""))
    assert requests > 0
    total.locator("a").click()
    expect(page.locator("h1")).to_have_text("Requests")
    rows = page.locator("#consults tbody tr")
    expect(rows.first).to_be_visible()
    assert rows.count() == min(requests, 50)

    with page.expect_download() as download_info:
        page.click("text=CSV")
    content = download_info.value.path().read_text(encoding="utf-8-sig")
    table = list(csv.reader(io.StringIO(content)))
    assert table[0][0] == "consult"
    assert len(table) - 1 == requests
    assert {row[2] for row in table[1:]} == {"Berea"}

    # The same coordinator exports for DHIS2 and as FHIR from the pages.
    page.click("header >> text=Exports")
    expect(page.locator("h1")).to_have_text("Exports")
    first_month = page.locator("#dhis2 ~ .table-wrap tbody tr").first
    with page.expect_download() as download_info:
        first_month.locator("text=JSON").click()
    document = json.loads(download_info.value.path().read_text(encoding="utf-8"))
    assert document["dataValues"], "the demo's last month has counts"
    with page.expect_download() as download_info:
        page.click("#fhir ~ form button[type=submit]")
    with zipfile.ZipFile(download_info.value.path()) as archive:
        assert "ServiceRequest.ndjson" in archive.namelist()
