"""Exporting a month to a file and pushing it to DHIS2, once per (period, data set).

Both take ``Units`` because each is several units of work: the values are read in one,
and the HTTP request to DHIS2 is made outside any transaction (on SQLite a transaction
holds the database's single write lock, and DHIS2 may take a minute to answer), then the
outcome is recorded in another. Nothing here reads settings: the caller passes the server,
the mapping file and "now".

Aggregates are not clinical data, but they leave the system: each export and each push
(failed and dry runs included) is written to the audit log, as ``download`` (a file) and
``upload`` (to DHIS2), by the system actor (the command line or the job).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from sqlmodel import Session, col, select

from telemed.accounts.models import User
from telemed.audit import service as audit
from telemed.audit.models import AuditAction
from telemed.audit.service import Recorder
from telemed.errors import TelemedError, ValidationFailed
from telemed.facilities.models import Facility
from telemed.interop.dhis2 import client
from telemed.interop.dhis2.client import Dhis2Error, Dhis2Server, ImportSummary
from telemed.interop.dhis2.mapping import Mapping, check_facilities, load
from telemed.interop.dhis2.models import Dhis2Push
from telemed.interop.dhis2.payload import Format, Payload, Period, build, data_values
from telemed.uow import Units
from telemed.uptake.monthly import facility_month_values


def load_mapping(session: Session, path: Path) -> Mapping:
    """The mapping file, checked, its facility codes against the database."""
    mapping = load(path)
    check_facilities(mapping, session.exec(select(Facility.code)).all())
    return mapping


def month_payload(
    session: Session, mapping: Mapping, period: Period, fmt: Format, now: datetime
) -> Payload:
    values = data_values(facility_month_values(session, period.first), mapping)
    return build(fmt, mapping.data_set, period, values, now)


def downloaded(
    session: Session,
    actor: User | None,
    mapping_path: Path,
    period: Period,
    fmt: Format,
    now: datetime,
    *,
    to: str,
    record: Recorder = audit.record,
) -> Payload:
    """The month's document, audited as a ``download`` by ``actor`` (None: the command
    line) to ``to`` (a file, or "the exports page"). ``record`` writes the audit row: in
    the caller's unit of work by default; a page, whose unit only reads, passes
    ``audit.record_access``, which takes no write lock."""
    mapping = load_mapping(session, mapping_path)
    payload = month_payload(session, mapping, period, fmt, now)
    record(
        session,
        actor,
        AuditAction.download,
        "dhis2_export",
        str(period),
        detail=f"{fmt} for data set {mapping.data_set}: {payload.count} values to {to}",
    )
    return payload


@dataclass(frozen=True)
class Exported:
    path: Path
    payload: Payload


def export_file(
    units: Units, mapping_path: Path, period: Period, fmt: Format, out: Path, now: datetime
) -> Exported:
    """Write the month's payload to ``out`` atomically: a temporary file in the same
    directory, renamed over ``out`` once written, synced and audited. On any error there is
    no file (and an earlier ``out`` is left as it was)."""
    if not out.parent.is_dir():
        raise ValidationFailed(f"directory {out.parent} does not exist", field="out")
    temporary: Path | None = None
    try:
        with units.one() as session:
            payload = downloaded(session, None, mapping_path, period, fmt, now, to=str(out))
            temporary = _write_temporary(out, payload.body)
        os.replace(temporary, out)
        _sync_directory(out.parent)
    finally:
        if temporary is not None:
            temporary.unlink(missing_ok=True)  # gone already once renamed
    return Exported(out, payload)


def _write_temporary(out: Path, body: bytes) -> Path:
    handle, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    path = Path(name)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(body)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _sync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); a platform without directory handles skips it."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@dataclass(frozen=True)
class Pushed:
    period: Period
    data_set: str
    values: int
    summary: ImportSummary | None  # None: not sent, pushed already
    pushed_before: datetime | None = None


def push_month(
    units: Units,
    server: Dhis2Server,
    mapping_path: Path,
    period: Period,
    now: datetime,
    *,
    fmt: Format = Format.json,
    force: bool = False,
    dry_run: bool = False,
) -> Pushed:
    """Send ``period`` unless DHIS2 accepted it already (``force`` sends again). A dry run
    asks DHIS2 to check the document without storing it, and records no push. DHIS2's
    refusal or silence is recorded (the next run retries) and raised as ``Dhis2Error``."""
    with units.one() as session:
        mapping = load_mapping(session, mapping_path)
        row = _row(session, period, mapping.data_set)
        if row is not None and row.pushed_at is not None and not (force or dry_run):
            return Pushed(period, mapping.data_set, row.values_sent, None, row.pushed_at)
        payload = month_payload(session, mapping, period, fmt, now)
    outcome = _Outcome(period, mapping.data_set, payload, fmt, dry_run, server.endpoint, now)
    try:
        summary = client.post(server, payload, dry_run=dry_run)
    except Dhis2Error as exc:
        with units.one() as session:
            outcome.record(session, None, exc.message)
        raise
    with units.one() as session:
        outcome.record(session, summary, "")
    return Pushed(period, mapping.data_set, payload.count, summary)


def request_push(
    session: Session, user: User, mapping_path: Path, period: Period, now: datetime
) -> Dhis2Push:
    """A coordinator asks for ``period`` to be sent (again, if DHIS2 had it already: a
    month corrected after its push). The scheduler's ``dhis2`` job sends it on its next run
    (:func:`send_requested`); asking twice before then is one request. The mapping is
    checked now, so that a wrong file is reported to the coordinator, not to the log."""
    mapping = load_mapping(session, mapping_path)
    row = _row(session, period, mapping.data_set)
    if row is None:
        row = Dhis2Push(period=str(period), data_set=mapping.data_set, last_attempt_at=now)
    if row.requested_at is None:
        row.requested_at, row.requested_by_id = now, user.id
        audit.record(
            session,
            user,
            AuditAction.update,
            "dhis2_push",
            f"{period} {mapping.data_set}",
            detail="push requested from the exports page",
        )
    session.add(row)
    session.flush()
    return row


def send_requested(
    units: Units, server: Dhis2Server, mapping_path: Path, now: datetime
) -> list[str]:
    """Send every month a coordinator asked for, forced, one at a time; what happened to
    each, for the job's log. A refusal is recorded on its row (and the request cleared
    with it, so that it is not sent again every minute) and does not stop the others."""
    with units.one() as session:
        periods = session.exec(
            select(Dhis2Push.period)
            .where(Dhis2Push.requested_at.is_not(None))  # type: ignore[union-attr]
            .order_by(Dhis2Push.period)
        ).all()
    done = []
    for text in periods:
        period = Period(date.fromisoformat(f"{text}-01"))
        try:
            pushed = push_month(units, server, mapping_path, period, now, force=True)
        except TelemedError as exc:
            done.append(f"{period}: failed ({exc.message})")
            continue
        summary = pushed.summary
        done.append(f"{period}: {summary.line() if summary else 'not sent'}")
    return done


def recent_pushes(session: Session, periods: list[Period]) -> dict[str, Dhis2Push]:
    """The push rows of ``periods``, by period (any data set: the newest attempt)."""
    rows = session.exec(
        select(Dhis2Push)
        .where(Dhis2Push.period.in_([str(p) for p in periods]))  # type: ignore[attr-defined]
        .order_by(col(Dhis2Push.last_attempt_at))
    ).all()
    return {row.period: row for row in rows}


def _row(session: Session, period: Period, data_set: str) -> Dhis2Push | None:
    return session.exec(
        select(Dhis2Push).where(Dhis2Push.period == str(period), Dhis2Push.data_set == data_set)
    ).first()


@dataclass(frozen=True)
class _Outcome:
    period: Period
    data_set: str
    payload: Payload
    fmt: Format
    dry_run: bool
    endpoint: str
    now: datetime

    def record(self, session: Session, summary: ImportSummary | None, error: str) -> None:
        """The push row (not for a dry run) and the audit row."""
        result = summary.line() if summary else f"failed: {error}"
        kind = "dry run " if self.dry_run else ""
        audit.record(
            session,
            None,
            AuditAction.upload,
            "dhis2_push",
            f"{self.period} {self.data_set}",
            detail=f"{kind}{self.fmt}, {self.payload.count} values to {self.endpoint}: {result}",
        )
        if self.dry_run:
            return
        row = _row(session, self.period, self.data_set)
        if row is None:
            row = Dhis2Push(period=str(self.period), data_set=self.data_set)
        row.attempts += 1
        row.last_attempt_at = self.now
        row.requested_at = row.requested_by_id = None  # answered, whatever the answer
        row.values_sent = self.payload.count
        row.last_error = error[:500]
        if summary is None:
            row.last_status = "failed"
        else:
            row.last_status = summary.status
            row.imported, row.updated = summary.imported, summary.updated
            row.ignored, row.deleted = summary.ignored, summary.deleted
            row.conflicts = len(summary.conflicts)
            if summary.accepted:
                row.pushed_at = self.now
        session.add(row)
        session.flush()
