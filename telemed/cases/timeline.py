"""The case timeline: everything that happened on a case's consults, in time order.

Composes the domains' own reads (events, messages, attachments, note versions with what
each amendment changed, follow-ups, outcomes, consent given and withdrawn); it holds no SQL
of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any

from sqlmodel import Session, col, select

from telemed.accounts import repository as accounts_repository
from telemed.accounts.models import User
from telemed.attachments import repository as attachments_repository
from telemed.audit import service as audit
from telemed.audit.models import AuditAction
from telemed.cases.models import Case
from telemed.consent import repository as consent_repository
from telemed.consults import auth as consult_auth
from telemed.consults import repository as consults_repository
from telemed.consults.models import Consult
from telemed.db import pk
from telemed.errors import NotFound
from telemed.i18n import N_
from telemed.messages import service as messages
from telemed.notes import repository as notes_repository
from telemed.notes import service as notes
from telemed.notes.diff import FieldDiff, diff_versions
from telemed.notes.schemas import NotePublic


@dataclass(frozen=True)
class Item:
    at: datetime
    kind: str  # event, message, attachment, note, follow_up, outcome, consent
    consult_id: int
    data: Any
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Timeline:
    case: Case
    consults: list[Consult]
    items: list[Item]
    people: dict[int, User]


def _visible_consults(session: Session, user: User, case_id: int) -> list[Consult]:
    return list(
        session.exec(
            select(Consult)
            .where(Consult.case_id == case_id, consult_auth.visibility_clause(user))
            .order_by(col(Consult.created_at))
        )
    )


def build(session: Session, user: User, case_id: int) -> Timeline:
    case = session.get(Case, case_id)
    consults = _visible_consults(session, user, case_id) if case else []
    if case is None or not consults:
        raise NotFound(N_("case %(case_id)s not found"), case_id=case_id)
    ids = [pk(c) for c in consults]
    items: list[Item] = []
    for consult in consults:
        cid = pk(consult)
        items += [Item(e.at, "event", cid, e) for e in consults_repository.events_of(session, cid)]
        items += [Item(m.created_at, "message", cid, m) for m in messages.thread(session, consult)]
        items += [
            Item(a.created_at, "attachment", cid, a)
            for a, _uploader in attachments_repository.attachments_of(session, cid)
            if not (a.kind == "audio" and a.message_id is not None)  # shown with its message
        ]
    for series in notes.visible_series(session, user, ids):
        previous: NotePublic | None = None
        for version in series.versions:
            changes: list[FieldDiff] = diff_versions(previous, version) if previous else []
            items.append(
                Item(
                    version.signed_at or version.updated_at,
                    "note",
                    version.consult_id,
                    version,
                    {"changes": changes},
                )
            )
            previous = version
        current = series.current
        if current and current.follow_up_on:
            due = datetime.combine(current.follow_up_on, time(8, 0), tzinfo=UTC)
            items.append(Item(due, "follow_up", current.consult_id, current))
    items += [
        Item(o.recorded_at, "outcome", o.consult_id, o)
        for o in notes_repository.outcomes_of(session, ids)
    ]
    items += [
        Item(r.given_at, "consent", r.consult_id, r)
        for r in consent_repository.records_of_many(session, ids)
    ]
    items.sort(key=lambda item: item.at)
    actor_ids = {
        getattr(i.data, name, None)
        for i in items
        for name in ("actor_id", "author_id", "uploaded_by_id", "recorded_by_id")
    }
    people = accounts_repository.users_by_id(session, {a for a in actor_ids if isinstance(a, int)})
    audit.record_access(
        session,
        user,
        AuditAction.read,
        "case_timeline",
        case_id,
        case_id=case_id,
        detail="consults " + ",".join(map(str, ids)),
    )
    return Timeline(case, consults, items, people)
