"""The store-and-forward thread of a consult."""

from __future__ import annotations

from sqlmodel import Session

from telemed.accounts.models import Role
from telemed.consults import service
from telemed.consults.models import Consult, ParticipantRelation
from tests.conftest import LoginFn
from tests.helpers import Users, consult_payload


def test_everyone_allowed_on_the_consult_reads_and_writes_the_thread(
    login: LoginFn, users: Users, db: Session
) -> None:
    nurse = login(users.make(Role.clinician))
    colleague = login(users.make(Role.clinician))  # same facility
    specialist_user = users.make(Role.specialist)
    specialist = login(specialist_user)
    coordinator = login(users.make(Role.coordinator))
    consult_id = nurse.post("/api/v1/consults", consult_payload()).json()["id"]
    consult = db.get(Consult, consult_id)
    assert consult is not None
    service.add_participant(db, consult, specialist_user, ParticipantRelation.assigned)
    db.commit()

    url = f"/api/v1/consults/{consult_id}/messages"
    assert nurse.post(url, {"body": "  Photos follow.  "}).status_code == 201
    assert specialist.post(url, {"body": "Check the palms for peeling."}).status_code == 201
    assert colleague.post(url, {"body": "Palms are peeling."}).status_code == 201
    for reader in (nurse, colleague, specialist, coordinator):
        thread = reader.get(url).json()
        assert [m["body"] for m in thread] == [
            "Photos follow.",
            "Check the palms for peeling.",
            "Palms are peeling.",
        ]
        assert [m["author_role"] for m in thread] == ["clinician", "specialist", "clinician"]
        assert thread[0]["author_name"] == nurse.user.full_name
        assert thread[0]["created_at"].endswith("Z")


def test_outsiders_cannot_read_or_write(login: LoginFn, users: Users) -> None:
    nurse = login(users.make(Role.clinician, "MOTEBANG"))
    consult_id = nurse.post("/api/v1/consults", consult_payload()).json()["id"]
    url = f"/api/v1/consults/{consult_id}/messages"
    for outsider in (
        login(users.make(Role.clinician, "PARAY")),
        login(users.make(Role.specialist)),
        login(users.make(Role.admin)),
    ):
        assert outsider.get(url).status_code == 404
        assert outsider.post(url, {"body": "let me in"}).status_code == 404
    assert nurse.get(url).json() == []


def test_empty_or_oversized_messages_are_refused(login: LoginFn, users: Users) -> None:
    nurse = login(users.make(Role.clinician))
    consult_id = nurse.post("/api/v1/consults", consult_payload()).json()["id"]
    url = f"/api/v1/consults/{consult_id}/messages"
    blank = nurse.post(url, {"body": "   "})
    assert blank.status_code == 422
    assert blank.json()["error"]["fields"][0] == {
        "field": "body",
        "message": "Value error, the message is empty",
    }
    assert nurse.post(url, {"body": "x" * 8001}).status_code == 422
    assert nurse.post(url, {"text": "wrong field"}).status_code == 422
    assert nurse.get(url).json() == []


def test_a_cancelled_consult_has_a_closed_thread(login: LoginFn, users: Users) -> None:
    nurse = login(users.make(Role.clinician))
    consult_id = nurse.post("/api/v1/consults", consult_payload()).json()["id"]
    nurse.post(f"/api/v1/consults/{consult_id}/cancel", {"reason": "resolved"})
    response = nurse.post(f"/api/v1/consults/{consult_id}/messages", {"body": "one more thing"})
    assert response.status_code == 409
    assert "cancelled" in response.json()["error"]["message"]
