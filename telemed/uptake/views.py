"""The coordinator's uptake pages: the dashboard, the consults behind a number, and their
CSV downloads (``?format=csv``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from telemed.audit import service as audit
from telemed.deps import CurrentUser, NowDep, SessionDep, UnitsDep
from telemed.errors import Forbidden, ValidationFailed
from telemed.i18n import N_
from telemed.uptake import auth, charts, consults, csv, filters, map, service
from telemed.web.access import COORDINATORS
from telemed.web.templating import render

router = APIRouter(include_in_schema=False)
Text = Annotated[str | None, Query()]


def _filters(request: Request, db: SessionDep, now: NowDep) -> filters.Filters:
    q = request.query_params
    return filters.parse(
        db,
        now,
        period=q.get("period"),
        from_=q.get("from"),
        to=q.get("to"),
        district=q.get("district"),
        facility=q.get("facility"),
        specialty=q.get("specialty"),
        urgency=q.get("urgency"),
    )


def _format(value: str | None) -> str:
    if value not in (None, "", "html", "csv"):
        raise ValidationFailed(N_("format must be 'html' or 'csv'"), field="format")
    return value or "html"


def _csv(name: str, chunks: Iterator[bytes]) -> StreamingResponse:
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="uptake-{name}.csv"'},
    )


@router.get("/coordinator/uptake", response_model=None)
def uptake(
    request: Request,
    user: CurrentUser,
    db: SessionDep,
    now: NowDep,
    format: Text = None,
    table: Text = None,
) -> HTMLResponse | StreamingResponse:
    auth.ensure_coordinator(user)
    kind = _format(format)
    chosen = _filters(request, db, now)
    board = service.dashboard(db, user, chosen, now)
    if kind == "csv":
        if not table:
            raise ValidationFailed(N_("table: which table to download"), field="table")
        t = board.table(table)
        return _csv(t.key, csv.encode(t.columns, csv.table_rows(t)))
    return render(
        request,
        "uptake.html",
        {
            "board": board,
            "f": chosen,
            "charts": [(charts.render(c), t) for c, t in board.charts],
            "map": map.render(board.district_requests, chosen),
            "options": service.filter_options(db),
            "query": chosen.query(),
        },
    )


@router.get("/coordinator/uptake/consults", response_model=None)
def uptake_consults(
    request: Request,
    user: CurrentUser,
    db: SessionDep,
    units: UnitsDep,
    now: NowDep,
    indicator: Text = None,
    bucket: Text = None,
    category: Text = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    format: Text = None,
) -> HTMLResponse | StreamingResponse:
    try:
        auth.ensure_coordinator(user)
    except Forbidden:
        audit.record_refusal(
            db, user, "uptake_consults", indicator or "", detail="not a coordinator"
        )
        raise
    kind = _format(format)
    chosen = _filters(request, db, now)
    if not indicator:
        raise ValidationFailed(N_("indicator: which number's consults to list"), field="indicator")
    if kind == "csv":
        statement = consults.consults_export(
            db, user, chosen, indicator, bucket=bucket, category=category
        )

        def chunks() -> Iterator[bytes]:
            with units.one() as session:  # the request's own session ends before streaming
                yield from csv.encode(
                    consults.CSV_COLUMNS, consults.export_rows(session, statement)
                )

        return _csv(f"{indicator}-consults", chunks())
    listed = consults.consults_behind(
        db, user, chosen, indicator, bucket=bucket, category=category, page=page
    )
    extra = {"indicator": indicator, "bucket": bucket, "category": category}
    return render(
        request,
        "uptake_consults.html",
        {
            "listed": listed,
            "query": chosen.query(**extra),
            "back": chosen.query(),
            "page_query": lambda p: chosen.query(**extra, page=str(p)),
        },
    )


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {"uptake": COORDINATORS, "uptake_consults": COORDINATORS}
