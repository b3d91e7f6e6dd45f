"""The consult page, built in one place for every view that shows it.

The consult's own view shows it; so do the other domains' views when a form posted from
it fails (an upload refused, a message too long) and the page is shown again with the
error beside its field. Each domain contributes its section through a module that is not
a view (``sessions.panels``, ``appointments.panels``, ``attachments.panels``,
``notes.panels``), so no domain's views import another's.

Role-dependent parts of the page are decided here, as flags (``can_*``), from each
domain's ``auth`` rules; the template never compares ``user.role`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from telemed.accounts import auth as accounts_auth
from telemed.accounts import repository as accounts_repository
from telemed.accounts.models import User
from telemed.appointments import panels as appointment_panels
from telemed.attachments import panels as attachment_panels
from telemed.audit import auth as audit_auth
from telemed.cases.models import Case
from telemed.consent import panels as consent_panels
from telemed.consults import auth as consult_auth
from telemed.consults import repository as consults_repository
from telemed.consults import service as consults
from telemed.consults.deps import CurrentConsult
from telemed.consults.lifecycle import WAITING_STATES, allowed_targets
from telemed.consults.models import Consult, ConsultState, ParticipantRelation
from telemed.db import pk
from telemed.deps import CurrentUser, NowDep, SessionDep, SettingsDep
from telemed.facilities import repository as facilities_repository
from telemed.interop.fhir import auth as fhir_auth
from telemed.messages import service as messages
from telemed.notes import panels as note_panels
from telemed.notes.models import OUTCOME_LABELS
from telemed.sessions import panels as call_panels
from telemed.settings import Settings
from telemed.web.pages.next_step import Facts, next_step
from telemed.web.templating import render

#: Messages shown unfolded above the reply box (the earlier ones fold).
RECENT_MESSAGES = 4


@dataclass(frozen=True)
class ConsultPage:
    """Everything the consult page needs from the request; :meth:`render` builds it."""

    request: Request
    db: Session
    user: User
    consult: Consult
    settings: Settings
    now: datetime

    def context(self) -> dict[str, Any]:
        db, user, consult = self.db, self.user, self.consult
        consult_id = pk(consult)
        participants = consults_repository.participants_of(db, consult_id)
        events = consults_repository.events_of(db, consult_id)
        notes = note_panels.panel(db, user, consult)
        people = accounts_repository.users_by_id(
            db,
            {p.user_id for p in participants}
            | {e.actor_id for e in events if e.actor_id}
            | notes.author_ids,
        )
        involved: dict[str, list[str]] = {}
        for p in participants:
            name = people[p.user_id].full_name if p.user_id in people else f"user {p.user_id}"
            names = involved.setdefault(p.relation, [])
            if name not in names:
                names.append(name)
        is_requester = consult_auth.is_requesting_clinician(user, consult)
        can_submit = is_requester and consult.state == ConsultState.draft
        call = call_panels.panel(db, self.settings, user, consult, self.now)
        appointment = appointment_panels.panel(db, user, consult, self.now, self.settings)
        consent = consent_panels.panel(db, user, consult)
        facts = Facts(
            consult=consult,
            call=call,
            appointment=appointment,
            consent=consent,
            notes=notes,
            user_id=pk(user),
            can_submit=can_submit,
            offered_to_reader=any(
                p.user_id == user.id and p.relation == ParticipantRelation.offered
                for p in participants
            ),
            coordinates=accounts_auth.is_coordinator(user),
        )
        thread = messages.thread(db, consult)
        return {
            "consult": consult,
            "case": db.get(Case, consult.case_id),
            "vitals": consults.vitals_of(consult),
            "events": events,
            "involved": involved,
            "people": people,
            "next_step": next_step(facts, self.now),
            # The latest messages and the reply box stay near the top of a phone's screen;
            # the earlier ones are folded above them.
            "thread_earlier": thread[:-RECENT_MESSAGES],
            "thread_recent": thread[-RECENT_MESSAGES:],
            "attachments": attachment_panels.panel(db, self.settings, consult),
            "facility_name": facilities_repository.facility_names(db).get(consult.facility_id, ""),
            "can_submit": can_submit,
            "can_cancel": is_requester
            and ConsultState.cancelled in allowed_targets(ConsultState(consult.state)),
            "can_read_audit": audit_auth.can_read_audit(user),
            "can_export_fhir": fhir_auth.can_export(db, user, consult),
            "waiting_states": WAITING_STATES,
            "note_series": notes.series,
            "outcomes": notes.outcomes,
            "outcome_labels": OUTCOME_LABELS,
            "can_write_note": notes.can_write_note,
            "can_record_outcome": notes.can_record_outcome,
            "call": call,
            "appointment": appointment,
            "consent": consent,
        }

    def render(
        self,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        """The page; with ``errors`` (field -> message) and the ``values`` typed, after a
        refused form, with ``status`` (e.g. 422)."""
        context = self.context() | {"errors": errors or {}, "values": values or {}}
        return render(self.request, "consult_detail.html", context, status_code=status)


async def consult_page(
    request: Request,
    consult: CurrentConsult,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> ConsultPage:
    """No I/O here (async: no threadpool hop); the page is built when rendered."""
    return ConsultPage(request, db, user, consult, settings, now)


#: The consult page of the request's consult (loaded and checked by ``CurrentConsult``).
ConsultPageDep = Annotated[ConsultPage, Depends(consult_page)]
