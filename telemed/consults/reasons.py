"""The sentences a consult's history records ("accepted by X", "outcome recorded: referral
avoided"), each registered once, so that it is written in English and read in the viewer's
language.

The English stays what the database keeps (``ConsultEvent.reason``, an offer's or an
appointment change's reason): it is the evidence, exported as it is (FHIR) and read by
support, and rows written before this module translate too, since nothing changes in them.
A writer builds its text with :func:`english`; a page shows it through :func:`translate`,
which finds the registered sentence the stored text is an instance of (its placeholders as
named groups, the whole text matched, the sentence with most fixed words first) and renders
the catalogue's translation with the values put back: a count as written, an outcome in
words (``telemed.labels``), a day as the viewer's language writes dates, a nested system
reason translated in turn, and names and what a person typed as they are. A text matching
no sentence (a cancel reason typed by the clinician) is shown as stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from telemed.i18n import N_, gettext
from telemed.labels import label
from telemed.timefmt import format_day

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
DAY_FORMAT = "%d %b %Y"  # how a day is written into a stored sentence ("05 Dec 2026")
# What a placeholder's value looks like, by its name; anything else is any text.
_SHAPES = {"count": r"\d+", "days": r"\d+", "day": r"\d{2} [A-Za-z]{3} \d{4}"}
# Every sentence and its pattern, most fixed words first.
REGISTERED: list[tuple[str, re.Pattern[str]]] = []


def _register(msgid: str) -> str:
    parts = _PLACEHOLDER.split(msgid)  # literal, name, literal, name, ..., literal
    body = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>{_SHAPES.get(part, '.+?')})"
        for i, part in enumerate(parts)
    )
    REGISTERED.append((msgid, re.compile(body, re.S)))
    # The sentence with most fixed words first ("assigned by A to B: why" before "assigned
    # by A to B"), so that a longer one's words never end up inside a shorter one's value.
    REGISTERED.sort(key=lambda entry: -len(_PLACEHOLDER.sub("", entry[0])))
    return msgid


# A consult's events (telemed.consults, offers, appointments, sessions, notes).
CREATED = _register(N_("created"))
OFFERED_TO = _register(N_("offered to %(names)s"))
ACCEPTED_BY = _register(N_("accepted by %(name)s"))
DECLINED_BY = _register(N_("declined by %(name)s: %(reason)s"))
OFFER_EXPIRED = _register(N_("offer expired without an answer: %(names)s"))
OFFER_WITHDRAWN = _register(N_("offer to %(name)s withdrawn: %(why)s"))
OTHERS_WITHDRAWN = _register(N_("%(count)s other offer(s) withdrawn"))
OPEN_WITHDRAWN = _register(N_("%(count)s open offer(s) withdrawn"))
CONSENT_WITHDRAWN = _register(N_("consent withdrawn: %(count)s open offer(s) withdrawn"))
TOO_MANY_FAILURES = _register(N_("%(count)s offers declined or expired"))
DEADLINE_AT_RISK = _register(N_("the deadline is at risk"))
NO_VERIFIED = _register(N_("no verified specialist of this specialty"))
NOBODY_NOW = _register(N_("no eligible specialist is available now"))
NOBODY = _register(N_("no eligible specialist is available"))
ASSIGNED = _register(N_("assigned by %(coordinator)s to %(specialist)s"))
ASSIGNED_WHY = _register(N_("assigned by %(coordinator)s to %(specialist)s: %(reason)s"))
BOOKED_WITH = _register(N_("session booked with %(name)s"))
START_NOW = _register(N_("accepted to start now"))
NO_FREE_TIME = _register(
    N_("%(name)s has no free time in the next %(days)s days; book the session on the consult page")
)
ASKED_EARLY = _register(N_("%(name)s asked to start the call now"))
RESCHEDULED_BY = _register(N_("appointment rescheduled by %(name)s: %(reason)s"))
CANCELLED_TO_ANOTHER = _register(
    N_("appointment cancelled by %(name)s: %(reason)s; the consult goes to another specialist")
)
CANCELLED_WITH_REQUEST = _register(
    N_("appointment and consult request cancelled by %(name)s: %(reason)s")
)
BOTH_JOINED = _register(N_("both sides joined the call"))
CALL_ENDED = _register(N_("the call ended"))
ENDED_FROM_CALL = _register(N_("ended from the call"))
NOBODY_JOINED = _register(N_("nobody joined within 15 minutes of the start"))
ONLY_SOME_JOINED = _register(N_("%(absent)s did not join (only %(present)s did)"))
ANSWERED_BY_NOTE = _register(N_("answered by %(name)s's signed note"))
OUTCOME_RECORDED = _register(N_("outcome recorded: %(outcome)s"))
FOLLOW_UP_DUE = _register(N_("follow-up due on %(day)s"))
# An offer's reason (telemed.offers, shown in the specialist's inbox).
ANOTHER_ACCEPTED = _register(N_("another specialist accepted"))
ASSIGNED_BY_COORDINATOR = _register(N_("assigned by a coordinator"))
PATIENT_WITHDREW = _register(N_("the patient withdrew consent to share the case"))
ACCOUNT_DEACTIVATED = _register(N_("the specialist's account was deactivated"))
SPECIALIST_CANCELLED = _register(N_("the specialist cancelled the appointment: %(reason)s"))


def english(msgid: str, **values: object) -> str:
    """The stored text of a registered sentence; a day value is a ``date``."""
    shown = {
        name: f"{value:{DAY_FORMAT}}" if name == "day" else value for name, value in values.items()
    }
    return msgid % shown


def parse(text: str) -> tuple[str, dict[str, str]] | None:
    """The registered sentence ``text`` was written from and its values; None if none."""
    for msgid, pattern in REGISTERED:
        found = pattern.fullmatch(text)
        if found is not None:
            return msgid, found.groupdict()
    return None


def _day(value: str) -> str:
    try:
        return format_day(datetime.strptime(value, DAY_FORMAT).replace(tzinfo=UTC).date())
    except ValueError:  # not a day after all ("31 Feb 2026"): as stored
        return value


# How a value reads in the viewer's language, by its placeholder's name; others as stored.
_VALUES: dict[str, Callable[[str], str]] = {
    "outcome": lambda words: label(words.replace(" ", "_")),
    "day": _day,
    "why": lambda text: translate(text),
}


def translate(text: str | None) -> str:
    """``text`` (a stored reason) in the language in force; as stored if no sentence fits."""
    if not text:
        return ""
    found = parse(text)
    if found is None:
        return text
    msgid, values = found
    shown = {name: _VALUES.get(name, str)(value) for name, value in values.items()}
    return gettext(msgid) % shown
