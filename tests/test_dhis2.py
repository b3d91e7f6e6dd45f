"""DHIS2 export and push (telemed.interop.dhis2): the mapping file and its validation, the
documented JSON and ADX shapes, the push against a stand-in DHIS2 over real HTTP (success,
conflicts, a 500, a page that is not JSON, no answer), the monthly job's idempotency, and
the ``telemed dhis2`` commands. The values come from consults made through the API in
November 2026 on the application's clock."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from telemed.accounts.models import Role
from telemed.audit.models import AuditEntry
from telemed.consults.models import Consult
from telemed.db import utcnow
from telemed.demo.data import FACILITIES
from telemed.errors import ValidationFailed
from telemed.interop.dhis2.client import Dhis2Error, Dhis2Server
from telemed.interop.dhis2.codes import exportable
from telemed.interop.dhis2.jobs import monthly_push
from telemed.interop.dhis2.mapping import Mapping, MappingError, load, parse
from telemed.interop.dhis2.models import Dhis2Push
from telemed.interop.dhis2.payload import Format, Period
from telemed.interop.dhis2.service import export_file, load_mapping, month_payload, push_month
from telemed.offers.models import ConsultOffer
from telemed.settings import Settings
from telemed.uow import Units
from telemed.uptake.filters import maseru_today
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
from tests.directory_helpers import Specialists
from tests.helpers import ApiClient, ManualClock, Users, consult_payload, env_without_settings

EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "dhis2" / "mapping.example.toml"
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


def _edited(old: str, new: str) -> str:
    text = EXAMPLE.read_text()
    assert old in text
    return text.replace(old, new, 1)


def _line(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


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
def test_a_mistake_in_the_mapping_is_named_with_its_line(
    old: str, new: str, named: str, at: str
) -> None:
    text = _edited(old, new)
    with pytest.raises(MappingError) as caught:
        parse(text, "mapping.toml")
    message = caught.value.message
    assert named in message
    assert message.startswith(f"mapping.toml:{_line(text, at)}: "), message


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


@dataclass(frozen=True)
class Month:
    accepted: int  # consult ids
    cancelled: int
    emergency: int


def make_month(
    first: date, db: Session, settings: Settings, users: Users, login: LoginFn, clock: ManualClock
) -> Month:
    """Three consults requested on the 10th of the month of ``first`` (Maseru): at Motebang
    one urgent, accepted 20 minutes later, and one routine, cancelled; at Queen 'Mamohato
    one emergency."""
    specialist = Specialists(db, settings, users).make(specialty="paediatrics")
    clock.set(datetime.combine(first.replace(day=10), time(8), UTC))
    motebang = login(users.make(Role.clinician, facility="MOTEBANG"))
    qmmh = login(users.make(Role.clinician, facility="QMMH"))

    def request(nurse: ApiClient, ref: str, urgency: str) -> int:
        case = {"patient_ref": ref, "age_years": 3, "sex": "female"}
        payload = consult_payload(mode="asynchronous", urgency=urgency, case=case)
        response = nurse.post("/api/v1/consults", payload)
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    accepted = request(motebang, "MOT-1", "urgent")
    cancelled = request(motebang, "MOT-2", "routine")
    emergency = request(qmmh, "QM-1", "emergency")
    db.rollback()
    [offer] = db.exec(select(ConsultOffer).where(ConsultOffer.consult_id == accepted)).all()
    clock.advance(timedelta(minutes=20))  # within the urgent offer's 30 minutes
    assert login(specialist).post(f"/api/v1/offers/{offer.id}/accept").status_code == 200
    gone = motebang.post(f"/api/v1/consults/{cancelled}/cancel", {"reason": "went home"})
    assert gone.status_code == 200, gone.text
    db.rollback()
    assert {c.id for c in db.exec(select(Consult))} == {accepted, cancelled, emergency}
    return Month(accepted, cancelled, emergency)


@pytest.fixture
def november(
    db: Session, settings: Settings, users: Users, login: LoginFn, clock: ManualClock
) -> Month:
    return make_month(NOVEMBER.first, db, settings, users, login, clock)


def _value(
    mapping: Mapping,
    values: list[dict[str, str]],
    indicator: str,
    facility: str,
    category: str | None = None,
) -> str | None:
    target = mapping.target(indicator, category)
    found = [
        v["value"]
        for v in values
        if v["dataElement"] == target.data_element
        and v["categoryOptionCombo"] == target.category_option_combo
        and v["orgUnit"] == mapping.org_unit(facility)
    ]
    assert len(found) <= 1
    return found[0] if found else None


def _rows(values: list[dict[str, str]]) -> list[tuple[tuple[str, str], ...]]:
    return sorted(tuple(sorted(v.items())) for v in values)


def _expect_month(mapping: Mapping, values: list[dict[str, str]]) -> None:
    """The numbers of ``make_month``, by hand."""
    assert _value(mapping, values, "requests", "MOTEBANG", "urgent") == "1"
    assert _value(mapping, values, "requests", "MOTEBANG", "routine") == "1"
    assert _value(mapping, values, "requests", "QMMH", "emergency") == "1"
    assert _value(mapping, values, "requests", "QMMH", "urgent") is None  # zeros left out
    assert _value(mapping, values, "offers_accepted", "MOTEBANG") == "1"
    assert _value(mapping, values, "wait_acceptance_seconds_sum", "MOTEBANG") == "1200"
    assert _value(mapping, values, "wait_acceptance_count", "MOTEBANG") == "1"
    assert _value(mapping, values, "cancelled", "MOTEBANG") == "1"
    assert _value(mapping, values, "cancelled", "QMMH") is None


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
    _expect_month(example, values)


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
    _expect_month(example, values)
    # The same numbers as the JSON document.
    _, from_json = check_json(month_payload(db, example, NOVEMBER, Format.json, DECEMBER_5).body)
    assert _rows(values) == _rows(from_json)


def _mapping_file(tmp_path: Path, old: str = "", new: str = "") -> Path:
    path = tmp_path / "mapping.toml"
    path.write_text(_edited(old, new) if old else EXAMPLE.read_text())
    return path


def test_a_value_without_a_mapping_or_an_unknown_facility_is_named(
    db: Session, november: Month, tmp_path: Path
) -> None:
    no_motebang = _mapping_file(tmp_path, 'MOTEBANG = "qw7wZyVGOeU"', "")
    mapping = load_mapping(db, no_motebang)
    with pytest.raises(MappingError, match="no org unit for facility code 'MOTEBANG'"):
        month_payload(db, mapping, NOVEMBER, Format.json, DECEMBER_5)
    no_cancelled = _mapping_file(tmp_path, 'cancelled = { data_element = "X8bbGEuRtCu" }', "")
    mapping = load_mapping(db, no_cancelled)
    with pytest.raises(MappingError, match="no data element for cancelled"):
        month_payload(db, mapping, NOVEMBER, Format.json, DECEMBER_5)
    unknown = _mapping_file(tmp_path, "PARAY = ", "NOWHERE = ")
    with pytest.raises(MappingError) as caught:
        load_mapping(db, unknown)
    line = _line(unknown.read_text(), "NOWHERE = ")
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
    bad = _mapping_file(tmp_path, 'MOTEBANG = "qw7wZyVGOeU"', "")
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


def _pushes(db: Session) -> list[Dhis2Push]:
    db.rollback()
    return list(db.exec(select(Dhis2Push).order_by(col(Dhis2Push.id))))


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
        _expect_month(example, request.values)
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
    [row] = _pushes(db)
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
    [row] = _pushes(db)
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
        [row] = _pushes(db)
        assert (row.last_status, row.attempts, row.pushed_at) == ("failed", 1, None)
        assert message in row.last_error

        dhis2.mode = "dhis2"
        retried = push_month(units, _server(dhis2.url), EXAMPLE, NOVEMBER, DECEMBER_5)
        assert retried.summary is not None
        assert retried.summary.ok
    [row] = _pushes(db)
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
    assert _pushes(db) == []
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
        _expect_month(load(EXAMPLE), dhis2.received[0].values)
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
    [row] = _pushes(db)
    assert (row.attempts, row.last_status) == (3, "SUCCESS")


# --- the commands -----------------------------------------------------------------------------


def telemed(args: list[str], settings: Settings, **env: str) -> subprocess.CompletedProcess[str]:
    """``telemed dhis2 ...`` as a process of its own, on the test's database."""
    environ = {
        **env_without_settings(),
        "TELEMED_ENV": "test",
        "TELEMED_DATA_DIR": str(settings.data_dir),
        "TELEMED_DATABASE_URL": str(settings.database_url),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "telemed", "dhis2", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def last_month(
    db: Session, settings: Settings, users: Users, login: LoginFn, clock: ManualClock
) -> Period:
    """The commands run on the machine's clock: the consults are in its last month."""
    period = Period.before(maseru_today(utcnow()))
    make_month(period.first, db, settings, users, login, clock)
    return period


@pytest.mark.parametrize("command", [[], ["export"], ["push"]])
def test_the_commands_have_help(command: list[str], settings: Settings) -> None:
    result = telemed([*command, "--help"], settings)
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout


def test_export_command_writes_json_and_adx(
    settings: Settings, last_month: Period, tmp_path: Path
) -> None:
    out = tmp_path / "exports"
    out.mkdir()
    env = {"TELEMED_DHIS2_MAPPING": str(EXAMPLE)}
    done = telemed(
        ["export", "--period", str(last_month), "--out", str(out / "m.json")], settings, **env
    )
    assert done.returncode == 0, done.stderr
    assert f"data values for {last_month} (json)" in done.stdout
    problems, values = check_json((out / "m.json").read_bytes())
    assert problems == []
    assert {v["period"] for v in values} == {last_month.dhis2}
    _expect_month(load(EXAMPLE), values)
    adx = telemed(
        ["export", "--period", str(last_month), "--format", "adx", "--out", str(out / "m.xml")],
        settings,
        **env,
    )
    assert adx.returncode == 0, adx.stderr
    problems, from_adx = check_adx((out / "m.xml").read_bytes())
    assert problems == []
    assert _rows(from_adx) == _rows(values)
    assert sorted(p.name for p in out.iterdir()) == ["m.json", "m.xml"]


def test_export_command_refuses_bad_input_and_leaves_no_file(
    settings: Settings, last_month: Period, tmp_path: Path
) -> None:
    out = tmp_path / "exports"
    out.mkdir()
    target = str(out / "m.json")
    this_month = Period(maseru_today(utcnow()).replace(day=1))
    unknown = _mapping_file(tmp_path, "PARAY = ", "NOWHERE = ")
    cases = [
        (["--period", "2026-13"], {}, "period must be a month written YYYY-MM"),
        (["--period", str(this_month)], {}, f"period {this_month} has not ended yet"),
        (["--period", "2999-01"], {}, "period 2999-01 has not ended yet"),
        (["--period", str(last_month)], None, "no mapping file: set TELEMED_DHIS2_MAPPING"),
        (
            ["--period", str(last_month), "--mapping", str(unknown)],
            {},
            "unknown facility code 'NOWHERE'",
        ),
    ]
    for args, env, message in cases:
        mapping = {} if env is None else {"TELEMED_DHIS2_MAPPING": str(EXAMPLE)}
        result = telemed(["export", *args, "--out", target], settings, **mapping)
        assert result.returncode == 1, (args, result.stdout)
        assert message in result.stderr, result.stderr
        assert list(out.iterdir()) == []  # no file, no temporary


def test_push_command_reports_the_summary_conflicts_and_errors(
    db: Session, settings: Settings, last_month: Period
) -> None:
    period = ["--period", str(last_month)]
    with fake_dhis2() as dhis2:
        env = {
            "TELEMED_DHIS2_MAPPING": str(EXAMPLE),
            "TELEMED_DHIS2_URL": dhis2.url,
            "TELEMED_DHIS2_TOKEN": TOKEN,
        }
        dry = telemed(["push", *period, "--dry-run"], settings, **env)
        assert dry.returncode == 0, dry.stderr
        assert "Dry run: DHIS2 checked" in dry.stdout
        assert dhis2.received[0].query["dryRun"] == ["true"]
        assert _pushes(db) == []

        sent = telemed(["push", *period], settings, **env)
        assert sent.returncode == 0, sent.stderr
        assert "Import summary: SUCCESS:" in sent.stdout
        assert dhis2.received[1].authorization == f"ApiToken {TOKEN}"
        _expect_month(load(EXAMPLE), dhis2.received[1].values)

        again = telemed(["push", *period], settings, **env)
        assert again.returncode == 0, again.stderr
        assert "pushed to DHIS2 already" in again.stdout
        assert len(dhis2.received) == 2

        dhis2.unknown_org_units = {load(EXAMPLE).org_unit("QMMH")}
        conflicts = telemed(["push", *period, "--force", "--format", "adx"], settings, **env)
        assert conflicts.returncode == 1
        assert "Import summary: WARNING:" in conflicts.stdout
        assert "conflict: " in conflicts.stderr
        assert "Organisation unit not found" in conflicts.stderr

        dhis2.mode = "500"
        failed = telemed(["push", *period, "--force"], settings, **env)
        assert failed.returncode == 1
        assert "answered HTTP 500" in failed.stderr
        assert "Traceback" not in failed.stderr

        no_credentials = telemed(
            ["push", *period],
            settings,
            TELEMED_DHIS2_URL=dhis2.url,
            TELEMED_DHIS2_MAPPING=str(EXAMPLE),
        )
        assert no_credentials.returncode == 1
        assert "no DHIS2 credentials" in no_credentials.stderr
    [row] = _pushes(db)
    assert (row.attempts, row.last_status) == (3, "failed")  # the forced ones recorded too
