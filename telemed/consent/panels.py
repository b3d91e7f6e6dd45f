"""The consent section of the consult page (``templates/_consent.html``): what is in force,
every record (withdrawals stand out), and the clinician's forms. Not a view: the consult
page's builder imports it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from telemed.accounts import repository as accounts_repository
from telemed.accounts.models import User
from telemed.attachments import repository as attachments_repository
from telemed.attachments.models import AttachmentKind
from telemed.consent import auth, forms, repository
from telemed.consent.models import ConsentRecord
from telemed.consent.service import ConsentState
from telemed.consults.lifecycle import WAITING_STATES
from telemed.consults.models import Consult, ConsultState
from telemed.db import pk
from telemed.i18n import gettext


@dataclass(frozen=True)
class ConsentPanel:
    state: ConsentState
    records: list[ConsentRecord]  # newest first
    names: dict[int, str]  # recorded_by_id -> name
    can_record: bool
    photos: list[tuple[str, str]]  # the consult's image attachments: (id, filename)
    waiting_for_consent: bool  # a request that no specialist is offered until consent
    options: dict[str, list[tuple[str, str]]]

    def who(self, row: ConsentRecord) -> str:
        if row.consenter == "guardian":
            return gettext("%(name)s (%(relationship)s), guardian") % {
                "name": row.guardian_name,
                "relationship": row.guardian_relationship,
            }
        return gettext("the patient")


def panel(db: Session, user: User, consult: Consult) -> ConsentPanel:
    rows = repository.records_of(db, pk(consult))
    state = ConsentState(
        sharing=next((r for r in reversed(rows) if r.scope == "sharing"), None),
        call=next((r for r in reversed(rows) if r.scope == "call"), None),
    )
    people = accounts_repository.users_by_id(db, {r.recorded_by_id for r in rows})
    can_record = auth.can_record(user, consult)
    photos = (
        [
            (str(pk(a)), a.filename)
            for a, _uploader in attachments_repository.attachments_of(db, pk(consult))
            if a.kind == AttachmentKind.image
        ]
        if can_record
        else []
    )
    return ConsentPanel(
        state=state,
        records=list(reversed(rows)),
        names={i: u.full_name for i, u in people.items()},
        can_record=can_record,
        photos=photos,
        waiting_for_consent=ConsultState(consult.state) in WAITING_STATES
        and not state.sharing_given,
        options=forms.options(),
    )
