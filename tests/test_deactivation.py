"""A deactivated account: no login (with a message that says why), no live session, and,
for a specialist, no offer of a consult, ever; the offers it held move on at once.

Accounts are deactivated by an admin (``POST /api/v1/users/{id}/deactivate``) or with
``telemed users deactivate EMAIL`` (tests/test_cli.py). Each offers test runs the same set-up
with the specialist active too, so that it fails if the set-up itself made no offer.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from telemed.accounts.models import Role, User, UserSession
from telemed.accounts.service import DEACTIVATED_MESSAGE
from telemed.app import create_app
from telemed.consults.models import ConsultState
from telemed.offers.models import OfferStatus
from telemed.settings import Settings
from tests.conftest import LoginFn
from tests.directory_helpers import Specialists, offers_of
from tests.helpers import PASSWORD, ApiClient, Users, consult_payload


@pytest.fixture
def specialists(db: Session, settings: Settings, users: Users) -> Specialists:
    return Specialists(db, settings, users)


def deactivate(admin: ApiClient, user: User) -> None:
    response = admin.post(f"/api/v1/users/{user.id}/deactivate")
    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is False


def test_a_deactivated_user_cannot_log_in_and_is_told_why(
    client: TestClient, users: Users, login: LoginFn
) -> None:
    user = users.make(Role.clinician)
    assert client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
    ).is_success
    deactivate(login(users.make(Role.admin)), user)

    api = client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert api.status_code == 401
    assert api.json()["error"]["message"] == DEACTIVATED_MESSAGE
    # Only the right password learns that the account exists.
    wrong = client.post("/api/v1/auth/login", json={"email": user.email, "password": "not it!"})
    assert wrong.json()["error"]["message"] == "Wrong e-mail or password."

    client.cookies.clear()
    csrf = client.get("/login").cookies["telemed_login_csrf"]
    page = client.post(
        "/login",
        data={"email": user.email, "password": PASSWORD, "csrf_token": csrf, "next": "/"},
        follow_redirects=False,
    )
    assert page.status_code == 401
    assert "This account has been deactivated" in page.text
    assert "telemed_session" not in client.cookies
    assert client.get("/api/v1/auth/me").status_code == 401


def test_deactivation_ends_a_live_session_on_its_next_request(
    settings: Settings, engine: Engine, users: Users, db: Session
) -> None:
    """In the same process the session is refused on its very next request, although the
    process's session cache remembered it a moment ago (another process: at most
    ``session_cache_seconds`` later, see tests/test_session_lifetime.py)."""
    app = create_app(settings, engine)
    nurse_user = users.make(Role.clinician)
    nurse = ApiClient(TestClient(app), nurse_user)
    admin = ApiClient(TestClient(app), users.make(Role.admin))
    assert nurse.get("/api/v1/auth/me").status_code == 200  # remembered by the cache
    assert nurse.client.get("/", follow_redirects=False).status_code == 200

    deactivate(admin, nurse_user)
    assert nurse.get("/api/v1/auth/me").status_code == 401
    page = nurse.client.get("/", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/"
    assert nurse.post("/api/v1/consults", consult_payload()).status_code == 401
    db.rollback()
    sessions = db.exec(select(UserSession).where(UserSession.user_id == nurse_user.id)).all()
    assert sessions
    assert all(s.revoked_at is not None for s in sessions)


def test_only_admins_deactivate_and_not_themselves(users: Users, login: LoginFn) -> None:
    admin_user = users.make(Role.admin)
    admin = login(admin_user)
    nurse = users.make(Role.clinician)
    coordinator = login(users.make(Role.coordinator))
    assert coordinator.post(f"/api/v1/users/{nurse.id}/deactivate").status_code == 403
    own = admin.post(f"/api/v1/users/{admin_user.id}/deactivate")
    assert own.status_code == 409
    assert own.json()["error"]["fields"][0]["field"] == "user_id"
    assert admin.post("/api/v1/users/999999/deactivate").status_code == 404
    bad = admin.post("/api/v1/users/someone/deactivate")
    assert bad.status_code == 422
    assert bad.json()["error"]["fields"][0]["field"] == "user_id"
    deactivate(admin, nurse)
    deactivate(admin, nurse)  # twice is the same as once
    listed = {u["id"]: u["is_active"] for u in admin.get("/api/v1/users").json()}
    assert listed[nurse.id] is False
    assert listed[admin_user.id] is True


@pytest.mark.parametrize("urgency", ["urgent", "emergency"])  # matched alone; broadcast
@pytest.mark.parametrize("active", [True, False], ids=["active", "deactivated"])
def test_a_deactivated_specialist_is_never_offered_a_consult(
    active: bool,
    urgency: str,
    specialists: Specialists,
    users: Users,
    login: LoginFn,
    db: Session,
) -> None:
    """The only paediatrician, verified with every hour available: offered the consult
    while active, and nobody is offered it once they are deactivated."""
    only = specialists.make(specialty="paediatrics")
    if not active:
        deactivate(login(users.make(Role.admin)), only)
    nurse = login(users.make(Role.clinician))
    consult = nurse.post("/api/v1/consults", consult_payload(urgency=urgency)).json()
    made = offers_of(db, consult["id"])
    if active:
        assert consult["state"] == ConsultState.offered
        assert [o.specialist_id for o in made] == [only.id]
    else:  # nobody to offer it to: an urgent request waits, an emergency escalates at once
        waiting = ConsultState.escalated if urgency == "emergency" else ConsultState.requested
        assert consult["state"] == waiting
        assert made == []


def test_deactivating_a_specialist_moves_their_open_offer_on_at_once(
    specialists: Specialists, users: Users, login: LoginFn, db: Session
) -> None:
    """An offer waits for an answer a deactivated specialist can never give: it is withdrawn
    and the consult offered to the next candidate, without waiting for it to expire."""
    first, second = specialists.make(), specialists.make()
    nurse = login(users.make(Role.clinician))
    consult_id = nurse.post("/api/v1/consults", consult_payload(urgency="routine")).json()["id"]
    [offer] = offers_of(db, consult_id)
    gone, other = (first, second) if offer.specialist_id == first.id else (second, first)

    deactivate(login(users.make(Role.admin)), gone)
    made = offers_of(db, consult_id)
    assert [(o.specialist_id, o.status) for o in made] == [
        (gone.id, OfferStatus.withdrawn),
        (other.id, OfferStatus.open),
    ]
    assert made[0].reason == "the specialist's account was deactivated"
    detail = nurse.get(f"/api/v1/consults/{consult_id}").json()
    assert detail["state"] == ConsultState.offered
    assert gone.id not in {p["user_id"] for p in detail["participants"]}


def test_a_coordinator_cannot_assign_a_consult_to_a_deactivated_specialist(
    specialists: Specialists, users: Users, login: LoginFn
) -> None:
    gone = specialists.make(specialty="dermatology")
    deactivate(login(users.make(Role.admin)), gone)
    nurse = login(users.make(Role.clinician))
    consult = nurse.post("/api/v1/consults", consult_payload(specialty="dermatology")).json()
    assert consult["state"] == ConsultState.requested  # nobody eligible
    coordinator = login(specialists.coordinator)
    refused = coordinator.post(
        f"/api/v1/consults/{consult['id']}/assign", {"specialist_id": gone.id}
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["fields"][0] == {
        "field": "specialist_id",
        "message": f"{gone.full_name}'s account is deactivated",
    }
    active = specialists.make(specialty="dermatology", windows=[])  # no slot: never offered
    assigned = coordinator.post(
        f"/api/v1/consults/{consult['id']}/assign", {"specialist_id": active.id}
    )
    assert assigned.status_code == 200, assigned.text
