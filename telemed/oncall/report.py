"""The coordinators' week: per specialty who is on call when, and the hours nobody covers,
shown in the clinics' zone (Maseru). A read model of the rota; it changes nothing."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from scheduling.availability import first_instant
from telemed.accounts.models import User
from telemed.consults import repository as consults_repository
from telemed.oncall import auth, repository, rota
from telemed.oncall.schemas import RotaPublic, SpanPublic, SpecialtyRota
from telemed.oncall.service import available, weekly

WEEK = timedelta(days=7)


def _span(start: datetime, end: datetime, zone: ZoneInfo, who: str = "") -> SpanPublic:
    a, b = start.astimezone(zone), end.astimezone(zone)
    if b.date() == a.date() or (b.time() == time(0) and b.date() == a.date() + timedelta(days=1)):
        until = "24:00" if b.date() > a.date() else f"{b:%H:%M}"
    else:
        until = f"{b:%a %d %b %H:%M}"
    return SpanPublic(start=f"{a:%a %d %b %H:%M}", end=until, who=who)


def week_rota(session: Session, user: User, now: datetime, zone_name: str) -> RotaPublic:
    """The coming seven days from midnight today in ``zone_name`` (Maseru for the
    coordinators): per specialty who is on call when, and the hours nobody covers."""
    auth.ensure_coordinator(user)
    zone = ZoneInfo(zone_name)
    first = now.astimezone(zone).date()
    start = first_instant(datetime.combine(first, time(0)), zone)
    end = first_instant(datetime.combine(first + WEEK, time(0)), zone)
    covered: dict[str, list[tuple[datetime, datetime, str]]] = defaultdict(list)
    people: dict[str, dict[int, User]] = {}
    for block in repository.all_blocks(session):
        code = block.specialty_code
        if code not in people:
            people[code] = available(session, code, now.date())
        person = people[code].get(block.user_id)
        if person is None:
            continue
        for a, b in rota.within(weekly(block), ZoneInfo(person.timezone), start, end):
            covered[code].append((a, b, person.full_name))
    rows = []
    for specialty in consults_repository.list_specialties(session):
        spans = sorted(covered.get(specialty.code, []))
        holes = rota.gaps([(a, b) for a, b, _ in spans], start, end)
        rows.append(
            SpecialtyRota(
                specialty=specialty.code,
                name=specialty.name,
                covered=[_span(a, b, zone, who) for a, b, who in spans],
                gaps=[_span(a, b, zone) for a, b in holes],
                uncovered_hours=round(rota.hours(holes), 2),
            )
        )
    return RotaPublic(
        time_zone=zone_name,
        week_start=f"{start.astimezone(zone):%a %d %b %Y}",
        week_end=f"{(end - timedelta(seconds=1)).astimezone(zone):%a %d %b %Y}",
        specialties=rows,
    )
