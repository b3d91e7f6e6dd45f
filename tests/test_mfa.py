"""The second factor on both databases, at times the test chooses (TOTP steps are 30 s):
enrolment, codes and their replay, guessing, recovery codes, disabling, the login's second
step (pages and API), enforcement by role, and re-authentication before sensitive actions."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from telemed.accounts.models import Role, User
from telemed.app import create_app
from telemed.audit.models import AuditEntry
from telemed.cli import main
from telemed.db import pk
from telemed.errors import Conflict, NotAuthenticated, TooManyRequests
from telemed.mfa import service, totp
from telemed.mfa.models import RecoveryCode, TotpCredential
from telemed.mfa.policy import MfaPolicy
from telemed.mfa.service import REPLAYED
from telemed.settings import Settings
from telemed.uow import Units
from tests.helpers import PASSWORD, ManualClock, Users
from tests.process_helpers import join_all

T0 = datetime(2027, 3, 1, 8, 0, 10, tzinfo=UTC)  # 10 s into a 30 s step
STEP = timedelta(seconds=30)


def code(secret: str, at: datetime) -> str:
    return totp.code_at_step(secret, totp.step_at(secret, at))


@pytest.fixture
def mfa(settings: Settings) -> MfaPolicy:
    return MfaPolicy.from_settings(settings)


def enrol(units: Units, policy: MfaPolicy, user: User, at: datetime) -> tuple[str, list[str]]:
    """Enrolled through the service as the pages do: the secret and the recovery codes."""
    with units.one() as s:
        secret = service.start_enrolment(s, policy, user, at).secret
    with units.one() as s:
        codes = service.confirm_enrolment(s, policy, user, code(secret, at), at)
    return secret, codes


def verify(units: Units, policy: MfaPolicy, user: User, typed: str, at: datetime) -> str:
    with units.one() as s:
        return service.verify(s, policy, user, typed, at)


def mfa_audit(db: Session, user: User) -> list[str]:
    db.rollback()  # a fresh snapshot
    rows = db.exec(
        select(AuditEntry)
        .where(AuditEntry.object_type == "mfa", AuditEntry.object_id == str(user.id))
        .order_by(col(AuditEntry.id))
    )
    return [f"{row.action}:{row.detail}" for row in rows]


def test_enrolment_stores_the_secret_encrypted_and_codes_hashed(
    units: Units, mfa: MfaPolicy, users: Users, db: Session
) -> None:
    user = users.make(Role.coordinator)
    with units.one() as s:
        first = service.start_enrolment(s, mfa, user, T0)
    with units.one() as s:  # reloading the page keeps the secret the phone scanned
        assert service.start_enrolment(s, mfa, user, T0).secret == first.secret
    assert first.uri.startswith("otpauth://totp/Telemed:")
    assert first.secret in first.uri
    with pytest.raises(NotAuthenticated), units.one() as s:
        service.confirm_enrolment(s, mfa, user, "000000", T0)
    assert not service.is_enrolled(db, pk(user))
    with units.one() as s:
        codes = service.confirm_enrolment(s, mfa, user, code(first.secret, T0), T0)
    assert len(codes) == 10
    assert len(set(codes)) == 10
    db.rollback()  # a fresh snapshot
    stored = db.get(TotpCredential, user.id)
    assert stored is not None
    assert stored.confirmed_at == T0
    assert first.secret not in stored.secret_encrypted
    assert mfa.box.open(stored.secret_encrypted) == first.secret
    hashes = set(db.exec(select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user.id)))
    assert len(hashes) == 10
    assert not hashes & set(codes)
    # Another app secret cannot read it.
    other = MfaPolicy.from_settings(Settings(env="test", secret_key="x" * 40))
    assert other.box.open(stored.secret_encrypted) is None
    with pytest.raises(Conflict), units.one() as s:
        service.start_enrolment(s, mfa, user, T0)
    assert mfa_audit(db, user) == ["denied:wrong code", "create:enrolled (TOTP)"]


def test_a_code_works_once_within_its_window(
    units: Units, mfa: MfaPolicy, users: Users, db: Session
) -> None:
    user = users.make(Role.admin)
    secret, _ = enrol(units, mfa, user, T0)
    later = T0 + 4 * STEP
    with pytest.raises(NotAuthenticated, match="used already"):  # the enrolment's code
        verify(units, mfa, user, code(secret, T0), T0 + STEP)
    assert verify(units, mfa, user, code(secret, later), later) == "totp"
    with pytest.raises(NotAuthenticated, match="used already"):
        verify(units, mfa, user, code(secret, later), later + timedelta(seconds=5))
    # The next step's code, typed before the server's clock reached it (drift): accepted.
    assert verify(units, mfa, user, code(secret, later + STEP), later) == "totp"
    # Two steps old: outside the window.
    with pytest.raises(NotAuthenticated, match="not right"):
        verify(units, mfa, user, code(secret, later + 2 * STEP), later + 4 * STEP)
    details = mfa_audit(db, user)
    assert details.count("authenticate:code accepted") == 2
    assert details.count("denied:code replayed") == 2


def test_guesses_are_limited_per_user_and_the_limit_ends(
    units: Units, mfa: MfaPolicy, users: Users
) -> None:
    user = users.make(Role.coordinator)
    secret, _ = enrol(units, mfa, user, T0)
    at = T0 + 10 * STEP
    wrong = "111111" if code(secret, at) != "111111" else "222222"
    for _ in range(mfa.max_failures):
        with pytest.raises(NotAuthenticated):
            verify(units, mfa, user, wrong, at)
    with pytest.raises(TooManyRequests) as refused:  # the right code too
        verify(units, mfa, user, code(secret, at), at)
    assert 0 < refused.value.retry_after_seconds <= mfa.window.total_seconds()
    after = at + mfa.window + STEP
    assert verify(units, mfa, user, code(secret, after), after) == "totp"


def test_recovery_codes_work_once_and_regenerating_replaces_them(
    units: Units, mfa: MfaPolicy, users: Users, db: Session
) -> None:
    user = users.make(Role.coordinator)
    _, codes = enrol(units, mfa, user, T0)
    typed = codes[0].upper().replace("-", " ")  # as someone might type it
    assert verify(units, mfa, user, typed, T0 + STEP) == "recovery"
    with pytest.raises(NotAuthenticated):
        verify(units, mfa, user, codes[0], T0 + STEP)
    with units.one() as s:
        assert service.status(s, mfa, user).recovery_codes_left == 9
        fresh = service.regenerate_recovery_codes(s, mfa, user, T0 + STEP)
    with pytest.raises(NotAuthenticated):
        verify(units, mfa, user, codes[1], T0 + STEP)
    assert verify(units, mfa, user, fresh[0], T0 + STEP) == "recovery"
    with units.one() as s:
        service.disable(s, user, by=user)
        assert not service.is_enrolled(s, pk(user))
    with units.one() as s:
        assert service.status(s, mfa, user) == service.Status(False, 0, False)
    assert mfa_audit(db, user)[-6:] == [
        "authenticate:recovery code used; 9 left",
        "denied:wrong recovery code",
        "update:recovery codes new",
        "denied:wrong recovery code",
        "authenticate:recovery code used; 9 left",
        "update:disabled",
    ]


# --- through the application --------------------------------------------------------------


def _app_client(settings: Settings, engine: Engine, clock: ManualClock) -> TestClient:
    return TestClient(create_app(settings, engine, clock), base_url="http://testserver")


def _page_login(client: TestClient, user: User) -> str:
    """The password step of the login page; where it sends the browser."""
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    response = client.post(
        "/login",
        data={"email": user.email, "password": PASSWORD, "csrf_token": csrf[1], "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return str(response.headers["location"])


def _form_csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found[1]


def test_the_login_page_asks_for_the_code_and_opens_no_session_before_it(
    settings: Settings,
    engine: Engine,
    clock: ManualClock,
    units: Units,
    users: Users,
    mfa: MfaPolicy,
) -> None:
    clock.set(T0)
    user = users.make(Role.coordinator)
    secret, _ = enrol(units, mfa, user, T0 - 10 * STEP)
    with _app_client(settings, engine, clock) as client:
        assert _page_login(client, user) == "/login/code"
        assert "telemed_session" not in client.cookies
        assert client.get("/", follow_redirects=False).status_code == 303  # to /login
        form = client.get("/login/code")
        spent = client.cookies.get("telemed_mfa_step")
        assert spent
        wrong = client.post(
            "/login/code", data={"code": "12345x", "csrf_token": _form_csrf(form.text)}
        )
        assert wrong.status_code == 401
        assert "not right" in wrong.text
        right = client.post(
            "/login/code",
            data={"code": code(secret, T0), "csrf_token": _form_csrf(form.text)},
            follow_redirects=False,
        )
        assert right.status_code == 303
        assert "telemed_session" in client.cookies
        assert client.get("/").status_code == 200
    # The challenge is spent: its cookie cannot open a second session.
    with _app_client(settings, engine, clock) as other:
        other.cookies.set("telemed_mfa_step", spent, path="/login")
        again = other.post(
            "/login/code",
            data={"code": code(secret, T0 + STEP), "csrf_token": _form_csrf(form.text)},
            follow_redirects=False,
        )
        assert again.status_code == 303
        assert again.headers["location"] == "/login"
        assert "telemed_session" not in other.cookies


def test_api_login_needs_the_code_and_a_required_role_enrols_first(
    settings: Settings,
    engine: Engine,
    clock: ManualClock,
    units: Units,
    users: Users,
) -> None:
    clock.set(T0)
    enforced = settings.model_copy(update={"mfa_required_roles": "coordinator,admin"})
    policy = MfaPolicy.from_settings(enforced)
    coordinator = users.make(Role.coordinator)
    clinician = users.make(Role.clinician)
    with _app_client(enforced, engine, clock) as client:
        body = {"email": coordinator.email, "password": PASSWORD}
        refused = client.post("/api/v1/auth/login", json=body)
        assert refused.status_code == 403
        assert "/login" in refused.json()["error"]["message"]
        assert (
            client.post(  # other roles are not asked
                "/api/v1/auth/login", json={"email": clinician.email, "password": PASSWORD}
            ).status_code
            == 200
        )
        client.cookies.clear()
        # The page sends the coordinator to enrolment; no session until it is done.
        assert _page_login(client, coordinator) == "/login/enrol"
        page = client.get("/login/enrol")
        assert page.status_code == 200
        assert "<svg" in page.text
        assert page.headers["cache-control"] == "no-store"
        secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.text)
        assert secret
        assert "telemed_session" not in client.cookies
        done = client.post(
            "/login/enrol",
            data={"code": code(secret[1], T0), "csrf_token": _form_csrf(page.text)},
        )
        assert done.status_code == 200
        assert "recovery-codes" in done.text
        assert "telemed_session" in client.cookies
    with _app_client(enforced, engine, clock) as client:
        assert (
            client.post("/api/v1/auth/login", json=body).json()["error"]["fields"][0]["field"]
            == "code"
        )
        later = T0 + 2 * STEP
        clock.set(later)
        ok = client.post("/api/v1/auth/login", json={**body, "code": code(secret[1], later)})
        assert ok.status_code == 200, ok.text
    assert policy.required_roles == frozenset({"coordinator", "admin"})


def test_sensitive_actions_need_a_recent_proof(
    settings: Settings,
    engine: Engine,
    clock: ManualClock,
    users: Users,
    db: Session,
    mfa: MfaPolicy,
) -> None:
    clock.set(T0)
    admin = users.make(Role.admin)
    clinician = users.make(Role.clinician)
    with _app_client(settings, engine, clock) as client:
        login = client.post("/api/v1/auth/login", json={"email": admin.email, "password": PASSWORD})
        headers = {"X-CSRF-Token": login.json()["csrf_token"]}
        deactivate = f"/api/v1/users/{clinician.id}/deactivate"
        clock.set(T0 + mfa.reauth + timedelta(minutes=1))
        stale = client.post(deactivate, headers=headers)
        assert stale.status_code == 403
        assert stale.json()["error"]["code"] == "reauth_required"
        wrong = client.post("/api/v1/auth/reauth", json={"secret": "not it"}, headers=headers)
        assert wrong.status_code == 401
        proved = client.post("/api/v1/auth/reauth", json={"secret": PASSWORD}, headers=headers)
        assert proved.status_code == 204
        assert client.post(deactivate, headers=headers).status_code == 200
        # A page's form is sent to /reauth and back to the page it came from.
        clock.set(T0 + 2 * (mfa.reauth + timedelta(minutes=1)))
        page = client.post(
            "/account/security/disable",
            data={"csrf_token": headers["X-CSRF-Token"]},
            headers={"referer": "http://testserver/account/security"},
            follow_redirects=False,
        )
        assert page.status_code == 303
        assert page.headers["location"] == "/reauth?next=%2Faccount%2Fsecurity"
    assert "denied:wrong password at re-authentication" in mfa_audit(db, admin)


def test_an_operator_turns_off_a_lost_second_factor(
    engine: Engine, units: Units, mfa: MfaPolicy, users: Users, db: Session, settings: Settings
) -> None:
    user = users.make(Role.coordinator)
    enrol(units, mfa, user, T0)
    env = {
        "TELEMED_ENV": "test",
        "TELEMED_PASSWORD_HASHING": "light",
        "TELEMED_DATA_DIR": str(settings.data_dir),
        "TELEMED_DATABASE_URL": engine.url.render_as_string(hide_password=False),
    }
    result = CliRunner().invoke(main, ["users", "mfa-reset", user.email.upper()], env=env)
    assert result.exit_code == 0, result.output
    assert "turned off" in result.output
    unknown = CliRunner().invoke(main, ["users", "mfa-reset", "nobody@example.org"], env=env)
    assert unknown.exit_code == 1
    db.rollback()
    assert not service.is_enrolled(db, pk(user))
    assert mfa_audit(db, user)[-1] == "update:disabled for the user"


def test_one_code_typed_twice_at_once_opens_one_login(
    units: Units, mfa: MfaPolicy, users: Users, db: Session
) -> None:
    """Two submits of the same code at the same moment (a double tap, or an attacker who
    read it over the shoulder): the compare-and-set on the last step used lets one through,
    on both databases, and the other is refused as replayed."""
    user = users.make(Role.coordinator)
    secret, _ = enrol(units, mfa, user, T0)
    later = T0 + 4 * STEP
    typed = code(secret, later)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def submit() -> None:
        with units.one() as s:
            barrier.wait(timeout=30)  # both units open before either claims the step
            try:
                outcomes.append(service.verify(s, mfa, user, typed, later))
            except NotAuthenticated as exc:
                outcomes.append(exc.message)

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    join_all(threads, 60, "the two submits")
    assert sorted(outcomes, key=lambda o: o != "totp") == ["totp", REPLAYED], outcomes
    details = mfa_audit(db, user)
    assert details.count("authenticate:code accepted") == 1
    assert details.count("denied:code replayed") == 1
