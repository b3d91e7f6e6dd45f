"""Directory pages: specialist self-registration, the specialist's own profile with an
onboarding checklist, the availability editor (a week grid in
the specialist's zone, with a preview of the concrete slots). The coordinators' pages are
in ``coordinator_views``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from scheduling import TimeSlot
from scheduling.availability import first_instant
from telemed.accounts.models import User
from telemed.accounts.security import new_token, token_digest, tokens_equal
from telemed.appointments import free_time
from telemed.consults import repository as consults_repository
from telemed.consults.models import Language
from telemed.deps import (
    SESSION_COOKIE,
    CurrentUser,
    NowDep,
    SessionDep,
    SettingsDep,
    WritingSessionDep,
    client_address,
)
from telemed.directory import auth, forms, service
from telemed.directory.models import RegistrationBody
from telemed.directory.schemas import ProfileFields, RegistrationIn
from telemed.errors import TelemedError, ValidationFailed
from telemed.i18n import N_, gettext, ngettext
from telemed.labels import label
from telemed.settings import Settings
from telemed.timefmt import format_day
from telemed.web.access import PUBLIC, SPECIALIST_OWN
from telemed.web.templating import render

router = APIRouter(include_in_schema=False)

# No session yet: a double-submit cookie stands in for the CSRF token, as on the login page.
REGISTER_CSRF_COOKIE = "telemed_register_csrf"
REGISTER_PATH = "/specialists/register"
REGISTERED_PATH = "/specialists/registered"
LANGUAGE_NAMES = {Language.sesotho: "Sesotho", Language.english: "English"}
AVAILABILITY_PATH = "/specialists/availability"
PREVIEW_DAYS = 7
MAX_PREVIEW_DAYS_AWAY = 366


def _register_page(
    request: Request,
    db: Session,
    values: dict[str, Any],
    errors: dict[str, str],
    status: int = 200,
) -> HTMLResponse:
    token = request.cookies.get(REGISTER_CSRF_COOKIE) or new_token()
    response = render(
        request,
        "specialist_register.html",
        {
            "register_csrf": token,
            "values": values,
            "errors": errors,
            "specialties": [(s.code, s.name) for s in consults_repository.list_specialties(db)],
            "languages": [(lang.value, name) for lang, name in LANGUAGE_NAMES.items()],
            "bodies": [(b.value, label(b.value)) for b in RegistrationBody],
        },
        status_code=status,
    )
    response.set_cookie(
        REGISTER_CSRF_COOKIE, token, httponly=True, samesite="strict", path=REGISTER_PATH
    )
    return response


@router.get(REGISTER_PATH)
def register_form(request: Request, db: SessionDep) -> HTMLResponse:
    return _register_page(request, db, {"languages": [], "specialties": [], "time_zone": ""}, {})


@router.post(REGISTER_PATH)
async def register_submit(
    request: Request, db: WritingSessionDep, settings: SettingsDep, now: NowDep
) -> Response:
    form = await request.form()
    values = forms.registration_values(form)
    cookie = request.cookies.get(REGISTER_CSRF_COOKIE, "")
    sent = str(form.get("csrf_token") or "")
    if not cookie or not tokens_equal(cookie, sent):
        errors = {"__all__": "Your form expired; please try again."}
        return _register_page(request, db, values, errors, 403)
    try:
        data = RegistrationIn.model_validate(values)
    except ValidationError as exc:
        return _register_page(request, db, values, forms.field_errors(exc), 422)
    try:
        service.register(db, settings, data, client_address(request), now)
    except TelemedError as exc:
        return _register_page(
            request, db, values, {exc.field or "__all__": exc.shown()}, exc.status_code
        )
    response = RedirectResponse(REGISTERED_PATH, status_code=303)
    response.delete_cookie(REGISTER_CSRF_COOKIE, path=REGISTER_PATH)
    return response


@router.get(REGISTERED_PATH)
def registered_page(request: Request) -> HTMLResponse:
    """What happens next, instead of a bare login page: a coordinator checks the
    registration, an e-mail says when (``telemed.onboarding``); meanwhile the specialist
    can log in and set their hours."""
    return render(request, "specialist_registered.html", {})


@dataclass(frozen=True)
class PreviewDay:
    day: date
    spans: list[tuple[str, str]]  # (in the specialist's zone, in the clinics' zone)


def _clock_span(start: datetime, end: datetime, zone: ZoneInfo, with_zone: bool) -> str:
    """``09:00-12:00 GMT``; both zone names when a clock change falls inside the span."""
    a, b = start.astimezone(zone), end.astimezone(zone)
    until = "24:00" if b.date() > a.date() and b.time() == time(0) else f"{b:%H:%M}"
    if not with_zone:
        later = b.date() > a.date() and until != "24:00"
        return f"{a:%H:%M}-{until}{' next day' if later else ''}"
    if a.tzname() == b.tzname():
        return f"{a:%H:%M}-{until} {b.tzname()}"
    return f"{a:%H:%M} {a.tzname()}-{until} {b.tzname()}"


def _preview(
    found: list[TimeSlot], zone: ZoneInfo, clinic: ZoneInfo, days: list[date]
) -> list[PreviewDay]:
    """The concrete slots of ``days`` joined into spans, day by day in the specialist's zone."""
    spans: dict[date, list[tuple[datetime, datetime]]] = {day: [] for day in days}
    for slot in found:
        joined = spans.get(slot.start.astimezone(zone).date())
        if joined is None:
            continue
        if joined and joined[-1][1] == slot.start:
            joined[-1] = (joined[-1][0], slot.end)
        else:
            joined.append((slot.start, slot.end))
    return [
        PreviewDay(
            day,
            [
                (_clock_span(a, b, zone, True), _clock_span(a, b, clinic, False))
                for a, b in spans[day]
            ],
        )
        for day in days
    ]


def _reference(zone: ZoneInfo, clinic: ZoneInfo, clinic_name: str, days: list[date]) -> str:
    """What 09:00 in the specialist's zone is at the clinics on ``days``, with any change."""
    said: list[tuple[date, str]] = []
    for day in days:
        at = first_instant(datetime.combine(day, time(9)), zone).astimezone(clinic)
        text = f"{at:%H:%M}"
        if at.date() != day:
            text += " the day before" if at.date() < day else " the next day"
        if not said or said[-1][1] != text:
            said.append((day, text))
    head = f"09:00 in {zone.key} is {said[0][1]} in {clinic_name}"
    rest = "".join(f", {text} from {day:%a %d %b}" for day, text in said[1:])
    return head + rest + "."


def _availability_page(
    request: Request,
    db: Session,
    settings: Settings,
    user: User,
    values: dict[str, str],
    cells: set[str],
    errors: dict[str, str],
    *,
    now: datetime,
    show_all: bool = False,
    week: date | None = None,
    off_grid: bool = False,
    status: int = 200,
) -> HTMLResponse:
    profile = service.get_profile(db, auth.ensure_specialist(user))
    zone = ZoneInfo(user.timezone)
    clinic = ZoneInfo(settings.clinician_timezone)
    clinic_name = settings.clinician_timezone.rsplit("/", 1)[-1].replace("_", " ")
    first_day = week or now.astimezone(zone).date()
    days = [first_day + timedelta(days=n) for n in range(PREVIEW_DAYS)]
    begin = first_instant(datetime.combine(first_day, time(0)), zone)
    end = first_instant(datetime.combine(days[-1] + timedelta(days=1), time(0)), zone)
    # Slots from the later of `begin` and now + notice: the notice counts from now only.
    notice = timedelta(minutes=profile.min_notice_minutes)
    since = max(now, begin - notice)
    found = service.upcoming_slots(db, settings, user, since, end - since)
    shown = {*forms.AVAILABILITY_FIELDS, forms.CELL_FIELD, "weekly"}
    placed: dict[str, str] = {}
    for field, message in errors.items():  # an error on a field not on the page goes on top
        placed.setdefault(field if field in shown else "__all__", message)
    return render(
        request,
        "specialist_availability.html",
        {
            "values": values,
            "errors": placed,
            "weekdays": list(zip(forms.DAY_FIELDS, forms.WEEKDAYS, strict=True)),
            "grid": forms.week_grid(cells, show_all),
            "show_all": show_all,
            "off_grid": off_grid,
            "typed": off_grid or any(f in placed for f in forms.DAY_FIELDS),
            "time_zone": zone.key,
            "same_zone": zone.key == clinic.key,
            "reference": _reference(zone, clinic, clinic_name, days),
            "clinic_name": clinic_name,
            "profile": profile,
            "eligible": service.is_eligible(profile, now.date()),
            "week": first_day,
            "preview": _preview(found, zone, clinic, days),
        },
        status_code=status,
    )


def _check_week(week: date | None, now: datetime) -> date | None:
    if week is not None and abs((week - now.date()).days) > MAX_PREVIEW_DAYS_AWAY:
        raise ValidationFailed(N_("preview a week within a year of today"), field="week")
    return week


@router.get(AVAILABILITY_PATH)
def availability_form(
    request: Request,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    hours: str = "",
    week: date | None = None,
) -> HTMLResponse:
    """The editor: the week grid ticked where the saved windows are, the other settings,
    and the concrete slots of the next 7 days (or of the 7 days from ``week``)."""
    current = service.get_availability(db, user)
    cells, off_grid = forms.cells_of_windows(current.weekly)
    return _availability_page(
        request,
        db,
        settings,
        user,
        forms.values_of(current),
        cells,
        {},
        show_all=hours == "all",
        week=_check_week(week, now),
        off_grid=off_grid,
        now=now,
    )


@router.post(AVAILABILITY_PATH)
async def availability_submit(
    request: Request, user: CurrentUser, db: SessionDep, settings: SettingsDep, now: NowDep
) -> Response:
    """Save the editor. The windows come from the grid's ticked cells (the page's Save
    button) or from the typed ``day_N`` fields (its fallback button, and any client that
    sends no grid). Everything is checked before anything is saved."""
    auth.ensure_specialist(user)
    form = await request.form()
    values = forms.availability_values(form)
    values["time_zone"] = values["time_zone"] or user.timezone  # blank: keep the zone
    source = str(form.get("source") or ("grid" if form.get("grid") else "text"))
    sent = [str(c) for c in form.getlist(forms.CELL_FIELD)]
    show_all = form.get("hours") == "all"
    if source == "grid":
        cells = set(sent)
    else:
        cells, _ = forms.cells_of_windows(service.get_availability(db, user).weekly)
    window_fields: list[str] = []
    try:
        if source not in ("grid", "text"):
            raise forms.FormErrors({"__all__": f"unknown source of windows {source[:20]!r}"})
        data, window_fields, _ = forms.to_availability(values, sent if source == "grid" else None)
        booked = free_time.booked_times(db, user, now)
        saver = service.save_availability(
            db, settings, user, data, values["time_zone"], now, booked=booked
        )
    except forms.FormErrors as exc:
        return _availability_page(
            request,
            db,
            settings,
            user,
            values,
            cells,
            exc.errors,
            now=now,
            show_all=show_all,
            status=422,
        )
    except TelemedError as exc:
        if exc.status_code not in (409, 422):  # 409: hours under a booked appointment
            raise
        errors = {forms.error_field(exc.field, window_fields): exc.shown()}
        return _availability_page(
            request,
            db,
            settings,
            user,
            values,
            cells,
            errors,
            now=now,
            show_all=show_all,
            status=exc.status_code,
        )
    if saver.timezone != user.timezone:
        # The page's zone comes from the session's user: forget the remembered one.
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            request.app.state.session_cache.forget(token_digest(cookie))
    return RedirectResponse(AVAILABILITY_PATH + ("?hours=all" if show_all else ""), status_code=303)


# --- the specialist's own profile and onboarding checklist ---------------------------------

PROFILE_PATH = "/specialists/profile"
SAVED_NOTICES = {  # called when the page is made: in the viewer's language
    "yes": lambda: gettext("Your profile is saved."),
    "reverify": lambda: gettext(
        "Your profile is saved. Your registration details changed, so a coordinator must"
        " verify them again: you receive no offers until then."
    ),
}


@dataclass(frozen=True)
class Step:
    label: str
    done: bool
    state: str  # "done", "pending", "rejected", "to do"
    link: str
    action: str


VERIFICATION_ACTIONS = {  # called when the page is made: in the viewer's language
    "done": lambda: gettext("Check your registration details"),
    "expired": lambda: gettext("Enter your renewed registration"),
    "pending": lambda: gettext("A coordinator checks your registration; check its details"),
    "rejected": lambda: gettext("Correct your registration details"),
}


def _checklist(standing: service.Onboarding) -> list[Step]:
    """The onboarding steps in words, each with where to do it."""
    state, action = standing.verification, VERIFICATION_ACTIONS[standing.verification]()
    hours, away = standing.hours_set, standing.away
    change_hours = gettext("Change your hours")
    return [
        Step(gettext("Registered"), True, "done", "#details", gettext("Check your details")),
        Step(gettext("Verified by a coordinator"), state == "done", state, "#registration", action),
        Step(
            gettext("Availability set"),
            hours,
            "done" if hours else "to do",
            AVAILABILITY_PATH,
            change_hours if hours else gettext("Set the hours when you can take consults"),
        ),
        Step(
            gettext("Not away"),
            not away,
            "to do" if away else "done",
            AVAILABILITY_PATH,
            gettext("Untick “Away” to receive offers again") if away else change_hours,
        ),
    ]


def _expiry_warning(expires_on: date, today: date) -> str:
    """Said when the registration expires within the reminder period or has expired."""
    left = service.days_to_expiry_warning(expires_on, today)
    if left is None:
        return ""
    day = format_day(expires_on)
    if left < 0:
        return gettext(
            "Your registration expired on %(day)s: you receive no offers until it is verified"
            " again. Enter your renewed registration below."
        ) % {"day": day}
    when = (
        gettext("today")
        if left == 0
        else ngettext("in %(num)d day", "in %(num)d days", left) % {"num": left}
    )
    return gettext(
        "Your registration expires on %(day)s (%(when)s). Once it is renewed, enter the new"
        " details below; after it expires you receive no offers until it is verified again."
    ) % {"day": day, "when": when}


def _profile_page(
    request: Request,
    db: Session,
    user: User,
    values: dict[str, Any] | None,
    errors: dict[str, str],
    *,
    now: datetime,
    notice: str = "",
    status: int = 200,
) -> HTMLResponse:
    """The stored profile (never the rejected input) above the form, which shows ``values``
    (the stored ones when None)."""
    user_id = auth.ensure_specialist(user)
    profile = service.get_profile(db, user_id)
    stored = db.get(User, user_id)  # the session's user may be a snapshot from before a save
    assert stored is not None
    shown = service.public(db, profile, stored, now.date())
    today = now.date()
    verifier = db.get(User, profile.verified_by_id) if profile.verified_by_id else None
    names = {s.code: s.name for s in consults_repository.list_specialties(db)}
    fields = {*forms.PROFILE_FIELDS, "specialties", "languages"}
    placed: dict[str, str] = {}
    for field, message in errors.items():
        placed.setdefault(field if field in fields else "__all__", message)
    standing = service.onboarding(db, stored, today)
    return render(
        request,
        "specialist_profile.html",
        {
            "profile": shown,
            "verifier": verifier.full_name if verifier else "",
            "specialty_names": [names.get(code, code) for code in shown.specialties],
            "language_names": [
                {lang.value: name for lang, name in LANGUAGE_NAMES.items()}.get(code, code)
                for code in shown.languages
            ],
            "warning": _expiry_warning(shown.registration_expires_on, today),
            "steps": _checklist(standing),
            "onboarded": standing.complete,
            "notice": notice,
            "values": forms.values_of_profile(shown, stored.phone) if values is None else values,
            "errors": placed,
            "specialties": [(code, name) for code, name in names.items()],
            "languages": [(lang.value, name) for lang, name in LANGUAGE_NAMES.items()],
            "bodies": [(b.value, label(b.value)) for b in RegistrationBody],
        },
        status_code=status,
    )


@router.get(PROFILE_PATH)
def profile_form(
    request: Request,
    user: CurrentUser,
    db: SessionDep,
    now: NowDep,
    saved: Literal["yes", "reverify"] | None = None,
) -> HTMLResponse:
    """Your profile, its verification, a warning before the registration expires and the
    onboarding checklist, above the form that edits it."""
    auth.ensure_specialist(user)
    return _profile_page(
        request, db, user, None, {}, notice=SAVED_NOTICES[saved]() if saved else "", now=now
    )


@router.post(PROFILE_PATH)
async def profile_submit(
    request: Request, user: CurrentUser, db: SessionDep, now: NowDep
) -> Response:
    """Save the profile through the same checks as ``PUT /api/v1/specialists/me``; changed
    registration details send it back to the verification queue, and the page says so."""
    auth.ensure_specialist(user)
    form = await request.form()
    values = forms.profile_values(form)
    try:
        data = ProfileFields.model_validate(values)
    except ValidationError as exc:
        return _profile_page(
            request, db, user, values, forms.field_errors(exc), status=422, now=now
        )
    try:
        saved = service.update_profile(db, user, data, now)
    except TelemedError as exc:
        if exc.status_code != 422:
            raise
        errors = {exc.field or "__all__": exc.shown()}
        return _profile_page(request, db, user, values, errors, status=422, now=now)
    if data.time_zone != user.timezone:
        # Pages take the viewer's zone from the session's user: forget the remembered one.
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            request.app.state.session_cache.forget(token_digest(cookie))
    return RedirectResponse(
        f"{PROFILE_PATH}?saved={'reverify' if saved.sent_back else 'yes'}", status_code=303
    )


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {
    "register_form": PUBLIC,
    "register_submit": PUBLIC,
    "registered_page": PUBLIC,
    "availability_form": SPECIALIST_OWN,
    "availability_submit": SPECIALIST_OWN,
    "profile_form": SPECIALIST_OWN,
    "profile_submit": SPECIALIST_OWN,
}
