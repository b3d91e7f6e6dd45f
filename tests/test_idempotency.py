"""``Idempotency-Key`` on every API POST that creates: a repeat returns the first answer.

A 2G link drops the answer to a POST; the page (or the offline queue) sends it again with
the same key. These tests send real repeats, mismatched bodies, malformed keys and two
copies at the same instant (a real race, two threads released by a barrier), on both
databases.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
from sqlmodel import Session, col, func, select

from telemed.accounts.models import Role
from telemed.attachments.models import Upload
from telemed.audit.models import AuditEntry
from telemed.consults.models import Consult
from telemed.idempotency.models import IdempotencyKey
from telemed.messages.models import Message
from telemed.notes.models import ConsultNote, ConsultOutcome
from tests.conftest import LoginFn
from tests.helpers import ApiClient, Users, consult_payload
from tests.process_helpers import join_all
from tests.test_notes import NOTE, assign

HEADER = "Idempotency-Key"


def new_key() -> str:
    return str(uuid.uuid4())


def count(db: Session, model: type, *where: object) -> int:
    db.rollback()  # a fresh snapshot: the app committed in its own sessions
    return int(db.exec(select(func.count()).select_from(model).where(*where)).one())  # type: ignore[arg-type]


@dataclass
class Setting:
    nurse: ApiClient
    specialist: ApiClient
    consult_id: int


@pytest.fixture
def setting(login: LoginFn, users: Users, db: Session) -> Setting:
    nurse = login(users.make(Role.clinician))
    specialist_user = users.make(Role.specialist)
    consult_id = nurse.post("/api/v1/consults", consult_payload()).json()["id"]
    assign(db, consult_id, specialist_user)
    return Setting(nurse, login(specialist_user), consult_id)


@dataclass(frozen=True)
class Creator:
    """One creating POST: who sends it, where, with what body, and what it creates."""

    name: str
    who: Callable[[Setting], ApiClient]
    url: Callable[[Setting], str]
    body: dict[str, object]
    changed: dict[str, object]
    created: Callable[[Session, Setting], int]


CREATORS = [
    Creator(
        "consult",
        lambda s: s.nurse,
        lambda s: "/api/v1/consults",
        consult_payload(),
        consult_payload(question="Another question entirely?"),
        lambda db, s: count(db, Consult),
    ),
    Creator(
        "message",
        lambda s: s.nurse,
        lambda s: f"/api/v1/consults/{s.consult_id}/messages",
        {"body": "Photos follow."},
        {"body": "Photos follow!"},
        lambda db, s: count(db, Message, col(Message.consult_id) == s.consult_id),
    ),
    Creator(
        "note",
        lambda s: s.specialist,
        lambda s: f"/api/v1/consults/{s.consult_id}/notes",
        NOTE,
        {**NOTE, "plan": "Something else."},
        lambda db, s: count(db, ConsultNote, col(ConsultNote.consult_id) == s.consult_id),
    ),
    Creator(
        "upload",
        lambda s: s.nurse,
        lambda s: f"/api/v1/consults/{s.consult_id}/uploads",
        {"filename": "rash.jpg", "length": 1000, "media_type": "image/jpeg"},
        {"filename": "rash.jpg", "length": 2000, "media_type": "image/jpeg"},
        lambda db, s: count(db, Upload, col(Upload.consult_id) == s.consult_id),
    ),
    Creator(
        "outcome",
        lambda s: s.nurse,
        lambda s: f"/api/v1/consults/{s.consult_id}/outcomes",
        {"outcome": "treated_locally", "detail": "IVIG given"},
        {"outcome": "referred", "detail": "to QMMH"},
        lambda db, s: count(db, ConsultOutcome, col(ConsultOutcome.consult_id) == s.consult_id),
    ),
]
IDS = [c.name for c in CREATORS]


@pytest.mark.parametrize("creator", CREATORS, ids=IDS)
def test_a_repeat_returns_the_first_answer_and_creates_nothing(
    creator: Creator, setting: Setting, db: Session
) -> None:
    api, url = creator.who(setting), creator.url(setting)
    before = creator.created(db, setting)
    key = new_key()
    first = api.post(url, creator.body, headers={HEADER: key})
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    assert creator.created(db, setting) == before + 1
    again = api.post(url, creator.body, headers={HEADER: key})
    assert again.status_code == 201, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert creator.created(db, setting) == before + 1
    # The replay handed out a stored answer: audited as a read of it, against the consult.
    stored = db.exec(select(IdempotencyKey).where(IdempotencyKey.key == key)).one()
    assert stored.user_id == api.user.id
    assert stored.consult_id == first.json().get("consult_id", first.json()["id"])
    replays = db.exec(
        select(AuditEntry).where(
            AuditEntry.object_type == "idempotent_response",
            AuditEntry.object_id == str(stored.id),
        )
    ).all()
    assert [(r.actor_id, r.action, r.consult_id) for r in replays] == [
        (api.user.id, "read", stored.consult_id)
    ]
    # Without a key, the same body is a new request and creates again.
    assert api.post(url, creator.body).status_code == 201
    assert creator.created(db, setting) == before + 2


@pytest.mark.parametrize("creator", CREATORS, ids=IDS)
def test_the_same_key_with_another_body_is_a_conflict(
    creator: Creator, setting: Setting, db: Session
) -> None:
    api, url = creator.who(setting), creator.url(setting)
    key = new_key()
    assert api.post(url, creator.body, headers={HEADER: key}).status_code == 201
    before = creator.created(db, setting)
    refused = api.post(url, creator.changed, headers={HEADER: key})
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["fields"][0]["field"] == HEADER
    assert HEADER in error["message"]
    assert creator.created(db, setting) == before
    first = db.exec(select(IdempotencyKey).where(IdempotencyKey.key == key)).one()
    denied = db.exec(
        select(AuditEntry).where(
            AuditEntry.action == "denied",
            AuditEntry.object_type == "idempotent_response",
            AuditEntry.object_id == str(first.id),
        )
    ).all()
    assert [(r.actor_id, r.consult_id) for r in denied] == [(api.user.id, first.consult_id)]
    assert "another body" in denied[0].detail


@pytest.mark.parametrize("creator", CREATORS, ids=IDS)
def test_a_malformed_key_is_refused_naming_the_header(
    creator: Creator, setting: Setting, db: Session
) -> None:
    api, url = creator.who(setting), creator.url(setting)
    before = creator.created(db, setting)
    for bad in ["short", "x" * 129, "has space-in-it", "ünïcode-key-1", ""]:
        refused = api.client.post(
            url, json=creator.body, headers={"X-CSRF-Token": api.csrf, HEADER: bad.encode()}
        )
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.json()["error"]["fields"][0]["field"] == HEADER
    assert creator.created(db, setting) == before


def test_a_key_is_bound_to_its_request_and_its_user(setting: Setting, db: Session) -> None:
    key = new_key()
    messages = f"/api/v1/consults/{setting.consult_id}/messages"
    assert setting.nurse.post(messages, {"body": "first"}, headers={HEADER: key}).status_code == 201
    # The same key and body on another route is another request: 409, not a replay.
    outcome = setting.nurse.post(
        f"/api/v1/consults/{setting.consult_id}/outcomes",
        {"body": "first"},
        headers={HEADER: key},
    )
    assert outcome.status_code == 409
    # Another user's identical key is their own key: it creates, and never sees the first.
    other = setting.specialist.post(messages, {"body": "first"}, headers={HEADER: key})
    assert other.status_code == 201
    assert "Idempotent-Replayed" not in other.headers
    assert other.json()["author_id"] == setting.specialist.user.id
    assert count(db, Message, col(Message.consult_id) == setting.consult_id) == 2
    # Key order in the JSON does not make another request.
    body = '{"outcome": "referred", "detail": "to QMMH"}'
    reordered = '{"detail": "to QMMH", "outcome": "referred"}'
    url = f"/api/v1/consults/{setting.consult_id}/outcomes"
    headers = {"X-CSRF-Token": setting.nurse.csrf, "Content-Type": "application/json"}
    key = new_key()
    first = setting.nurse.client.post(url, content=body, headers={**headers, HEADER: key})
    again = setting.nurse.client.post(url, content=reordered, headers={**headers, HEADER: key})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"


def test_a_failed_request_stores_nothing_and_its_retry_runs(setting: Setting, db: Session) -> None:
    key = new_key()
    url = f"/api/v1/consults/{setting.consult_id}/outcomes"
    refused = setting.specialist.post(url, {"outcome": "referred"}, headers={HEADER: key})
    assert refused.status_code == 403  # only the requesting clinician records an outcome
    assert count(db, IdempotencyKey, col(IdempotencyKey.key) == key) == 0
    assert (
        setting.nurse.post(url, {"outcome": "referred"}, headers={HEADER: key}).status_code == 201
    )


def test_a_replay_checks_the_user_may_still_see_the_consult(
    setting: Setting, db: Session, login: LoginFn, users: Users
) -> None:
    """The stored answer holds clinical data: a specialist taken off the consult gets 404
    for a replay too, and the refusal is audited."""
    key = new_key()
    url = f"/api/v1/consults/{setting.consult_id}/notes"
    first = setting.specialist.post(url, NOTE, headers={HEADER: key})
    assert first.status_code == 201
    from telemed.consults.models import ConsultParticipant

    for row in db.exec(
        select(ConsultParticipant).where(ConsultParticipant.consult_id == setting.consult_id)
    ):
        db.delete(row)
    db.commit()
    again = setting.specialist.post(url, NOTE, headers={HEADER: key})
    assert again.status_code == 404
    assert "Idempotent-Replayed" not in again.headers
    denied = db.exec(
        select(AuditEntry).where(
            AuditEntry.actor_id == setting.specialist.user.id, AuditEntry.action == "denied"
        )
    ).all()
    assert denied


@pytest.mark.parametrize("creator", CREATORS, ids=IDS)
def test_two_copies_at_the_same_instant_create_once(
    creator: Creator, setting: Setting, db: Session, login: LoginFn
) -> None:
    """A real race: two threads, each with its own client (as two tabs, or the queue and a
    user's click), released together by a barrier. The lock on (user, key) makes the
    second wait for the first's commit and replay its answer."""
    sender = creator.who(setting)
    clients = [sender, login(sender.user)]
    url = creator.url(setting)
    before = creator.created(db, setting)
    key = new_key()
    barrier = threading.Barrier(2)
    results: list[httpx.Response] = []

    def send(api: ApiClient) -> None:
        barrier.wait(timeout=30)  # a thread that never arrives breaks it: no hang
        results.append(api.post(url, creator.body, headers={HEADER: key}))

    threads = [threading.Thread(target=send, args=(api,)) for api in clients]
    for t in threads:
        t.start()
    join_all(threads, 60, "the two copies")
    assert sorted(r.status_code for r in results) == [201, 201], [r.text for r in results]
    assert sorted(r.headers.get("Idempotent-Replayed", "") for r in results) == ["", "true"]
    assert results[0].json() == results[1].json()
    assert creator.created(db, setting) == before + 1
    assert count(db, IdempotencyKey, col(IdempotencyKey.key) == key) == 1


def test_an_amendment_sent_twice_is_one_new_version(setting: Setting, db: Session) -> None:
    base = f"/api/v1/consults/{setting.consult_id}/notes"
    note = setting.specialist.post(base, NOTE).json()
    assert setting.specialist.post(f"{base}/{note['id']}/sign").status_code == 200
    url = f"{base}/{note['id']}/amendments"
    body = {**NOTE, "plan": "Add an echocardiogram.", "reason": "echo forgotten"}
    key = new_key()
    first = setting.specialist.post(url, body, headers={HEADER: key})
    again = setting.specialist.post(url, body, headers={HEADER: key})
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert count(db, ConsultNote, col(ConsultNote.consult_id) == setting.consult_id) == 2
