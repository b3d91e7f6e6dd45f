"""``telemed dhis2 export`` and ``telemed dhis2 push`` as processes of their own, on the
test's database and the machine's clock (the consults are in its last month), against the
stand-in DHIS2."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session

from telemed.db import utcnow
from telemed.interop.dhis2.mapping import load
from telemed.interop.dhis2.payload import Period
from telemed.settings import Settings
from telemed.uptake.filters import maseru_today
from tests.cli_helpers import Ran, run_telemed
from tests.conftest import LoginFn
from tests.dhis2_helpers import TOKEN, check_adx, check_json, fake_dhis2
from tests.dhis2_month import EXAMPLE, expect_month, make_month, mapping_file, pushes, rows
from tests.helpers import ManualClock, Users


def telemed(args: list[str], settings: Settings, **env: str) -> Ran:
    """``telemed dhis2 ...`` on the test's database."""
    environ = {
        "TELEMED_ENV": "test",
        "TELEMED_PASSWORD_HASHING": "light",
        "TELEMED_DATA_DIR": str(settings.data_dir),
        "TELEMED_DATABASE_URL": str(settings.database_url),
        **env,
    }
    return run_telemed(["dhis2", *args], environ)


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
    expect_month(load(EXAMPLE), values)
    adx = telemed(
        ["export", "--period", str(last_month), "--format", "adx", "--out", str(out / "m.xml")],
        settings,
        **env,
    )
    assert adx.returncode == 0, adx.stderr
    problems, from_adx = check_adx((out / "m.xml").read_bytes())
    assert problems == []
    assert rows(from_adx) == rows(values)
    assert sorted(p.name for p in out.iterdir()) == ["m.json", "m.xml"]


def test_export_command_refuses_bad_input_and_leaves_no_file(
    settings: Settings, last_month: Period, tmp_path: Path
) -> None:
    out = tmp_path / "exports"
    out.mkdir()
    target = str(out / "m.json")
    this_month = Period(maseru_today(utcnow()).replace(day=1))
    unknown = mapping_file(tmp_path, "PARAY = ", "NOWHERE = ")
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
        assert pushes(db) == []

        sent = telemed(["push", *period], settings, **env)
        assert sent.returncode == 0, sent.stderr
        assert "Import summary: SUCCESS:" in sent.stdout
        assert dhis2.received[1].authorization == f"ApiToken {TOKEN}"
        expect_month(load(EXAMPLE), dhis2.received[1].values)

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
    [row] = pushes(db)
    assert (row.attempts, row.last_status) == (3, "failed")  # the forced ones recorded too
