"""The draft note's edit page (``/consults/{id}/notes/{note_id}/edit``, no JavaScript): only
the author opens and saves it, and only while it is a draft; a signed note is locked and is
amended instead. Refusals are audited like the API's."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest
from sqlmodel import Session, col, select

from telemed.accounts.models import Role
from telemed.audit.models import AuditAction, AuditEntry
from telemed.consults.models import ParticipantRelation
from tests.conftest import LoginFn
from tests.helpers import ApiClient, Users, consult_payload
from tests.test_notes import NOTE
from tests.test_sessions import involve


@dataclass
class Draft:
    consult_id: int
    note_id: int
    author: ApiClient
    nurse: ApiClient

    @property
    def page(self) -> str:
        return f"/consults/{self.consult_id}/notes/{self.note_id}/edit"

    @property
    def api(self) -> str:
        return f"/api/v1/consults/{self.consult_id}/notes"


@pytest.fixture
def draft(login: LoginFn, users: Users, db: Session) -> Draft:
    """A specialist's draft on a consult of the nurse's facility."""
    nurse = login(users.make(Role.clinician))
    specialist = users.make(Role.specialist)
    consult_id = nurse.post("/api/v1/consults", consult_payload()).json()["id"]
    involve(db, consult_id, specialist, ParticipantRelation.assigned)
    author = login(specialist)
    created = author.post(f"/api/v1/consults/{consult_id}/notes", NOTE)
    assert created.status_code == 201, created.text
    return Draft(consult_id, created.json()["id"], author, nurse)


def form(api: ApiClient, **changes: str) -> dict[str, str]:
    values = {
        "csrf_token": api.csrf,
        "subjective": str(NOTE["subjective"]),
        "objective": str(NOTE["objective"]),
        "assessment": str(NOTE["assessment"]),
        "plan": str(NOTE["plan"]),
        "diagnoses": "M30.3",
        "follow_up_on": str(NOTE["follow_up_on"]),
        "follow_up_instruction": str(NOTE["follow_up_instruction"]),
        "action": "draft",
    }
    return values | changes


def save(api: ApiClient, url: str, data: dict[str, str]) -> httpx.Response:
    return api.client.post(url, data=data, follow_redirects=False)


def stored(draft: Draft) -> dict[str, object]:
    [note] = draft.author.get(draft.api).json()
    assert isinstance(note, dict)
    return note


def refusals(db: Session, note_id: int) -> list[tuple[int | None, str]]:
    db.rollback()  # a fresh snapshot: refusals are written in their own transactions
    rows = db.exec(
        select(AuditEntry)
        .where(
            AuditEntry.action == AuditAction.denied,
            AuditEntry.object_type == "note",
            AuditEntry.object_id == str(note_id),
        )
        .order_by(col(AuditEntry.id))
    )
    return [(row.actor_id, row.detail.split(":")[0]) for row in rows]


def test_the_author_opens_the_draft_and_saves_it(draft: Draft, db: Session) -> None:
    page = draft.author.get(draft.page)
    assert page.status_code == 200
    assert f'action="{draft.page}"' in page.text
    assert "strawberry tongue" in page.text  # the draft's own text, to edit
    assert 'value="M30.3"' in page.text

    changed = form(draft.author, plan="Aspirin only; review in the morning.", diagnoses="M30.3")
    saved = save(draft.author, draft.page, changed)
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == f"/consults/{draft.consult_id}#notes"
    note = stored(draft)
    assert (note["status"], note["plan"]) == ("draft", "Aspirin only; review in the morning.")
    db.rollback()
    reads = db.exec(
        select(AuditEntry.detail).where(
            AuditEntry.action == AuditAction.read,
            AuditEntry.object_type == "note",
            AuditEntry.object_id == str(draft.note_id),
        )
    ).all()
    assert reads == ["version 1, to edit"]  # opening it is a read of clinical data


def test_bad_input_is_shown_on_the_form_and_nothing_is_saved(draft: Draft) -> None:
    refused = save(draft.author, draft.page, form(draft.author, diagnoses="X99.99", plan="new"))
    assert refused.status_code == 422
    assert "unknown ICD-10 code &#39;X99.99&#39;" in refused.text
    assert stored(draft)["plan"] == NOTE["plan"]


def test_others_are_refused_the_edit_page(
    draft: Draft, login: LoginFn, users: Users, db: Session
) -> None:
    """Those who may see the consult get 403 (audited on the note); those who may not see it
    get 404 (audited on the consult), as for every consult page."""
    offered = users.make(Role.specialist)
    involve(db, draft.consult_id, offered, ParticipantRelation.offered)
    may_see = {
        "the facility's clinician": draft.nurse,
        "a coordinator": login(users.make(Role.coordinator)),
        "an offered specialist": login(offered),
    }
    may_not_see = {
        "a specialist not on the consult": login(users.make(Role.specialist)),
        "a clinician of another facility": login(users.make(Role.clinician, facility="QUTHING")),
        "an admin": login(users.make(Role.admin)),
    }
    for who, api in (may_see | may_not_see).items():
        expected = 403 if who in may_see else 404
        assert api.get(draft.page).status_code == expected, who
        changed = form(api, plan="changed by someone else")
        assert save(api, draft.page, changed).status_code == expected, who
    assert stored(draft)["plan"] == NOTE["plan"]
    assert refusals(db, draft.note_id) == [
        (api.user.id, "forbidden") for api in may_see.values() for _ in ("open", "save")
    ]


def test_a_signed_note_cannot_be_edited_on_the_page(draft: Draft, db: Session) -> None:
    signed = draft.author.post(f"{draft.api}/{draft.note_id}/sign")
    assert signed.status_code == 200, signed.text

    page = draft.author.get(draft.page)
    assert page.status_code == 409
    assert "a signed note is locked; amend it instead" in page.text
    assert "<textarea" not in page.text  # no form to fill in

    attempt = save(draft.author, draft.page, form(draft.author, plan="changed after signing"))
    assert attempt.status_code == 409
    assert "a signed note is locked; amend it instead" in attempt.text
    note = stored(draft)
    assert (note["status"], note["plan"]) == ("signed", NOTE["plan"])
    assert refusals(db, draft.note_id) == [(draft.author.user.id, "conflict")] * 2


def test_a_note_of_another_consult_is_not_found(draft: Draft) -> None:
    other = draft.nurse.post("/api/v1/consults", consult_payload()).json()["id"]
    wrong = f"/consults/{other}/notes/{draft.note_id}/edit"
    assert draft.nurse.get(wrong).status_code == 404


def test_amending_an_old_version_on_the_page_says_why_it_is_refused(draft: Draft) -> None:
    """The refusal's field (``version``) is not on the form: the message shows at the top
    rather than being lost behind "Please correct the problem below"."""
    base = f"{draft.api}/{draft.note_id}"
    draft.author.post(f"{base}/sign")
    newer = draft.author.post(f"{base}/amendments", {**NOTE, "reason": "dose corrected"})
    assert newer.status_code == 201, newer.text
    old_amend = f"/consults/{draft.consult_id}/notes/{draft.note_id}/amend"
    attempt = save(draft.author, old_amend, form(draft.author, reason="again, on version 1"))
    assert attempt.status_code == 409
    assert "has been amended already; amend the latest version" in attempt.text
