"""Settings: defaults for the embedded product, refusals outside development."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from telemed.settings import Environment, Settings


def test_default_is_sqlite_in_the_data_directory(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.sqlalchemy_url == f"sqlite:///{tmp_path.resolve()}/telemed.sqlite3"
    assert settings.clinician_timezone == "Africa/Maseru"


def test_environment_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TELEMED_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TELEMED_DATABASE_URL", "postgresql+psycopg://u@db/telemed")
    settings = Settings()
    assert settings.data_dir == tmp_path
    assert settings.sqlalchemy_url == "postgresql+psycopg://u@db/telemed"


def test_default_secret_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="TELEMED_SECRET_KEY"):
        Settings(env=Environment.production)
    with pytest.raises(ValidationError, match="TELEMED_SECRET_KEY"):
        Settings(env=Environment.production, secret_key="short")
    Settings(env=Environment.production, secret_key="x" * 40)


def test_development_secret_is_random_and_kept(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path).effective_secret()
    assert len(first) >= 48
    assert Settings(data_dir=tmp_path).effective_secret() == first
    assert Settings(data_dir=tmp_path / "other").effective_secret() != first


def test_unknown_time_zone_refused() -> None:
    with pytest.raises(ValidationError, match="unknown IANA time zone"):
        Settings(clinician_timezone="Africa/Atlantis")


def test_cookies_secure_outside_development() -> None:
    assert Settings(env=Environment.production, secret_key="x" * 40).secure_cookies
    assert not Settings().secure_cookies


def test_the_example_environment_names_every_setting() -> None:
    """An operator copies deploy/telemed.env.example: a setting missing from it is one they
    never learn exists (issue 13: "an example environment that covers every setting")."""

    example = (Path(__file__).parent.parent / "deploy" / "telemed.env.example").read_text()
    named = {
        line.lstrip("# ").split("=", 1)[0]
        for line in example.splitlines()
        if line.lstrip("# ").startswith("TELEMED_") and "=" in line
    }
    missing = sorted(f"TELEMED_{name.upper()}" for name in Settings.model_fields)
    missing = [env for env in missing if env not in named]
    assert missing == []
