"""Notification pages: the user's notifications (read only when the user says so: a GET
changes nothing, since a prefetch or a crawler must not mark a clinician's notices read); the
coordinators' list of failed and retrying deliveries with "retry now". Also the unread
count of the header link (``unread_notifications`` in every template)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine
from sqlalchemy.pool import NullPool
from sqlmodel import Session

from telemed.db import make_engine, pk
from telemed.deps import CurrentUser, NowDep, SessionDep, SettingsDep
from telemed.notifications import service
from telemed.validation import Id
from telemed.web.access import COORDINATORS, OWN
from telemed.web.templating import render, templates

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)


@router.get("/notifications")
def notifications(
    request: Request,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
) -> HTMLResponse:
    found = service.my_notifications(db, user, page, settings.page_size)
    new = [pk(n) for n in found.items if n.read_at is None]
    return render(request, "notifications.html", {"listing": found, "new": set(new)})


@router.post("/notifications/read")
def mark_read(
    user: CurrentUser,
    db: SessionDep,
    now: NowDep,
    ids: Annotated[list[Id], Form(alias="id", max_length=1000)] = [],  # noqa: B006
    page: Annotated[int, Form(ge=1, le=100000)] = 1,
) -> Response:
    """ "Mark these read": the new ones the page showed (someone else's ids are ignored)."""
    service.mark_read(db, user, ids, now)
    return RedirectResponse(f"/notifications?page={page}", status_code=303)


@router.get("/coordinator/deliveries")
def deliveries(request: Request, user: CurrentUser, db: SessionDep) -> HTMLResponse:
    return render(
        request, "coordinator_deliveries.html", {"rows": service.problem_deliveries(db, user)}
    )


@router.post("/coordinator/deliveries/{message_id}/retry")
def retry(message_id: Id, user: CurrentUser, db: SessionDep, now: NowDep) -> Response:
    service.retry_now(db, user, message_id, now)
    return RedirectResponse("/coordinator/deliveries", status_code=303)


def _reader(request: Request) -> Engine:
    """An engine for the header's count. On SQLite its transactions are deferred: reading
    beside the request's own (immediate, write-locked) transaction must not wait for it."""
    state = request.app.state
    reader: Engine | None = getattr(state, "notifications_reader", None)
    if reader is None:
        engine: Engine = state.engine
        if engine.dialect.name == "sqlite":
            url = engine.url.render_as_string(hide_password=False)
            # No pool: nothing stays open after the app is gone (a SQLite open is cheap).
            reader = make_engine(url, sqlite_immediate=False, poolclass=NullPool)
        else:
            reader = engine
        state.notifications_reader = reader
    return reader


def unread_notifications(request: Request) -> int | None:
    """The logged-in user's unread count (one COUNT query), or None if not logged in or the
    count cannot be read (an error page must still render)."""
    auth = getattr(request.state, "auth", None)
    if auth is None:
        return None
    try:
        with Session(_reader(request)) as session:
            return service.unread_count(session, auth.user)
    except Exception:  # the header never breaks a page
        log.warning("could not count unread notifications", exc_info=True)
        return None


templates.env.globals["unread_notifications"] = unread_notifications

#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {
    "notifications": OWN,
    "mark_read": OWN,
    "deliveries": COORDINATORS,
    "retry": COORDINATORS,
}
