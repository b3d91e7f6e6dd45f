"""Notification pages: the user's notifications (shown ones become read); the
coordinators' list of failed and retrying deliveries with "retry now". Also the unread
count of the header link (``unread_notifications`` in every template)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine
from sqlalchemy.pool import NullPool
from sqlmodel import Session

from telemed.db import make_engine
from telemed.deps import CurrentUser, NowDep, SessionDep, SettingsDep
from telemed.notifications import service
from telemed.web.templating import render, templates

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)


@router.get("/notifications")
def notifications(
    request: Request,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
) -> HTMLResponse:
    found = service.my_notifications(db, user, page, settings.page_size)
    new = {n.id for n in found.items if n.read_at is None}
    service.mark_read(db, user, [i for i in new if i is not None], now)
    return render(request, "notifications.html", {"listing": found, "new": new})


@router.get("/coordinator/deliveries")
def deliveries(request: Request, user: CurrentUser, db: SessionDep) -> HTMLResponse:
    return render(
        request, "coordinator_deliveries.html", {"rows": service.problem_deliveries(db, user)}
    )


@router.post("/coordinator/deliveries/{message_id}/retry")
def retry(message_id: int, user: CurrentUser, db: SessionDep, now: NowDep) -> Response:
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
