"""Jinja2 environment for the pages: autoescaping everywhere, times in the viewer's zone,
words in the viewer's language (``jinja2.ext.i18n`` with ``telemed.i18n``'s catalogues)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from telemed import i18n
from telemed.accounts import auth as accounts_auth
from telemed.accounts.models import User
from telemed.consults import reasons
from telemed.deps import now_of
from telemed.labels import label
from telemed.timefmt import clip_length, format_day, format_number, local_time
from telemed.validation import zone_choices
from telemed.web import jscatalogue
from telemed.web.assets import ASSETS

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates"  # shipped in the wheel

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.autoescape = True  # patient text is never rendered unescaped
# {% trans %} and _() look the language up per call (a context variable set for each
# request), so one environment serves every language and no global language is switched.
templates.env.add_extension("jinja2.ext.i18n")
templates.env.install_gettext_callables(  # type: ignore[attr-defined]
    i18n.gettext, i18n.ngettext, newstyle=True
)


def viewer_zone(request: Request) -> ZoneInfo:
    auth = getattr(request.state, "auth", None)
    if auth is not None:
        return ZoneInfo(auth.user.timezone)
    return ZoneInfo(request.app.state.settings.default_timezone)


def duration(start: datetime | None, end: datetime) -> str:
    """A compact duration such as '3 d 4 h', '2 h 05 min' or '7 min'. Templates pass the
    page's ``now`` (the application clock's) as the end of a duration still running."""
    if start is None:
        return ""
    seconds = max(0, int((end - start).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min"


def translated(text: object) -> object:
    """``text`` in the reader's language when the catalogue has it (a heading or a code made
    by a read model), else as it is; a number or an empty cell unchanged."""
    if isinstance(text, i18n.Joined):
        return text.in_language()
    return i18n.gettext(text) if isinstance(text, str) and text else text


templates.env.filters["duration"] = duration
templates.env.filters["clip_length"] = clip_length
templates.env.filters["day"] = format_day  # a date (no time), e.g. {{ d | day("%d %b") }}
templates.env.filters["number"] = format_number
templates.env.filters["label"] = label  # a state, urgency, role or specialty code in words
# A stored history sentence ("accepted by X", telemed.consults.reasons) in the viewer's words.
templates.env.filters["reason"] = reasons.translate
# Words made elsewhere (a table's column heading), in the catalogue under the same English:
# plain gettext, without the %-formatting of _() (a heading may hold a literal "%").
templates.env.filters["translated"] = translated


@pass_context
def csrf_input(context: Context, token: str | None = None) -> Markup:
    """The hidden CSRF field every POST form carries, written once so that no form forgets
    it or spells it differently (tests/test_templates_csrf.py holds every form to it).

    Without ``token`` it is the signed-in session's token; the login and registration pages,
    which have no session yet, pass the token of their own pre-session cookie. A form
    rendered with neither could never be posted, so that is an error in the page, raised
    where it is made rather than as a 403 when someone presses the button.
    """
    value = token if token is not None else context.get("csrf_token")
    if not value:
        raise ValueError("csrf_input(): no session CSRF token on this page and none passed")
    return Markup('<input type="hidden" name="csrf_token" value="{}">').format(value)


templates.env.globals["csrf_input"] = csrf_input
templates.env.globals["zone_choices"] = zone_choices  # the time-zone picker (_fields.html)
# {{ static_url("call.js") }}: /static/call.js?v=<hash of its content>, cached a year
# (telemed.web.assets); a page never names a static file without it.
templates.env.globals["static_url"] = ASSETS.url


@dataclass(frozen=True)
class Nav:
    """Which links the header shows the viewer, decided here rather than by comparing
    ``user.role`` in the template (each page checks its own access again)."""

    new_consult: bool = False  # clinicians request consults
    facility_schedule: bool = False  # clinicians: their facility's schedule
    specialist_links: bool = False  # offers, schedule, availability, profile
    coordination: bool = False  # specialists to verify, escalations, deliveries, links
    administration: bool = False  # admins: users and facilities

    @classmethod
    def of(cls, user: User | None) -> Nav:
        if user is None:
            return cls()
        clinician = accounts_auth.is_clinician(user)
        return cls(
            new_consult=clinician,
            facility_schedule=clinician,
            specialist_links=accounts_auth.is_specialist(user),
            coordination=accounts_auth.is_coordinator(user),
            administration=accounts_auth.is_admin(user),
        )


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    zone = viewer_zone(request)
    auth = getattr(request.state, "auth", None)
    user = auth.user if auth else None
    full: dict[str, Any] = {
        "auth": auth,
        "user": user,
        "nav": Nav.of(user),
        "csrf_token": auth.csrf_token if auth else None,
        "zone": zone,
        "local": lambda value, fmt="%d %b %Y %H:%M": local_time(value, zone, fmt),
        "now": now_of(request),
        "lang": i18n.current_language(),  # <html lang>, and the language switch
        "ui_languages": i18n.LANGUAGE_NAMES,  # not "languages": pages pass their own
        "js_catalogue": jscatalogue.catalogue(i18n.current_language()),  # <body data-i18n>
    }
    full.update(context or {})
    return templates.TemplateResponse(request, name, full, status_code=status_code, headers=headers)


def render_error_page(
    request: Request, status_code: int, message: str, headers: dict[str, str] | None = None
) -> HTMLResponse:
    return render(
        request,
        "error.html",
        {"status_code": status_code, "message": message},
        status_code,
        headers,
    )
