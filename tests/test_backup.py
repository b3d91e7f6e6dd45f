"""Backups (telemed.backup, docs/backup.md), on both databases: a round trip into a fresh
database and data directory compares every table's rows and the attachment bytes and
verifies the audit chain; a damaged archive, one from newer code and a target holding data
are refused; retention keeps the right archives as days pass (a pinned clock)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, MetaData, select
from sqlmodel import Session

from telemed.audit.sealer import seal_pending
from telemed.backup import retention
from telemed.backup.archive import MANIFEST, BackupError
from telemed.backup.jobs import daily_backup
from telemed.backup.service import create_backup, restore_backup
from telemed.cli import main
from telemed.migrate import upgrade
from telemed.settings import Settings
from telemed.uow import Units
from tests.fhir_helpers import seed_full_consult

T0 = datetime(2027, 3, 1, 9, 30, tzinfo=UTC)  # a Monday


@pytest.fixture
def fresh(empty_database: Engine) -> Engine:
    """Another database of the same kind, migrated and empty (a server started once)."""
    upgrade(empty_database)
    return empty_database


def every_row(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """Every table's rows, in a stable order (all columns)."""
    tables = MetaData()
    tables.reflect(engine)
    with engine.connect() as conn:
        return {
            name: sorted((tuple(row) for row in conn.execute(select(table))), key=lambda r: repr(r))
            for name, table in tables.tables.items()
        }


def blobs(data_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (data_dir / "blobs").glob("*/*")}


def test_round_trip_restores_every_row_and_file_and_the_chain(
    engine: Engine, settings: Settings, db: Session, fresh: Engine, tmp_path: Path
) -> None:
    seed_full_consult(db, settings, engine)  # consults, messages, a note, attachments
    db.close()
    seal_pending(engine)
    before = every_row(engine)
    assert before["attachments"]
    assert before["messages"]
    assert before["consult_notes"]
    files = blobs(settings.data_dir)  # the photo, its thumbnail, the PDF
    assert len(files) == 3

    made = create_backup(Units(engine), settings.data_dir, tmp_path / "backups", T0)
    manifest = json.loads((made / MANIFEST).read_text())
    assert manifest["database"] == ("sqlite" if engine.dialect.name == "sqlite" else "postgresql")
    assert manifest["revision"] == before["alembic_version"][0][0]
    assert len(manifest["parts"]) == 4  # the database and the blobs, each with its sha256
    assert not [p for p in made.parent.iterdir() if p != made]  # no temporary left

    data_dir = tmp_path / "restored-data"
    done = restore_backup(fresh, data_dir, made, force=False)
    assert every_row(fresh) == before
    assert blobs(data_dir) == files
    assert done.blobs == 3
    assert done.chain.broken is None
    assert done.chain.sealed == len(before["audit_log"]) == manifest["audit_head"][0]

    # The restored database holds data now: refused without --force, replaced with it.
    with pytest.raises(BackupError, match="holds data already"):
        restore_backup(fresh, data_dir, made, force=False)
    assert restore_backup(fresh, data_dir, made, force=True).chain.broken is None
    assert every_row(fresh) == before


def cli(settings: Settings, *args: str) -> tuple[int, str]:
    env = {
        "TELEMED_DATABASE_URL": settings.sqlalchemy_url,
        "TELEMED_DATA_DIR": str(settings.data_dir),
        "TELEMED_ENV": "test",
        "TELEMED_PASSWORD_HASHING": "light",
    }
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.output


def test_a_damaged_or_newer_archive_is_refused(
    engine: Engine, settings: Settings, fresh: Engine, tmp_path: Path
) -> None:
    settings.data_dir.mkdir(parents=True)
    code, out = cli(settings, "backup", "--to", str(tmp_path / "backups"))
    assert code == 0, out
    made = next((tmp_path / "backups").iterdir())
    target = settings.model_copy(
        update={"database_url": fresh.url.render_as_string(hide_password=False)}
    )

    manifest = json.loads((made / MANIFEST).read_text())
    part = made / next(iter(manifest["parts"]))
    original = part.read_bytes()
    part.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    code, out = cli(target, "restore", str(made))
    assert code == 1
    assert "damaged: the sha256 of database." in out

    part.write_bytes(original)
    (made / MANIFEST).write_text(json.dumps({**manifest, "revision": "9999"}))
    code, out = cli(target, "restore", str(made))
    assert code == 1
    assert "newer than this code" in out

    (made / MANIFEST).write_text(json.dumps(manifest))
    code, out = cli(target, "restore", str(made))
    assert code == 0, out
    assert "Audit chain intact: 0 rows" in out


def test_retention_keeps_the_newest_of_recent_days_and_weeks() -> None:
    days = {f"b{n:02}": T0 + timedelta(days=n) for n in range(21)}  # three ISO weeks
    days["b20-early"] = T0 + timedelta(days=20, hours=-9)
    kept = retention.to_keep(days, daily=3, weekly=3)
    # The last three days; and the newest of each week (Sundays b06, b13; this week b20).
    assert kept == {"b18", "b19", "b20", "b06", "b13"}
    assert retention.to_keep(days, daily=1, weekly=0) == {"b20"}


def test_the_daily_job_backs_up_once_a_day_and_prunes(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    directory = tmp_path / "backups"
    units = Units(engine)
    assert daily_backup(units, settings, T0) is None  # off: no TELEMED_BACKUP_DIR
    on = settings.model_copy(
        update={"backup_dir": directory, "backup_keep_daily": 2, "backup_keep_weekly": 2}
    )
    killed = directory / ".telemed-backup-20270301T080000000000Z-x1y2"  # a killed backup's
    (killed / "blobs").mkdir(parents=True)
    results = [daily_backup(units, on, T0 + timedelta(days=d)) for d in range(9)]
    assert "deleted" not in str(results[0])  # begun under a day ago: may still be running
    assert daily_backup(units, on, T0 + timedelta(days=8, hours=1)) is None  # done today
    assert results[0] is not None
    assert results[0].startswith("made ")
    assert results[1] is not None
    assert results[1].endswith("deleted 1")  # the killed backup's temporary directory
    assert results[7] is not None
    assert results[7].endswith("deleted 1")
    assert results[8] is not None
    assert "deleted" not in results[8]
    # Left: Sunday the 7th (newest of last week), and the last two days (Mon 8th, Tue 9th).
    assert sorted(p.name[-22:-14] for p in directory.iterdir()) == [
        "20270307",
        "20270308",
        "20270309",
    ]
