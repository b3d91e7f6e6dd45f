"""Calendar invitations (RFC 5545 / iTIP) made with ``icalendar``.

METHOD:REQUEST books or moves the event, METHOD:CANCEL removes it; the UID is the
appointment's own and never changes, the SEQUENCE is bumped on every change, so a calendar
updates the one event instead of adding another. Times are UTC (``...Z``); calendars show
them in each reader's zone. No patient text goes into an invitation: the summary names the
consult, the description links to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr

from icalendar import Calendar, Event, vCalAddress, vText

from telemed.accounts.models import User
from telemed.appointments.models import Appointment, AppointmentStatus
from telemed.consults.models import Consult
from telemed.i18n import gettext
from telemed.labels import label
from telemed.settings import Settings

PRODID = "-//Telemed Lesotho//Appointments//EN"
CONTENT_TYPE = "text/calendar"
DEFAULT_ORGANIZER = "telemed@localhost"


@dataclass(frozen=True)
class Invitation:
    filename: str
    method: str  # REQUEST or CANCEL
    data: bytes

    @property
    def content_type(self) -> str:
        return f'{CONTENT_TYPE}; charset="utf-8"; method={self.method}'


def consult_reference(consult: Consult) -> str:
    """E.g. "#12 (paediatrics, video)", in the language in force."""
    return f"#{consult.id} ({label(consult.specialty)}, {label(consult.mode)})"


def consult_path(consult: Consult) -> str:
    return f"/consults/{consult.id}"


def consult_url(settings: Settings, consult: Consult) -> str:
    base = settings.public_base_url.rstrip("/")
    return base + consult_path(consult)


def organizer_address(settings: Settings) -> str:
    _, address = parseaddr(settings.mail_from)
    return address or DEFAULT_ORGANIZER


def _address(email: str, name: str) -> vCalAddress:
    address = vCalAddress(f"mailto:{email}")
    address.params["cn"] = vText(name)
    return address


def invitation(
    settings: Settings,
    appointment: Appointment,
    consult: Consult,
    *,
    specialist: User,
    clinician: User,
    now: datetime,
) -> Invitation:
    """The appointment's invitation as it stands now: REQUEST, or CANCEL once cancelled."""
    cancelled = appointment.status == AppointmentStatus.cancelled
    method = "CANCEL" if cancelled else "REQUEST"
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", method)
    event = Event()
    link = consult_url(settings, consult)
    event.add("uid", appointment.uid)
    event.add("sequence", appointment.sequence)
    event.add("dtstamp", now)
    event.add("dtstart", appointment.starts_at)
    event.add("dtend", appointment.ends_at)
    # In the language in force: the reader's (appointments.notices.send, the download).
    event.add("summary", gettext("Telemed consult %(ref)s") % {"ref": consult_reference(consult)})
    event.add("description", gettext("Open the consult in Telemed: %(link)s") % {"link": link})
    event.add("url", link)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "OPAQUE")
    organizer = _address(organizer_address(settings), "Telemed")
    event.add("organizer", organizer)
    for person in (specialist, clinician):
        attendee = _address(person.email, person.full_name)
        attendee.params["role"] = vText("REQ-PARTICIPANT")
        if not cancelled:
            attendee.params["partstat"] = vText("ACCEPTED")
        event.add("attendee", attendee)
    calendar.add_component(event)
    return Invitation(f"telemed-consult-{consult.id}.ics", method, calendar.to_ical())
