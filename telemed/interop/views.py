"""The coordinator's exports page: a month's DHIS2 document to download or to send, and
the FHIR bulk export of every consult since a date, as a zip of NDJSON files.

The same services as ``telemed dhis2`` and ``telemed fhir export`` (the page is for the
coordinator who has no shell on the server); only the audit's actor differs: the
coordinator, where the command line records the system. A push is not made by the page: it
is requested, and the scheduler's ``dhis2`` job sends it within a minute
(``dhis2.service.request_push``), so that no page waits on DHIS2.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from datetime import date
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlmodel import Session
from starlette.background import BackgroundTask

from telemed.accounts import auth as accounts_auth
from telemed.accounts.models import User
from telemed.audit import service as audit
from telemed.deps import CurrentUser, NowDep, SessionDep, SettingsDep
from telemed.errors import Conflict, Forbidden, ValidationFailed
from telemed.i18n import N_
from telemed.interop.dhis2 import service as dhis2
from telemed.interop.dhis2.payload import Format, Period
from telemed.interop.fhir import bulk
from telemed.settings import Settings
from telemed.uptake.filters import maseru_today
from telemed.web.access import COORDINATORS
from telemed.web.templating import render

router = APIRouter(include_in_schema=False)
Text = Annotated[str | None, Query()]

REFUSAL = "exports are for coordinators"
MONTHS_LISTED = 12
SUFFIXES = {Format.json: "json", Format.adx: "adx.xml"}


def _coordinator(db: Session, user: User, what: str) -> None:
    try:
        accounts_auth.ensure_coordinator(user, REFUSAL)
    except Forbidden:
        audit.record_refusal(db, user, what, "", detail="not a coordinator")
        raise


def _mapping(settings: Settings) -> Path:
    if settings.dhis2_mapping is None:
        raise Conflict(
            N_("no DHIS2 mapping file is set (TELEMED_DHIS2_MAPPING): see docs/interop.md"),
            field="period",
        )
    return settings.dhis2_mapping


def _period(text: str | None, today: date) -> Period:
    if not text:
        raise ValidationFailed(N_("period: which month, YYYY-MM"), field="period")
    return Period.parse(text, today)


def _months(today: date) -> list[Period]:
    months, period = [], Period.before(today)
    for _ in range(MONTHS_LISTED):
        months.append(period)
        period = Period.before(period.first)
    return months


@router.get("/coordinator/exports", response_model=None)
def exports(
    request: Request, user: CurrentUser, db: SessionDep, settings: SettingsDep, now: NowDep
) -> HTMLResponse:
    _coordinator(db, user, "exports")
    months = _months(maseru_today(now))
    return render(
        request,
        "coordinator_exports.html",
        {
            "months": months,
            "pushes": dhis2.recent_pushes(db, months),
            "mapping": settings.dhis2_mapping,
            "dhis2_url": settings.dhis2_url,
            "since": months[0].first.isoformat(),  # last month: what changed lately
        },
    )


@router.get("/coordinator/exports/dhis2", response_model=None)
def dhis2_download(
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    period: Text = None,
    format: Text = None,
) -> Response:
    """The month's ``dataValueSets`` JSON or ADX, as the CLI's ``dhis2 export`` writes it."""
    _coordinator(db, user, "dhis2_export")
    month = _period(period, maseru_today(now))
    if format not in (None, "", "json", "adx"):
        raise ValidationFailed(N_("format must be 'json' or 'adx'"), field="format")
    fmt = Format(format or "json")
    payload = dhis2.downloaded(
        db,
        user,
        _mapping(settings),
        month,
        fmt,
        now,
        to="the exports page",
        record=audit.record_access,
    )
    name = f"dhis2-{month}.{SUFFIXES[fmt]}"
    return Response(
        payload.body,
        media_type=payload.content_type,
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


@router.post("/coordinator/exports/dhis2/push")
def dhis2_push(
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    period: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    _coordinator(db, user, "dhis2_push")
    month = _period(period, maseru_today(now))
    if not settings.dhis2_url:
        raise Conflict(N_("no DHIS2 server is set (TELEMED_DHIS2_URL)"), field="period")
    dhis2.request_push(db, user, _mapping(settings), month, now)
    return RedirectResponse("/coordinator/exports#dhis2", status_code=303)


@router.get("/coordinator/exports/fhir", response_model=None)
def fhir_download(
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    since: Text = None,
) -> FileResponse:
    """Every consult created or changed since the date, as the FHIR Bulk Data files
    (``telemed fhir export``) in one zip. Written to a temporary file, never held in
    memory, and removed once sent; every consult in it is an ``export`` audit row."""
    _coordinator(db, user, "fhir_export")
    start = bulk.parse_since(since or "", ZoneInfo(settings.default_timezone), now, "since")
    directory = Path(tempfile.mkdtemp(prefix="telemed-fhir-"))
    archive = directory.with_suffix(".zip")
    try:
        with Session(db.get_bind()) as reading:  # expunged page by page, unlike the request's
            report = bulk.write(reading, directory, start, now, settings.public_base_url)
        bulk.record_export(db, report, start, user, audit.record_access)
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
            for path in sorted(directory.iterdir()):
                out.write(path, path.name)
    except BaseException:
        archive.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return FileResponse(
        archive,
        media_type="application/zip",
        filename=f"fhir-since-{start.astimezone(ZoneInfo(settings.default_timezone)):%Y-%m-%d}.zip",
        background=BackgroundTask(archive.unlink, missing_ok=True),
    )


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {
    "exports": COORDINATORS,
    "dhis2_download": COORDINATORS,
    "dhis2_push": COORDINATORS,
    "fhir_download": COORDINATORS,
}
