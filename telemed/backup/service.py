"""Backing up and restoring the database together with the attachment store.

The database is copied first, then the blobs: a blob is written (and renamed into place)
before the row naming it commits and is never deleted, so every blob the copied database
names is on disk by the time the blobs are copied. Blobs written later are copied too;
nothing names them and they are harmless.

Restore checks everything before it changes anything: every part's sha256, the migration
revision (an archive from newer code is refused: this code cannot know its schema), and
that the target database holds no data unless ``force``. Then the database is replaced,
migrated to this code's head if the archive is older, the blobs are added to the store
(through ``BlobStore``, which never overwrites a blob), and the audit chain is verified.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlmodel import Session

from telemed.attachments.storage import SHA256_HEX, BlobStore
from telemed.audit import service as audit
from telemed.audit.models import AuditAction
from telemed.backup import archive, databases, retention
from telemed.backup.archive import BackupError, Manifest
from telemed.migrate import alembic_config, upgrade
from telemed.uow import Units, new_session

BLOBS = "blobs"
STALE_TEMPORARY = timedelta(days=1)  # no backup takes that long


@dataclass(frozen=True)
class Restored:
    manifest: Manifest
    blobs: int
    chain: audit.ChainReport


def _revision(session: Session) -> str:
    row = session.execute(text("SELECT version_num FROM alembic_version")).first()
    if row is None:
        raise BackupError("the database has no migration revision: run `telemed db upgrade`")
    return str(row[0])


def _kind(engine: Engine) -> str:
    return "sqlite" if engine.dialect.name == "sqlite" else "postgresql"


def create_backup(units: Units, data_dir: Path, backup_dir: Path, now: datetime) -> Path:
    """Write one archive into ``backup_dir`` (named by ``now``) and return its path. Its
    making is audited (an export of everything) in a unit of work of its own."""
    engine = units.engine
    target = backup_dir / archive.archive_name(now)
    with archive.building(target) as building:
        with new_session(engine) as session:  # a read: on SQLite no write lock
            manifest = Manifest(now, _kind(engine), _revision(session), audit.head(session))
        databases.dump(engine, building / databases.part_name(manifest.database))
        store = BlobStore(data_dir / BLOBS)
        copy = BlobStore(building / BLOBS)
        if store.root.is_dir():
            for path in sorted(store.root.glob("*/*")):
                if SHA256_HEX.match(path.name):
                    copy.put_file(path)
        archive.seal(building, manifest)
    with units.one() as session:
        audit.record(session, None, AuditAction.export, "backup", target.name, detail=str(target))
    return target


def code_head() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships its migrations
        raise BackupError("no migrations found")
    return head


def _check_revision(manifest: Manifest) -> None:
    scripts = ScriptDirectory.from_config(alembic_config())
    known = {script.revision for script in scripts.walk_revisions()}
    if manifest.revision not in known:
        raise BackupError(
            f"the archive is from migration revision {manifest.revision}, newer than this "
            f"code (head {code_head()}): restore it with the version of Telemed that made it"
        )


def restore_backup(engine: Engine, data_dir: Path, source: Path, *, force: bool) -> Restored:
    """Replace ``engine``'s database and add the archive's blobs to ``data_dir``'s store.
    Refused (``BackupError``, nothing changed) for a damaged archive, one from newer code,
    another kind of database, or a target holding data without ``force``."""
    manifest = archive.check(source)
    _check_revision(manifest)
    if manifest.database != _kind(engine):
        raise BackupError(
            f"the archive holds a {manifest.database} database; the target is {_kind(engine)}"
        )
    if not force and databases.holds_data(engine):
        raise BackupError(
            "the target database holds data already: restore into an empty one, "
            "or give --force to replace it"
        )
    databases.load(engine, source / databases.part_name(manifest.database))
    upgrade(engine)
    store = BlobStore(data_dir / BLOBS)
    blobs = 0
    for name in sorted(manifest.parts):
        if name.startswith(f"{BLOBS}/"):
            store.put_file(source / name)
            blobs += 1
    reading = engine
    if engine.dialect.name == "postgresql":
        reading = engine.execution_options(isolation_level="REPEATABLE READ")
    with Session(reading) as session:
        chain = audit.verify(session)
    return Restored(manifest, blobs, chain)


def backups_in(backup_dir: Path) -> dict[str, datetime]:
    """The finished archives in ``backup_dir`` by name, with their times (temporary
    directories of a backup being made are hidden and not named like one)."""
    if not backup_dir.is_dir():
        return {}
    found = {p.name: archive.archive_time(p.name) for p in backup_dir.iterdir() if p.is_dir()}
    return {name: at for name, at in found.items() if at is not None}


def prune(backup_dir: Path, daily: int, weekly: int, now: datetime) -> list[str]:
    """Delete the archives retention does not keep, and the hidden temporary directory of
    a backup begun over a day before ``now`` (its process was killed); the names deleted,
    archives oldest first."""
    backups = backups_in(backup_dir)
    keep = retention.to_keep(backups, daily, weekly)
    gone = sorted((n for n in backups if n not in keep), key=backups.__getitem__)
    for name in gone:
        shutil.rmtree(backup_dir / name)
    for path in backup_dir.glob(f".{archive.PREFIX}*"):
        begun = archive.archive_time(path.name[1:].rsplit("-", 1)[0])
        if path.is_dir() and begun is not None and begun < now - STALE_TEMPORARY:
            shutil.rmtree(path)
            gone.append(path.name)
    return gone
