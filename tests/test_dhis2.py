"""DHIS2 export and push (telemed.interop.dhis2): the mapping file and its validation, the
documented JSON and ADX shapes, the push against a stand-in DHIS2 over real HTTP (success,
conflicts, a 500, a page that is not JSON, no answer) and the monthly job's idempotency
(the commands: test_dhis2_commands.py). The values come from consults made through the API
in November 2026 on the application's clock (``tests.dhis2_month``)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from telemed.audit.models import AuditEntry
from telemed.demo.data import FACILITIES
from telemed.errors import ValidationFailed
from telemed.interop.dhis2.client import Dhis2Error, Dhis2Server
from telemed.interop.dhis2.codes import exportable
from telemed.interop.dhis2.jobs import monthly_push
from telemed.interop.dhis2.mapping import Mapping, MappingError, load, parse
from telemed.interop.dhis2.payload import Format, Period
from telemed.interop.dhis2.service import export_file, load_mapping, month_payload, push_month
from telemed.settings import Settings
from telemed.uow import Units
from tests.conftest import LoginFn
from tests.dhis2_helpers import (
    ADX,
    PASSWORD,
    TOKEN,
    USERNAME,
    check_adx,
    check_json,
    closed_port_url,
    fake_dhis2,
)
from tests.dhis2_month import (
    EXAMPLE,
    Month,
    edited,
    expect_month,
    line_of_text,
    make_month,
    mapping_file,
    pushes,
    rows,
)
from tests.helpers import ManualClock, Users

NOVEMBER = Period(date(2026, 11, 1))
DECEMBER_5 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def example() -> Mapping:
    return load(EXAMPLE)


# --- the mapping file ---------------------------------------------------------------------


def test_the_example_maps_every_count_the_export_produces_and_the_demo_facilities(
    example: Mapping,
) -> None:
    wanted = {
        (key, option or None)
        for key, options in exportable().items()
        for option in (options or ("",))
    }
    assert set(example.targets) == wanted
    assert ("outcomes", "died") in wanted  # the rarer outcomes are counted too
    assert ("network_tests", "audio-only") in wanted
    assert "active_specialists" not in {key for key, _ in wanted}  # not per facility
    assert set(example.org_units) == {code for code, *_ in FACILITIES}


@pytest.mark.parametrize(
    ("old", "new", "named", "at"),
    [
        ("offers_made = {", "offers_mad = {", "unknown indicator 'offers_mad'", "offers_mad"),
        (
            "\nurgent = ",
            "\nurgnet = ",
            "unknown category 'urgnet' for indicator 'requests'",
            "urgnet",
        ),
        (
            '\nroutine = "',
            '\n# routine = "',
            "no category option combo for 'routine'",
            "[indicators.requests]",
        ),
        (
            'QMMH = "MNJAYKJ1UXX"',
            'QMMH = "1NJAYKJ1UXX"',
            "facility 'QMMH' must be a DHIS2 UID",
            "QMMH =",
        ),
        (
            'cancelled = { data_element = "X8bbGEuRtCu"',
            'cancelled = { data_element = "X8bb"',
            "cancelled.data_element must be a DHIS2 UID",
            "cancelled =",
        ),
        (
            'escalated = { data_element = "a9gy4ed1wPw"',
            'escalated = { data_element = "X8bbGEuRtCu"',
            "escalated and cancelled go to the same data element",
            "cancelled =",
        ),
        (
            'SCOTT = "FWXLCpaNfhs"',
            'SCOTT = "MNJAYKJ1UXX"',
            "'QMMH' and 'SCOTT' have the same org unit",
            "SCOTT =",
        ),
        ("data_set = ", "dataset = ", "unknown setting 'dataset'", "dataset ="),
    ],
)
def test_a_mistake_in_the_mapping_is_named_with_itsline_of_text(
    old: str, new: str, named: str, at: str
) -> None:
    text = edited(old, new)
    with pytest.raises(MappingError) as caught:
        parse(text, "mapping.toml")
    message = caught.value.message
    assert named in message
    assert message.startswith(f"mapping.toml:{line_of_text(text, at)}: "), message


def test_a_mapping_file_that_is_not_toml_or_missing_is_named(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match=r"broken\.toml: not valid TOML: .*at line 2"):
        parse('data_set = "huG8GP38g4o"\norg_units = ?', "broken.toml")
    with pytest.raises(MappingError, match=r"mapping file .*nowhere\.toml does not exist"):
        load(tmp_path / "nowhere.toml")


# --- the period ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("2026-13", "YYYY-MM"),
        ("11/2026", "YYYY-MM"),
        ("2026-1", "YYYY-MM"),
        ("2026-12", "has not ended"),  # the current month, still counting
        ("2027-01", "has not ended"),  # the future
    ],
)
def test_a_bad_or_unfinished_period_is_refused(text: str, problem: str) -> None:
    with pytest.raises(ValidationFailed, match=problem) as caught:
        Period.parse(text, DECEMBER_5.date())
    assert caught.value.field == "period"


def test_periods_as_dhis2_and_adx_write_them() -> None:
    period = Period.parse("2026-11", DECEMBER_5.date())
    assert (period.dhis2, period.adx, str(period)) == ("202611", "2026-11-01/P1M", "2026-11")
    assert Period.before(date(2027, 1, 2)) == Period(date(2026, 12, 1))


# --- a month of real consults ---------------------------------------------------------------


@pytest.fixture
def november(
    db: Session, settings: Settings, users: Users, login: LoginFn, clock: ManualClock
) -> Month:
    return make_month(NOVEMBER.first, db, settings, users, login, clock)


def test_json_has_the_documented_shape(db: Session, november: Month, example: Mapping) -> None:
    payload = month_payload(db, example, NOVEMBER, Format.json, DECEMBER_5)
    assert payload.content_type == "application/json"
    document = json.loads(payload.body)
    assert set(document) == {"dataSet", "period", "dataValues"}
    assert (document["dataSet"], document["period"]) == (example.data_set, "202611")
    for value in document["dataValues"]:
        assert set(value) == {"dataElement", "period", "orgUnit", "categoryOptionCombo", "value"}
        assert isinstance(value["value"], str)
    problems, values = check_json(payload.body)
    assert problems == []
    assert payload.count == len(values) > 8
    expect_month(example, values)


def test_adx_has_the_documented_shape(db: Session, november: Month, example: Mapping) -> None:
    payload = month_payload(db, example, NOVEMBER, Format.adx, DECEMBER_5)
    assert payload.content_type == "application/adx+xml"
    assert payload.body.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    root = ET.fromstring(payload.body)  # noqa: S314 - our own document
    assert root.tag == f"{ADX}adx"
    assert root.get("exported") == "2026-12-05T09:00:00Z"
    groups = list(root)
    assert {g.tag for g in groups} == {f"{ADX}group"}
    assert {g.get("orgUnit") for g in groups} == {
        example.org_unit("MOTEBANG"),
        example.org_unit("QMMH"),
    }  # one group per facility with values
    for group in groups:
        assert group.get("dataSet") == example.data_set
        assert group.get("period") == "2026-11-01/P1M"
        assert {frozenset(v.attrib) for v in group} == {
            frozenset({"dataElement", "categoryOptionCombo", "value"})
        }
    problems, values = check_adx(payload.body)
    assert problems == []
    expect_month(example, values)
    # The same numbers as the JSON document.
    _, from_json = check_json(month_payload(db, example, NOVEMBER, Format.json, DECEMBER_5).body)
    assert rows(values) == rows(from_json)


def test_a_value_without_a_mapping_or_an_unknown_facility_is_named(
    db: Session, november: Month, tmp_path: Path
) -> None:
    no_motebang = mapping_file(tmp_path, 'MOTEBANG = "qw7wZyVGOeU"', "")
    mapping = load_mapping(db, no_motebang)
    with pytest.raises(MappingError, match="no org unit for facility code 'MOTEBANG'"):
        month_payload(db, mapping, NOVEMBER, Format.json, DECEMBER_5)
    no_cancelled = mapping_file(tmp_path, 'cancelled = { data_element = "X8bbGEuRtCu" }', "")
    mapping = load_mapping(db, no_cancelled)
    with pytest.raises(MappingError, match="no data element for cancelled"):
        month_payload(db, mapping, NOVEMBER, Format.json, DECEMBER_5)
    unknown = mapping_file(tmp_path, "PARAY = ", "NOWHERE = ")
    with pytest.raises(MappingError) as caught:
        load_mapping(db, unknown)
    line = line_of_text(unknown.read_text(), "NOWHERE = ")
    assert caught.value.message.startswith(f"{unknown}:{line}: unknown facility code 'NOWHERE'")


# --- export to a file -----------------------------------------------------------------------


def test_export_writes_the_file_whole_and_audits_it(
    db: Session, units: Units, november: Month, tmp_path: Path
) -> None:
    out = tmp_path / "exports" / "november.json"
    out.parent.mkdir()
    done = export_file(units, EXAMPLE, NOVEMBER, Format.json, out, DECEMBER_5)
    assert json.loads(out.read_text())["period"] == "202611"
    assert done.payload.count == len(json.loads(out.read_text())["dataValues"])
    assert [p.name for p in out.parent.iterdir()] == ["november.json"]  # no temporary left
    db.rollback()
    [entry] = db.exec(select(AuditEntry).where(AuditEntry.object_type == "dhis2_export")).all()
    assert (entry.action, entry.object_id, entry.actor_role) == ("download", "2026-11", "system")
    assert str(out) in entry.detail


def test_a_failed_export_leaves_the_earlier_file_and_no_other(
    db: Session, units: Units, november: Month, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "november.json"
    out.parent.mkdir()
    out.write_text("earlier")
    bad = mapping_file(tmp_path, 'MOTEBANG = "qw7wZyVGOeU"', "")
    with pytest.raises(MappingError, match="MOTEBANG"):
        export_file(units, bad, NOVEMBER, Format.adx, out, DECEMBER_5)
    assert out.read_text() == "earlier"
    assert [p.name for p in out.parent.iterdir()] == ["november.json"]
    with pytest.raises(ValidationFailed, match="does not exist"):
        export_file(units, EXAMPLE, NOVEMBER, Format.json, tmp_path / "no" / "x.json", DECEMBER_5)
    db.rollback()
    assert db.exec(select(AuditEntry).where(AuditEntry.object_type == "dhis2_export")).all() == []


# --- push -----------------------------------------------------------------------------------


def _server(url: str, *, token: bool = False, timeout: float = 5.0) -> Dhis2Server:
    if token:
        return Dhis2Server(url, token=TOKEN, timeout_seconds=timeout)
    return Dhis2Server(url, USERNAME, PASSWORD, timeout_seconds=timeout)


@pytest.mark.parametrize("fmt", [Format.json, Format.adx])
def test_a_push_is_imported_once_and_sent_again_only_when_forced(
    db: Session, units: Units, november: Month, example: Mapping, fmt: Format
) -> None:
    with fake_dhis2() as dhis2:
        pushed = push_month(units, _server(dhis2.url), EXAMPLE, NOVEMBER, DECEMBER_5, fmt=fmt)
        [request] = dhis2.received
        assert request.problems == []
        assert request.content_type == fmt.content_type
        assert request.authorization.startswith("Basic ")
        if fmt is Format.adx:
            assert request.query["idScheme"] == ["UID"]
        expect_month(example, request.values)
        summary = pushed.summary
        assert summary is not None
        assert summary.ok
        assert (summary.imported, summary.updated, summary.conflicts) == (pushed.values, 0, ())

        again = push_month(units, _server(dhis2.url), EXAMPLE, NOVEMBER, DECEMBER_5, fmt=fmt)
        assert again.summary is None
        assert again.pushed_before == DECEMBER_5
        assert len(dhis2.received) == 1  # not sent twice

        forced = push_month(
            units, _server(dhis2.url, token=True), EXAMPLE, NOVEMBER, DECEMBER_5, force=True
        )
        assert dhis2.received[1].authorization == f"ApiToken {TOKEN}"
        assert forced.summary is not None
        assert (forced.summary.imported, forced.summary.updated) == (0, pushed.values)
    [row] = pushes(db)
    assert (row.period, row.data_set, row.attempts, row.last_status) == (
        "2026-11",
        example.data_set,
        2,
        "SUCCESS",
    )
    assert row.values_sent == pushed.values
    db.rollback()
    audited = db.exec(select(AuditEntry).where(AuditEntry.object_type == "dhis2_push")).all()
    assert [a.action for a in audited] == ["upload", "upload"]
    assert "SUCCESS" in audited[0].detail


def test_conflicts_are_read_from_the_import_summary(
    db: Session, units: Units, november: Month, example: Mapping
) -> None:
    with fake_dhis2() as dhis2:
        dhis2.unknown_org_units = {example.org_unit("QMMH")}
        pushed = push_month(units, _server(dhis2.url), EXAMPLE, NOVEMBER, DECEMBER_5)
    summary = pushed.summary
    assert summary is not None
    assert summary.status == "WARNING"
    assert not summary.ok
    assert summary.accepted
    assert summary.ignored == len(summary.conflicts) >= 1
    assert summary.imported == pushed.values - summary.ignored
    assert all(c.error_code == "E7612" for c in summary.conflicts)
    assert example.org_unit("QMMH") in str(summary.conflicts[0])
    [row] = pushes(db)
    assert (row.last_status, row.conflicts, row.pushed_at) == (
        "WARNING",
        len(summary.conflicts),
        DECEMBER_5,
    )  # taken: sending the same values again would not resolve the conflicts


def test_an_import_summary_without_the_web_message_is_read_too(
    units: Units, db: Session, november: Month
) -> None:
    with fake_dhis2() as dhis2:
        dhis2.legacy = True  # DHIS2 before 2.38
        pushed = push_month(units, _server(dhis2.url), EXAMPLE, NOVEMBER, DECEMBER_5)
    assert pushed.summary is not None
    assert pushed.summary.ok
    assert pushed.summary.imported == pushed.values


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("500", "answered HTTP 500 without an import summary: could not execute statement"),
        ("html", "answered HTTP 200 with text/html;charset=UTF-8, not a JSON import summary"),
        ("slow", "did not answer within 0.5 s"),
        ("closed", "cannot reach DHIS2 at http://127.0.0.1:"),
        ("credentials", "refused the credentials (HTTP 401)"),
    ],
)
def test_a_failed_push_is_recorded_and_retried(
    units: Units, db: Session, november: Month, mode: str, message: str
) -> None:
    with fake_dhis2() as dhis2:
        url = closed_port_url() if mode == "closed" else dhis2.url
        server = _server(url, timeout=0.5)
        if mode == "credentials":
            server = Dhis2Server(url, USERNAME, "wrong", timeout_seconds=0.5)
        else:
            dhis2.mode = mode
        with pytest.raises(Dhis2Error) as caught:
            push_month(units, server, EXAMPLE, NOVEMBER, DECEMBER_5)
        assert message in caught.value.message
        [row] = pushes(db)
        assert (row.last_status, row.attempts, row.pushed_at) == ("failed", 1, None)
        assert message in row.last_error

        dhis2.mode = "dhis2"
        retried = push_month(units, _server(dhis2.url), EXAMPLE, NOVEMBER, DECEMBER_5)
        assert retried.summary is not None
        assert retried.summary.ok
    [row] = pushes(db)
    assert (row.last_status, row.attempts, row.pushed_at) == ("SUCCESS", 2, DECEMBER_5)


def test_a_dry_run_is_checked_by_dhis2_and_records_no_push(
    units: Units, db: Session, november: Month
) -> None:
    with fake_dhis2() as dhis2:
        pushed = push_month(units, _server(dhis2.url), EXAMPLE, NOVEMBER, DECEMBER_5, dry_run=True)
        assert dhis2.received[0].query["dryRun"] == ["true"]
        assert dhis2.stored == {}
    assert pushed.summary is not None
    assert pushed.summary.dry_run
    assert pushes(db) == []
    audited = db.exec(select(AuditEntry).where(AuditEntry.object_type == "dhis2_push")).one()
    assert audited.detail.startswith("dry run json")


# --- the monthly job --------------------------------------------------------------------------


def _job_settings(settings: Settings, url: str, mapping: Path = EXAMPLE) -> Settings:
    return settings.model_copy(
        update={
            "dhis2_url": url,
            "dhis2_username": USERNAME,
            "dhis2_password": PASSWORD,
            "dhis2_mapping": mapping,
            "dhis2_timeout_seconds": 2.0,
        }
    )


def test_the_monthly_job_pushes_last_month_once_from_the_second_in_maseru(
    units: Units, db: Session, settings: Settings, november: Month
) -> None:
    with fake_dhis2() as dhis2:
        job = _job_settings(settings, dhis2.url)
        late_on_the_first = datetime(2026, 12, 1, 21, 30, tzinfo=UTC)  # 23:30 in Maseru
        assert monthly_push(units, job, late_on_the_first) is None
        assert dhis2.received == []
        second = late_on_the_first + timedelta(hours=1)  # 00:30 on 2 December in Maseru
        done = monthly_push(units, job, second)
        assert done is not None
        assert done.startswith("2026-11: SUCCESS")
        assert monthly_push(units, job, second + timedelta(hours=1)) is None
        assert monthly_push(units, job, second + timedelta(days=3)) is None
        assert len(dhis2.received) == 1
        expect_month(load(EXAMPLE), dhis2.received[0].values)
        assert monthly_push(units, settings, second) is None  # not configured: nothing


def test_the_monthly_job_retries_a_failed_push_on_its_next_run(
    units: Units, db: Session, settings: Settings, november: Month
) -> None:
    second = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
    with fake_dhis2() as dhis2:
        job = _job_settings(settings, dhis2.url)
        dhis2.mode = "500"
        assert monthly_push(units, job, second) == "2026-11: failed"
        assert monthly_push(units, job, second + timedelta(hours=1)) == "2026-11: failed"
        dhis2.mode = "dhis2"
        done = monthly_push(units, job, second + timedelta(hours=2))
        assert done is not None
        assert "SUCCESS" in done
        assert monthly_push(units, job, second + timedelta(hours=3)) is None
        assert len(dhis2.received) == 3
    [row] = pushes(db)
    assert (row.attempts, row.last_status) == (3, "SUCCESS")
