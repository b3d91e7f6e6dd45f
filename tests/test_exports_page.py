"""The coordinator's exports page: a month's DHIS2 document downloaded or sent, and the FHIR
bulk export as a zip, with the same checks as the command line (tests/test_dhis2*.py,
tests/test_fhir.py) and the coordinator as the audit's actor."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from telemed.accounts.models import Role
from telemed.app import create_app
from telemed.audit.models import AuditAction, AuditEntry
from telemed.interop.dhis2.jobs import monthly_push
from telemed.interop.dhis2.mapping import load
from telemed.interop.dhis2.payload import Period
from telemed.settings import Settings
from telemed.uow import Units
from tests.conftest import LoginFn
from tests.dhis2_helpers import PASSWORD, USERNAME, check_adx, check_json, fake_dhis2
from tests.dhis2_month import EXAMPLE, Month, expect_month, make_month, pushes, rows
from tests.fhir_helpers import validate
from tests.helpers import ApiClient, ManualClock, Users

NOVEMBER = Period(date(2026, 11, 1))
DECEMBER_5 = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


@pytest.fixture
def november(
    db: Session, settings: Settings, users: Users, login: LoginFn, clock: ManualClock
) -> Month:
    month = make_month(NOVEMBER.first, db, settings, users, login, clock)
    clock.set(DECEMBER_5)
    return month


def _configured(settings: Settings, url: str | None = None) -> Settings:
    dhis2 = {"dhis2_url": url, "dhis2_username": USERNAME, "dhis2_password": PASSWORD}
    return settings.model_copy(
        update={"dhis2_mapping": EXAMPLE, "dhis2_timeout_seconds": 2.0, **(dhis2 if url else {})}
    )


@pytest.fixture
def as_coordinator(settings: Settings, engine: Engine, users: Users, clock: ManualClock) -> object:
    """``as_coordinator(settings)``: a coordinator's client on an app with those settings."""
    made: list[TestClient] = []
    coordinator = users.make(Role.coordinator)

    def make(with_settings: Settings, role: Role | None = None) -> ApiClient:
        client = TestClient(create_app(with_settings, engine, clock), base_url="http://testserver")
        made.append(client)
        return ApiClient(client, users.make(role) if role else coordinator)

    yield make
    for client in made:
        client.close()


def _audited(db: Session, object_type: str) -> list[AuditEntry]:
    db.rollback()
    return list(db.exec(select(AuditEntry).where(AuditEntry.object_type == object_type)))


def test_a_month_for_dhis2_is_downloaded_from_the_page(
    db: Session, settings: Settings, november: Month, as_coordinator
) -> None:
    coordinator = as_coordinator(_configured(settings))
    page = coordinator.get("/coordinator/exports")
    assert page.status_code == 200
    assert 'href="/coordinator/exports/dhis2?period=2026-11&amp;format=json"' in page.text
    assert "Send to DHIS2" not in page.text  # no server set: download only

    as_json = coordinator.get("/coordinator/exports/dhis2?period=2026-11&format=json")
    assert as_json.status_code == 200
    assert as_json.headers["content-type"].startswith("application/json")
    assert 'filename="dhis2-2026-11.json"' in as_json.headers["content-disposition"]
    problems, values = check_json(as_json.content)
    assert problems == []
    expect_month(load(EXAMPLE), values)
    as_adx = coordinator.get("/coordinator/exports/dhis2?period=2026-11&format=adx")
    problems, from_adx = check_adx(as_adx.content)
    assert problems == []
    assert rows(from_adx) == rows(values)
    audited = _audited(db, "dhis2_export")
    assert [(a.action, a.actor_id) for a in audited] == [
        (AuditAction.download, coordinator.user.id)
    ] * 2
    assert all(a.detail.endswith("to the exports page") for a in audited)


def test_a_bad_dhis2_download_is_refused_naming_the_field(
    settings: Settings, clock: ManualClock, as_coordinator
) -> None:
    clock.set(DECEMBER_5)
    coordinator = as_coordinator(_configured(settings))
    for query, words in [
        ("period=2026-13", "period must be a month written YYYY-MM"),
        ("period=2026-12", "has not ended yet"),
        ("", "period: which month"),
        ("period=2026-11&format=csv", "format must be"),
    ]:
        response = coordinator.get(f"/coordinator/exports/dhis2?{query}")
        assert response.status_code == 422, query
        assert words in response.text, query


def test_without_a_mapping_the_page_says_so_and_nothing_is_exported(
    settings: Settings, clock: ManualClock, as_coordinator
) -> None:
    clock.set(DECEMBER_5)
    coordinator = as_coordinator(settings)
    assert "No DHIS2 mapping file is set" in coordinator.get("/coordinator/exports").text
    refused = coordinator.get("/coordinator/exports/dhis2?period=2026-11")
    assert refused.status_code == 409
    assert "TELEMED_DHIS2_MAPPING" in refused.text


def test_exports_are_for_coordinators_and_a_refusal_is_audited(
    db: Session, settings: Settings, clock: ManualClock, as_coordinator
) -> None:
    clock.set(DECEMBER_5)
    refused_by = []
    for role in (Role.clinician, Role.specialist, Role.admin):
        other = as_coordinator(_configured(settings), role)
        refused_by.append(other.user.id)
        for url in (
            "/coordinator/exports",
            "/coordinator/exports/dhis2?period=2026-11",
            "/coordinator/exports/fhir?since=2026-11-01",
        ):
            assert other.get(url).status_code == 403, (role, url)
        assert other.post("/coordinator/exports/dhis2/push").status_code == 403, role
    denied = [a for a in _audited(db, "fhir_export") if a.action == AuditAction.denied]
    assert [a.actor_id for a in denied] == refused_by


def test_a_push_asked_for_on_the_page_is_sent_once_by_the_job(
    db: Session, settings: Settings, november: Month, units: Units, as_coordinator
) -> None:
    with fake_dhis2() as dhis2:
        configured = _configured(settings, dhis2.url)
        coordinator = as_coordinator(configured)
        assert "Send to DHIS2" in coordinator.get("/coordinator/exports").text
        for _ in range(2):  # asked twice before the job runs: one request
            asked = coordinator.client.post(
                "/coordinator/exports/dhis2/push",
                data={"period": "2026-11"},
                headers={"X-CSRF-Token": coordinator.csrf},
                follow_redirects=False,
            )
            assert asked.status_code == 303
        [row] = pushes(db)
        assert (row.requested_by_id, row.attempts) == (coordinator.user.id, 0)
        assert "requested" in coordinator.get("/coordinator/exports").text
        assert dhis2.received == []  # the page sends nothing itself

        done = monthly_push(units, configured, DECEMBER_5 + timedelta(minutes=1))
        assert done is not None
        assert done.startswith("2026-11: SUCCESS")
        assert len(dhis2.received) == 1  # and last month's own push finds it sent
        expect_month(load(EXAMPLE), dhis2.received[0].values)
        assert monthly_push(units, configured, DECEMBER_5 + timedelta(minutes=2)) is None
        db.expire_all()
        [row] = pushes(db)
        assert (row.requested_at, row.last_status, row.attempts) == (None, "SUCCESS", 1)
        assert "SUCCESS" in coordinator.get("/coordinator/exports").text

        dhis2.mode = "500"  # a correction sent again, refused by DHIS2
        coordinator.client.post(
            "/coordinator/exports/dhis2/push",
            data={"period": "2026-11"},
            headers={"X-CSRF-Token": coordinator.csrf},
        )
        failed = monthly_push(units, configured, DECEMBER_5 + timedelta(minutes=3))
        assert failed is not None
        assert failed.startswith("2026-11: failed")
        db.expire_all()
        [row] = pushes(db)
        assert (row.requested_at, row.last_status, row.attempts) == (None, "failed", 2)
        assert row.pushed_at is not None  # the first push stands
        assert "failed" in coordinator.get("/coordinator/exports").text
    requested = [a for a in _audited(db, "dhis2_push") if a.action == AuditAction.update]
    assert [a.actor_id for a in requested] == [coordinator.user.id] * 2


def test_a_push_needs_a_dhis2_server(
    settings: Settings, clock: ManualClock, db: Session, as_coordinator
) -> None:
    clock.set(DECEMBER_5)
    coordinator = as_coordinator(_configured(settings))
    refused = coordinator.client.post(
        "/coordinator/exports/dhis2/push",
        data={"period": "2026-11"},
        headers={"X-CSRF-Token": coordinator.csrf, "accept": "application/json"},
    )
    assert refused.status_code == 409
    assert "TELEMED_DHIS2_URL" in refused.text
    assert pushes(db) == []


def test_the_fhir_bulk_export_is_downloaded_as_a_zip(
    db: Session, settings: Settings, november: Month, as_coordinator, tmp_path: Path
) -> None:
    coordinator = as_coordinator(settings)
    response = coordinator.get("/coordinator/exports/fhir?since=2026-11-01")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert 'filename="fhir-since-2026-11-01.zip"' in response.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
        assert {o["url"] for o in manifest["output"]} | {"manifest.json"} == names
        requests = [json.loads(line) for line in archive.read("ServiceRequest.ndjson").splitlines()]
        for name in names - {"manifest.json"}:
            for line in archive.read(name).splitlines():
                validate(json.loads(line))
    consults = {november.accepted, november.cancelled, november.emergency}
    assert {int(r["id"]) for r in requests} == consults
    exported = [a for a in _audited(db, "consult") if a.action == AuditAction.export]
    assert {(a.consult_id, a.actor_id) for a in exported} == {
        (c, coordinator.user.id) for c in consults
    }
    assert list(tmp_path.glob("**/telemed-fhir-*")) == []


def test_a_bad_fhir_date_is_refused_naming_the_field(
    settings: Settings, clock: ManualClock, as_coordinator
) -> None:
    clock.set(DECEMBER_5)
    coordinator = as_coordinator(settings)
    for since, words in [("yesterday", "is not a date"), ("2027-01-01", "is in the future")]:
        response = coordinator.get(f"/coordinator/exports/fhir?since={since}")
        assert response.status_code == 422, since
        assert words in response.text, since
