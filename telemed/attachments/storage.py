"""Files on disk: content-addressed blobs and the partial files of resumable uploads.

Blobs live at ``data_dir/blobs/<sha[:2]>/<sha>``: the name is the sha256 of the content, so
a file is written once however often it is attached (deduplication) and its name proves its
content (evidence). Every write goes to a temporary file in the same file system, is
fsynced, then renamed into place with ``os.replace``: a reader never sees half a file and a
crash leaves at worst an orphaned temporary file, never a wrong blob.

Partial uploads live at ``data_dir/uploads/<id>.part``. The database row's offset, not the
file's length, is the truth about how much arrived: a chunk is written (and fsynced) before
the offset that covers it is committed, and the next chunk overwrites anything past that
offset.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

COPY_BUFFER = 1024 * 1024
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Blob:
    sha256: str
    size: int


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable (POSIX; a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(COPY_BUFFER):
            digest.update(chunk)
    return digest.hexdigest()


class BlobStore:
    """Content-addressed, write-once files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        if not SHA256_HEX.match(sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def _install(self, sha256: str, write: Callable[[BinaryIO], object]) -> Path:
        target = self.path(sha256)
        if target.is_file():
            return target  # deduplicated: the same content is already stored
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                write(out)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temporary, 0o440)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        _fsync_directory(target.parent)
        return target

    def put_bytes(self, data: bytes) -> Blob:
        sha256 = hashlib.sha256(data).hexdigest()
        self._install(sha256, lambda out: out.write(data))
        return Blob(sha256, len(data))

    def put_file(self, source: Path) -> Blob:
        """Copy ``source`` in (streamed: the file need not fit in memory)."""
        sha256 = sha256_of_file(source)

        def copy(out: BinaryIO) -> None:
            with source.open("rb") as src:
                while chunk := src.read(COPY_BUFFER):
                    out.write(chunk)

        self._install(sha256, copy)
        return Blob(sha256, source.stat().st_size)


class PartFiles:
    """The partial files of open uploads under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, upload_id: str) -> Path:
        if not UPLOAD_ID.match(upload_id):
            raise ValueError(f"not an upload id: {upload_id!r}")
        return self.root / f"{upload_id}.part"

    def create(self, upload_id: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.path(upload_id).touch(exist_ok=True)

    def size(self, upload_id: str) -> int | None:
        try:
            return self.path(upload_id).stat().st_size
        except FileNotFoundError:
            return None

    def write_at(self, upload_id: str, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset`` and cut off anything after it (a stale retry)."""
        with self.path(upload_id).open("r+b") as part:
            part.seek(offset)
            part.write(data)
            part.truncate(offset + len(data))
            part.flush()
            os.fsync(part.fileno())

    def remove(self, upload_id: str) -> None:
        self.path(upload_id).unlink(missing_ok=True)
