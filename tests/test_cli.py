"""The `telemed` command, run as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from telemed.accounts import service as accounts
from telemed.accounts.models import Role, User, UserSession
from telemed.consults.models import Consult, Specialty
from telemed.db import make_engine, utcnow
from telemed.settings import Settings
from tests.helpers import PASSWORD, Users

TELEMED = [sys.executable, "-m", "telemed"]


def run(
    args: list[str], data_dir: Path, input_text: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "TELEMED_DATA_DIR": str(data_dir), **env}
    environ.pop("TELEMED_DATABASE_URL", None) if "TELEMED_DATABASE_URL" not in env else None
    return subprocess.run(
        TELEMED + args,
        env=environ,
        input=input_text,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["db", "upgrade"],
        ["users", "create"],
        ["users", "deactivate"],
        ["demo"],
        ["specialties", "add"],
        ["scheduler"],
        ["mailbox", "list"],
        ["mailbox", "show"],
        ["audit", "seal"],
        ["audit", "verify"],
    ],
)
def test_every_command_has_help(command: list[str], tmp_path: Path) -> None:
    result = run([*command, "--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout


def test_serve_help_names_host_and_port(tmp_path: Path) -> None:
    out = run(["serve", "--help"], tmp_path).stdout
    assert "--host" in out
    assert "--port" in out


def test_demo_seeds_the_data_directory_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = run(["demo"], data)
    assert first.returncode == 0, first.stderr
    assert "coordinator@demo.telemed.org.ls" in first.stdout
    assert "coordinator-demo-2026" in first.stdout
    engine = make_engine(f"sqlite:///{data / 'telemed.sqlite3'}")
    with Session(engine) as session:
        roles = {u.role for u in session.exec(select(User))}
        states = {c.state for c in session.exec(select(Consult))}
    assert roles == {"clinician", "specialist", "coordinator", "admin"}
    assert {"draft", "requested", "scheduled", "cancelled"} <= states
    second = run(["demo"], data)
    assert second.returncode == 0
    assert "already has users" in second.stdout
    engine.dispose()


def test_users_create_and_its_errors(tmp_path: Path) -> None:
    created = run(
        [
            "users",
            "create",
            "--email",
            "Nurse@Example.org",
            "--name",
            "A Nurse",
            "--role",
            "clinician",
            "--facility",
            "PARAY",
            "--password",
            "long enough secret",
        ],
        tmp_path,
    )
    assert created.returncode == 0, created.stderr
    assert "Created clinician nurse@example.org" in created.stdout
    duplicate = run(
        [
            "users",
            "create",
            "--email",
            "nurse@example.org",
            "--name",
            "B",
            "--role",
            "clinician",
            "--facility",
            "PARAY",
            "--password",
            "long enough secret",
        ],
        tmp_path,
    )
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr
    assert "Traceback" not in duplicate.stderr
    bad_facility = run(
        [
            "users",
            "create",
            "--email",
            "x@example.org",
            "--name",
            "X",
            "--role",
            "clinician",
            "--facility",
            "NOWHERE",
            "--password",
            "long enough secret",
        ],
        tmp_path,
    )
    assert bad_facility.returncode == 1
    assert "unknown facility code 'NOWHERE'" in bad_facility.stderr
    bad_role = run(
        [
            "users",
            "create",
            "--email",
            "x@example.org",
            "--name",
            "X",
            "--role",
            "wizard",
            "--password",
            "long enough secret",
        ],
        tmp_path,
    )
    assert bad_role.returncode == 2
    assert "wizard" in bad_role.stderr
    short = run(
        [
            "users",
            "create",
            "--email",
            "s@example.org",
            "--name",
            "S",
            "--role",
            "specialist",
            "--password",
            "short",
        ],
        tmp_path,
    )
    assert short.returncode == 1
    assert "at least 10 characters" in short.stderr
    prompted = run(
        [
            "users",
            "create",
            "--email",
            "p@example.org",
            "--name",
            "P",
            "--role",
            "specialist",
            "--timezone",
            "America/Toronto",
        ],
        tmp_path,
        input_text="prompted secret!\nprompted secret!\n",
    )
    assert prompted.returncode == 0, prompted.stderr


def test_users_deactivate_ends_login_and_sessions(
    engine: Engine, db: Session, users: Users, settings: Settings, tmp_path: Path
) -> None:
    """The operator's way to deactivate (no admin account needed), on each backend."""
    user = users.make(Role.specialist)
    accounts.log_in(
        db, settings, email=user.email, password=PASSWORD, address="192.0.2.1", now=utcnow()
    )
    db.commit()
    url = engine.url.render_as_string(hide_password=False)
    result = run(["users", "deactivate", user.email.upper()], tmp_path, TELEMED_DATABASE_URL=url)
    assert result.returncode == 0, result.stderr
    assert f"Deactivated specialist {user.email}" in result.stdout
    db.rollback()
    fresh = db.get(User, user.id, populate_existing=True)
    assert fresh is not None
    assert fresh.is_active is False
    sessions = db.exec(select(UserSession).where(UserSession.user_id == user.id)).all()
    assert [s.revoked_at is not None for s in sessions] == [True]
    unknown = run(["users", "deactivate", "ghost@example.org"], tmp_path, TELEMED_DATABASE_URL=url)
    assert unknown.returncode == 1
    assert "no user with e-mail ghost@example.org" in unknown.stderr


def test_specialties_add_extends_the_list(tmp_path: Path) -> None:
    assert run(["specialties", "add", "geriatrics", "Geriatric medicine"], tmp_path).returncode == 0
    bad = run(["specialties", "add", "Bad Code!", "x"], tmp_path)
    assert bad.returncode == 2
    engine = make_engine(f"sqlite:///{tmp_path / 'telemed.sqlite3'}")
    with Session(engine) as session:
        assert session.get(Specialty, "geriatrics") is not None
    engine.dispose()


def test_db_upgrade_on_each_backend(engine: Engine, backend: str, tmp_path: Path) -> None:
    url = engine.url.render_as_string(hide_password=False)
    result = run(["db", "upgrade"], tmp_path, TELEMED_DATABASE_URL=url)
    assert result.returncode == 0, result.stderr
    assert "Database at head" in result.stdout


def test_unreachable_database_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    result = run(
        ["db", "upgrade"],
        tmp_path,
        TELEMED_DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/none",
    )
    assert result.returncode == 1
    assert "cannot use the database" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_settings_are_a_message(tmp_path: Path) -> None:
    result = run(["db", "upgrade"], tmp_path, TELEMED_ENV="production")
    assert result.returncode == 1
    assert "TELEMED_SECRET_KEY" in result.stderr
