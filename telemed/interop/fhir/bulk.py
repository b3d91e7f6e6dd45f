"""Bulk export: every consult created or changed since a date, as NDJSON, one file per
resource type (the FHIR Bulk Data format: ``Patient.ndjson``, ``ServiceRequest.ndjson``,
... and a ``manifest.json`` listing them).

- **Atomic.** :func:`published` hands out a hidden staging directory next to the target
  and renames it onto the target only when everything was written and the audit rows
  committed; on any error the staging directory is removed, so the target is either
  absent or complete.
- **Bounded memory.** Consults are read in keyset pages of ``batch``, each page's records
  loaded in a fixed number of queries (``record.load_records``), written, and dropped from
  the session. What stays in memory is the set of shared resources already written
  (patients, practitioners, roles, organizations: each is written once), a few bytes per
  person or place.
- **Audited.** Every consult exported is an ``export`` row of the audit trail, committed
  in one short unit of work after the files are written and before the directory appears
  (the reading itself holds no write lock: see :func:`export`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from array import array
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session

from telemed.accounts.models import User
from telemed.audit import service as audit
from telemed.audit.models import AuditAction
from telemed.audit.service import Recorder
from telemed.db import make_engine
from telemed.errors import ValidationFailed
from telemed.i18n import N_
from telemed.interop.fhir.record import consults_since, load_records
from telemed.interop.fhir.resources import build
from telemed.interop.fhir.resources.common import Resource, checked, instant, key
from telemed.uow import Units

#: Written once per export, however many consults name them.
SHARED_TYPES = frozenset({"Patient", "Practitioner", "PractitionerRole", "Organization"})
BATCH = 200


def parse_since(text: str, zone: ZoneInfo, now: datetime, name: str = "--since") -> datetime:
    """``--since DATE``: the start of that day in ``zone`` (the platform's calendar); a
    malformed date or one in the future is refused, naming the option (``name``: the
    command line's, or the exports page's field)."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationFailed(
            N_("%(name)s: %(text)r is not a date; write it as YYYY-MM-DD, e.g. 2026-11-01"),
            field="since",
            name=name,
            text=text,
        ) from None
    start = datetime.combine(day, time(0), zone)
    if start > now:
        raise ValidationFailed(
            N_("%(name)s: %(day)s is in the future (today is %(today)s)"),
            field="since",
            name=name,
            day=day.isoformat(),
            today=now.astimezone(zone).date().isoformat(),
        )
    return start


@contextmanager
def published(out: Path) -> Iterator[Path]:
    """A staging directory, renamed to ``out`` when the block ends normally and removed
    when it raises. ``out`` must not exist, or be an empty directory."""
    out = out.absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValidationFailed(
            f"--out: {out} already exists and is not an empty directory; give a new one",
            field="out",
        )
    if not out.parent.is_dir():
        raise ValidationFailed(f"--out: the directory {out.parent} does not exist", field="out")
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    except OSError as exc:
        raise ValidationFailed(
            f"--out: cannot write in {out.parent} ({exc.strerror})", field="out"
        ) from None
    try:
        yield staging
        os.rename(staging, out)  # atomic; replaces an empty directory
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@dataclass
class ExportReport:
    consults: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # resources per type
    #: (consult id, case id) of every consult written, flat: 16 bytes a consult.
    exported: array[int] = field(default_factory=lambda: array("q"))


class _Files:
    """One NDJSON file per resource type, opened on its first resource."""

    def __init__(self, directory: Path, stack: ExitStack) -> None:
        self.directory = directory
        self.stack = stack
        self.files: dict[str, IO[str]] = {}
        self.counts: dict[str, int] = {}

    def write(self, resource: Resource) -> None:
        resource_type = resource["resourceType"]
        out = self.files.get(resource_type)
        if out is None:
            path = self.directory / f"{resource_type}.ndjson"
            out = self.files[resource_type] = self.stack.enter_context(
                path.open("w", encoding="utf-8")
            )
        out.write(json.dumps(resource, ensure_ascii=False, separators=(",", ":")))
        out.write("\n")
        self.counts[resource_type] = self.counts.get(resource_type, 0) + 1


def reading_engine(url: str) -> Engine:
    """The engine :func:`export` reads with: on SQLite its transactions are deferred (a
    reader in WAL mode takes no lock that stops a writer), on PostgreSQL each is one
    ``REPEATABLE READ`` snapshot (the export is consistent however long it takes)."""
    engine = make_engine(url, sqlite_immediate=False)
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="REPEATABLE READ")
    return engine


def export(
    reading: Engine,
    units: Units,
    out: Path,
    since: datetime,
    now: datetime,
    base_url: str,
    *,
    batch: int = BATCH,
) -> ExportReport:
    """The whole export, as `telemed fhir export` runs it: the records are read in one
    transaction on ``reading`` (:func:`reading_engine`: the clinics go on writing during a
    long export), then the audit rows are written in one short unit of work, then the
    directory appears."""
    with published(out) as staging:
        with Session(reading) as session:
            report = write(session, staging, since, now, base_url, batch=batch)
        with units.one() as session:
            record_export(session, report, since)
    return report


def write(
    session: Session,
    directory: Path,
    since: datetime,
    now: datetime,
    base_url: str,
    *,
    batch: int = BATCH,
) -> ExportReport:
    """Write the export into ``directory`` (the staging directory of :func:`published`);
    reads only."""
    report = ExportReport()
    written: set[str] = set()
    with ExitStack() as stack:
        files = _Files(directory, stack)
        for consults in consults_since(session, since, batch):
            for record in load_records(session, consults):
                for resource in build(record, base_url):
                    if resource["resourceType"] in SHARED_TYPES:
                        if key(resource) in written:
                            continue
                        written.add(key(resource))
                    files.write(checked(resource))
                report.exported.extend((record.consult_id, record.consult.case_id))
                report.consults += 1
            session.expunge_all()  # this page is written: let its rows go
        report.counts = dict(sorted(files.counts.items()))
    _manifest(directory, report, since, now, base_url)
    return report


def record_export(
    session: Session,
    report: ExportReport,
    since: datetime,
    actor: User | None = None,
    record: Recorder = audit.record,
) -> None:
    """One ``export`` audit row per consult written, by ``actor`` (None: the command
    line), with ``record``: in the caller's unit of work by default, or
    ``audit.record_access`` from a page whose unit only reads."""
    pairs = report.exported
    for consult_id, case_id in zip(pairs[::2], pairs[1::2], strict=True):
        record(
            session,
            actor,
            AuditAction.export,
            "consult",
            consult_id,
            case_id=case_id,
            consult_id=consult_id,
            detail=f"FHIR bulk export (since {instant(since)})",
        )


def _manifest(
    directory: Path, report: ExportReport, since: datetime, now: datetime, base_url: str
) -> None:
    """What the Bulk Data ``$export`` manifest says, for a reader that expects one."""
    manifest = {
        "transactionTime": instant(now),
        "request": f"{base_url.rstrip('/')}/fhir/$export?_since={instant(since)}",
        "requiresAccessToken": False,
        "output": [{"type": t, "url": f"{t}.ndjson", "count": n} for t, n in report.counts.items()],
        "error": [],
        "extension": {"consults": report.consults},
    }
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
