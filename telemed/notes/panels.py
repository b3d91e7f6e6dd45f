"""The notes and outcome section of the consult page, and the outcomes' labels (also the
case timeline's). Not a view: the consult page's builder and other pages import it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from telemed.accounts.models import User
from telemed.consults.models import Consult
from telemed.db import pk
from telemed.notes import auth, repository, service
from telemed.notes.models import ConsultOutcome
from telemed.notes.service import NoteSeries


@dataclass(frozen=True)
class NotesPanel:
    """What ``templates/_notes.html`` shows: the note series the user may see (drafts only
    their author's), the outcomes, and what the user may add."""

    series: list[NoteSeries]
    outcomes: list[ConsultOutcome]
    can_write_note: bool
    can_record_outcome: bool

    @property
    def author_ids(self) -> set[int]:
        return {v.author_id for s in self.series for v in s.versions}


def panel(db: Session, user: User, consult: Consult) -> NotesPanel:
    consult_id = pk(consult)
    return NotesPanel(
        series=service.visible_series(db, user, [consult_id]),
        outcomes=repository.outcomes_of(db, [consult_id]),
        can_write_note=auth.can_write_note(db, user, consult),
        can_record_outcome=auth.can_record_outcome(user, consult),
    )
