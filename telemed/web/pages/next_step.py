"""The top of the consult page: where the consult stands and the one thing the reader
should do next, so that a clinician on a phone, or a specialist between patients, does not
scroll a page of history to find it.

Decided from the sections the page shows anyway (calls, appointment, consent, notes) and
the flags the page's builder already computed; nothing here reads the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from telemed.appointments.panels import AppointmentPanel
from telemed.consent.panels import ConsentPanel
from telemed.consults.lifecycle import FINAL_STATES, WAITING_STATES
from telemed.consults.models import Consult, ConsultState
from telemed.i18n import gettext
from telemed.notes.panels import NotesPanel
from telemed.sessions.panels import CallPanel

#: act: a button for the reader; wait: someone else acts; alert: something is wrong;
#: done: nothing more happens on the consult.
Tone = Literal["act", "wait", "alert", "done"]

#: Where the reader's advice (a signed note) and the outcome end the consult's work.
ADVICE_STATES = frozenset(
    {
        ConsultState.accepted,
        ConsultState.scheduled,
        ConsultState.in_session,
        ConsultState.completed,
        ConsultState.answered_async,
        ConsultState.follow_up_due,
    }
)
OUTCOME_STATES = frozenset(
    {ConsultState.completed, ConsultState.answered_async, ConsultState.follow_up_due}
)


@dataclass(frozen=True, slots=True)
class NextStep:
    """A sentence, and the link (or ``form``: the page's own form) that does it, if any."""

    tone: Tone
    text: str
    href: str | None = None
    label: str | None = None
    form: Literal["submit", "end"] | None = None


@dataclass(frozen=True, slots=True)
class Facts:
    """What the page's builder knows about the reader and the consult."""

    consult: Consult
    call: CallPanel
    appointment: AppointmentPanel | None
    consent: ConsentPanel
    notes: NotesPanel
    user_id: int
    can_submit: bool
    offered_to_reader: bool  # an open offer of this consult waits for the reader's answer
    coordinates: bool  # the reader is a coordinator


def next_step(f: Facts, now: datetime) -> NextStep:
    consult, state = f.consult, ConsultState(f.consult.state)
    base = f"/consults/{consult.id}"
    if state is ConsultState.draft:
        if f.can_submit:
            return NextStep(
                "act",
                gettext("A draft: nobody sees it until you send the request."),
                form="submit",
                label=gettext("Request consult"),
            )
        return NextStep("wait", gettext("A draft, not yet sent."))
    if state in FINAL_STATES:
        return NextStep("done", gettext("This consult is over; nothing more can be added."))
    if f.consent.waiting_for_consent:
        return NextStep(
            "alert",
            gettext(
                "No specialist is offered this consult until the patient's consent is recorded."
            ),
            href="#consent",
            label=gettext("Record consent"),
        )
    if state in WAITING_STATES:
        if f.offered_to_reader and state is ConsultState.offered:
            return NextStep(
                "act",
                gettext("You are asked to take this consult."),
                href="/offers",
                label=gettext("Accept or decline"),
            )
        if state is ConsultState.escalated and f.coordinates:
            return NextStep(
                "act",
                gettext("No specialist took it: assign one."),
                href="/coordinator/escalations",
                label=gettext("Escalations"),
            )
        if state is ConsultState.escalated:  # not "waiting": someone is on it
            return NextStep(
                "wait", gettext("No specialist has taken it yet; a coordinator is finding one.")
            )
        return NextStep("wait", gettext("Waiting for a specialist to accept."))
    if f.call.can_join:
        return NextStep(
            "act",
            gettext("The call is open."),
            href=f"{base}/call",
            label=gettext("Join the call"),
        )
    mine = [s for s in f.notes.series if s.latest.author_id == f.user_id]
    if f.notes.can_write_note and state in ADVICE_STATES:
        draft = next((s.latest for s in mine if s.latest.status == "draft"), None)
        if draft is not None:
            return NextStep(
                "act",
                gettext("Your note is a draft: the clinician sees it once you sign it."),
                href=f"{base}/notes/{draft.id}/edit",
                label=gettext("Finish and sign"),
            )
        if not any(s.current for s in mine) and state is not ConsultState.scheduled:
            return NextStep(
                "act",
                gettext("Write your advice for the clinician as a signed note."),
                href=f"{base}/notes/new",
                label=gettext("Write a note"),
            )
    if f.call.can_end:
        return NextStep(
            "act",
            gettext("The session was held. When nothing more is needed live:"),
            form="end",
            label=gettext("End consult (completed)"),
        )
    if f.notes.can_record_outcome and state in OUTCOME_STATES and not f.notes.outcomes:
        return NextStep(
            "act",
            gettext("Record what happened to the patient; that closes the consult."),
            href="#outcome-form",
            label=gettext("Record outcome"),
        )
    appointment = f.appointment.current if f.appointment else None
    if appointment is not None and appointment.status == "scheduled" and appointment.ends_at > now:
        return NextStep("wait", gettext("A session is booked; the call opens shortly before it."))
    if f.appointment is not None and f.appointment.can_book:
        return NextStep(
            "act",
            gettext("No session is booked yet."),
            href=f"{base}/appointment/book",
            label=gettext("Book a time"),
        )
    return NextStep("wait", gettext("Nothing for you to do now; replies appear below."))
