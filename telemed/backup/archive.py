"""One backup on disk: a directory ``telemed-backup-<UTC time>`` holding the database dump,
the attachment blobs and ``manifest.json`` (time, database kind, migration revision, the
audit chain's head, and the sha256 of every part).

A directory rather than a tar: the blobs are already compressed media named by their hash,
and a directory can be checked and copied part by part (rsync sends only new blobs). It is
built under a hidden temporary name beside its final one and renamed into place when whole
(``os.rename`` of a directory is atomic on one file system), so a reader or the retention
job never sees half a backup, and a failure leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from telemed.attachments.storage import sha256_of_file
from telemed.errors import TelemedError

FORMAT = 1
MANIFEST = "manifest.json"
PREFIX = "telemed-backup-"
STAMP = "%Y%m%dT%H%M%S%fZ"


class BackupError(TelemedError):
    """A backup that cannot be made or an archive that cannot be restored."""


@dataclass
class Manifest:
    created_at: datetime
    database: str  # "sqlite" or "postgresql"
    revision: str  # the alembic revision of the database backed up
    audit_head: tuple[int, str] | None  # the sealed chain's length and last hash
    parts: dict[str, str] = field(default_factory=dict)  # relative path -> sha256

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "created_at": self.created_at.isoformat(),
                "database": self.database,
                "revision": self.revision,
                "audit_head": list(self.audit_head) if self.audit_head else None,
                "parts": self.parts,
            },
            indent=1,
            sort_keys=True,
        )

    @classmethod
    def read(cls, archive: Path) -> Manifest:
        try:
            raw = json.loads((archive / MANIFEST).read_text("utf-8"))
            if raw["format"] != FORMAT:
                raise BackupError(f"{archive}: unknown archive format {raw['format']!r}")
            head = raw["audit_head"]
            return cls(
                created_at=datetime.fromisoformat(raw["created_at"]),
                database=str(raw["database"]),
                revision=str(raw["revision"]),
                audit_head=(int(head[0]), str(head[1])) if head else None,
                parts={str(k): str(v) for k, v in dict(raw["parts"]).items()},
            )
        except FileNotFoundError as exc:
            raise BackupError(f"{archive}: not a backup (no {MANIFEST})") from exc
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise BackupError(f"{archive}: damaged {MANIFEST} ({exc})") from exc


def archive_name(at: datetime) -> str:
    return PREFIX + at.astimezone(UTC).strftime(STAMP)


def archive_time(name: str) -> datetime | None:
    """The time in a backup's name, or None for anything else in the directory."""
    if not name.startswith(PREFIX):
        return None
    try:
        return datetime.strptime(name[len(PREFIX) :], STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None


@contextmanager
def building(target: Path) -> Iterator[Path]:
    """A temporary directory beside ``target``, renamed to it when the block ends; removed
    (with everything in it) if the block raises."""
    if target.exists():
        raise BackupError(f"{target} exists already")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        yield temporary
        os.rename(temporary, target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def seal(directory: Path, manifest: Manifest) -> None:
    """Hash every file under ``directory`` into the manifest and write it (fsynced)."""
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        manifest.parts[path.relative_to(directory).as_posix()] = sha256_of_file(path)
    with (directory / MANIFEST).open("w", encoding="utf-8") as out:
        out.write(manifest.to_json())
        out.flush()
        os.fsync(out.fileno())


def check(archive: Path) -> Manifest:
    """The archive's manifest, once every part is present with the hash it names and no
    file is there that it does not name; a ``BackupError`` naming the first that is not."""
    if not archive.is_dir():
        raise BackupError(f"{archive}: no such backup directory")
    manifest = Manifest.read(archive)
    present = {p.relative_to(archive).as_posix() for p in archive.rglob("*") if p.is_file()} - {
        MANIFEST
    }
    for name in sorted(set(manifest.parts) | present):
        if name not in manifest.parts:
            raise BackupError(f"{archive}: damaged: {name} is not in the manifest")
        path = archive / name
        if not path.is_file():
            raise BackupError(f"{archive}: damaged: {name} is missing")
        if sha256_of_file(path) != manifest.parts[name]:
            raise BackupError(f"{archive}: damaged: the sha256 of {name} does not match")
    return manifest
