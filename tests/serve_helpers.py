"""What the tests that start a real ``telemed serve`` on their own database share: the
clinicians who log in to it, and the environment the child process runs in."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session

from telemed.accounts import service as accounts
from telemed.accounts.models import Role
from telemed.settings import Settings
from tests.helpers import PASSWORD, env_without_settings


def make_clinicians(db: Session, settings: Settings, prefix: str, count: int) -> list[str]:
    """``count`` clinicians of the demo's Motebang Hospital, committed: their e-mails (the
    password is ``tests.helpers.PASSWORD``)."""
    emails = [f"{prefix}{i}@clinic.ls" for i in range(count)]
    for email in emails:
        accounts.create_user(
            db,
            settings,
            email=email,
            full_name=f"Nurse {email.split('@')[0]}",
            role=Role.clinician,
            password=PASSWORD,
            facility_code="MOTEBANG",
        )
    db.commit()
    return emails


def serve_env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    """The child server's environment: the test's database, a data directory of its own."""
    env = env_without_settings()
    env.update(
        TELEMED_DATA_DIR=str(tmp_path / "data"),
        TELEMED_DATABASE_URL=settings.sqlalchemy_url,
        TELEMED_ENV="test",
        TELEMED_PASSWORD_HASHING=settings.password_hashing,
        PYTHONUNBUFFERED="1",
    )
    return env
