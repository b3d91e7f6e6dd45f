"""What specialists, clinicians and coordinators are told about offers.

Messages name the consult by number, specialty and urgency and never carry patient text:
they leave the system by e-mail and SMS. An emergency offer also goes by SMS, because an
emergency cannot wait for someone to notice an e-mail.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlmodel import Session

from telemed.accounts.models import User
from telemed.consults import reasons
from telemed.consults.models import Consult, Urgency
from telemed.i18n import gettext, use_language
from telemed.labels import label
from telemed.notifications.service import notify, notify_coordinators
from telemed.offers.models import ConsultOffer
from telemed.timefmt import local_time


def _label(consult: Consult) -> str:
    """E.g. "urgent paediatrics consult 12", in the language in force."""
    return gettext("%(urgency)s %(specialty)s consult %(id)s") % {
        "urgency": label(consult.urgency),
        "specialty": label(consult.specialty),
        "id": consult.id,
    }


def offered(
    session: Session, consult: Consult, offer: ConsultOffer, specialist: User, now: datetime
) -> None:
    """The specialist hears of the offer in their own language and zone."""
    with use_language(specialist.language):
        until = local_time(offer.expires_at, ZoneInfo(specialist.timezone), "%a %d %b %H:%M")
        names = {"consult": _label(consult), "until": until, "id": consult.id, "slot": ""}
        if offer.slot_start is not None:
            slot_time = local_time(
                offer.slot_start, ZoneInfo(specialist.timezone), "%a %d %b %H:%M"
            )
            names["slot"] = gettext("for %(time)s") % {"time": slot_time}
        emergency = consult.urgency == Urgency.emergency
        subject = gettext("New %(consult)s %(slot)s") % names
        if emergency:
            subject = gettext("EMERGENCY: %(subject)s") % {"subject": subject}
        notify(
            session,
            specialist,
            kind="offer",
            subject=subject.strip(),
            body=(
                (gettext("You are offered a %(consult)s %(slot)s.") % names).replace(" .", ".")
                + "\n"
                + gettext(
                    "Accept or decline by %(until)s; after that it goes to another specialist."
                )
                % names
            ),
            dedupe_key=f"offer:{offer.id}",
            link="/offers",
            sms=(
                gettext("Telemed EMERGENCY consult %(id)s: answer by %(until)s.") % names
                if emergency
                else None
            ),
            now=now,
        )


def accepted(session: Session, consult: Consult, specialist: User, now: datetime) -> None:
    """The requesting clinician hears who took the consult (a live one's booking notice
    with its invitation comes from the appointments)."""
    clinician = session.get(User, consult.created_by_id)
    if clinician is None:
        return
    with use_language(clinician.language):
        names = {"id": consult.id, "name": specialist.full_name, "consult": _label(consult)}
        notify(
            session,
            clinician,
            kind="accepted",
            subject=gettext("Consult %(id)s accepted by %(name)s") % names,
            body=gettext("%(name)s accepted your %(consult)s.") % names,
            dedupe_key=f"accepted:consult{consult.id}:specialist{specialist.id}:{now.isoformat()}",
            link=f"/consults/{consult.id}",
            now=now,
        )


def escalated(session: Session, consult: Consult, reason: str, now: datetime) -> None:
    """Every coordinator hears it in their own language, whoever's request caused the
    escalation (the reason is stored in English and read in theirs, ``consults.reasons``)."""

    def names() -> dict[str, object]:
        return {"consult": _label(consult), "id": consult.id, "reason": reasons.translate(reason)}

    notify_coordinators(
        session,
        kind="escalated",
        subject=lambda: gettext("Escalated: %(consult)s") % names(),
        body=lambda: (
            gettext("The %(consult)s needs a specialist assigned by hand: %(reason)s.") % names()
        ),
        dedupe_key=f"escalated:consult{consult.id}:{now.isoformat()}",
        link="/coordinator/escalations",
        sms=(
            (
                lambda: (
                    gettext("Telemed: emergency consult %(id)s escalated, assign a specialist.")
                    % names()
                )
            )
            if consult.urgency == Urgency.emergency
            else None
        ),
        now=now,
    )


def emergency_offered(session: Session, consult: Consult, count: int, now: datetime) -> None:
    """Every coordinator hears of an emergency the minute its first offers go out, by SMS
    as well as e-mail: if nobody accepts they are the next step, and must not first learn
    of it when the offers have run out (issue 15 saw that take ten minutes)."""

    def names() -> dict[str, object]:
        return {"consult": _label(consult), "id": consult.id, "count": count}

    notify_coordinators(
        session,
        kind="emergency_requested",
        subject=lambda: gettext("Emergency: %(consult)s") % names(),
        body=lambda: (
            gettext(
                "The %(consult)s is offered to %(count)s specialist(s). You are told again "
                "if none accepts in time."
            )
            % names()
        ),
        dedupe_key=f"emergency_requested:consult{consult.id}",
        link=f"/consults/{consult.id}",
        sms=lambda: (
            gettext(
                "Telemed: emergency consult %(id)s requested, offered to %(count)s specialist(s)."
            )
            % names()
        ),
        now=now,
    )


class Step(StrEnum):
    """The steps of an emergency the requesting clinician is told of."""

    offered = "offered"
    accepted = "accepted"
    escalated = "escalated"
    assigned = "assigned"


def clinician_step(
    session: Session,
    consult: Consult,
    step: Step,
    now: datetime,
    *,
    name: str = "",
    count: int = 0,
) -> None:
    """The clinician who requested an emergency hears of each step it takes, in the app
    and by SMS as well as e-mail: someone waiting with a bleeding patient must not have
    to reload the page to learn that nobody has answered yet. Other urgencies: nothing
    here (their clinician hears of the booking from the appointments)."""
    if consult.urgency != Urgency.emergency:
        return
    clinician = session.get(User, consult.created_by_id)
    if clinician is None:
        return
    with use_language(clinician.language):
        names = {"id": consult.id, "name": name, "count": count, "consult": _label(consult)}
        if step == Step.offered:
            subject = gettext("Consult %(id)s offered to %(count)s specialist(s)") % names
            sms = gettext("Telemed: emergency consult %(id)s offered to %(count)s specialist(s).")
        elif step == Step.accepted:
            subject = gettext("Consult %(id)s accepted by %(name)s") % names
            sms = gettext("Telemed: emergency consult %(id)s accepted by %(name)s. Open the call.")
        elif step == Step.escalated:
            subject = gettext("Consult %(id)s escalated to a coordinator") % names
            sms = gettext(
                "Telemed: no specialist has taken emergency consult %(id)s yet; a coordinator "
                "is finding one."
            )
        else:
            subject = gettext("Consult %(id)s assigned to %(name)s") % names
            sms = gettext("Telemed: emergency consult %(id)s assigned to %(name)s.")
        notify(
            session,
            clinician,
            kind=f"emergency_{step}",
            subject=subject,
            body=sms % names,
            dedupe_key=f"emergency_{step}:consult{consult.id}:{now.isoformat()}",
            link=f"/consults/{consult.id}",
            sms=sms % names,
            now=now,
        )
