"""One unit of work per request and per job item (``telemed/uow.py``).

The failures here are real database failures, made by triggers the tests install for the
time of the test (a deferred foreign key that only fails at COMMIT, an INSERT refused by a
trigger): nothing of the project is mocked.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, text
from sqlmodel import Session, col, select

from telemed import uow
from telemed.accounts.models import Role, User
from telemed.app import create_app
from telemed.appointments import jobs
from telemed.audit import service as audit
from telemed.audit.models import AuditAction, AuditEntry
from telemed.audit.sealer import seal_pending
from telemed.db import utcnow
from telemed.messages.models import Message
from telemed.offers.models import ConsultOffer
from telemed.settings import Settings
from telemed.uow import Units
from tests.conftest import LoginFn
from tests.directory_helpers import Specialists
from tests.helpers import ApiClient, ManualClock, Users, consult_payload
from tests.test_appointment_jobs import Booked, whole_minute
from tests.test_directory import registration

TELEMED = Path(__file__).resolve().parent.parent / "telemed"

# Every place that may end a transaction (module, function) and why:
SCOPE_OWNERS = {
    # the one implementation of a unit's end, used by the request dependency
    # (telemed.deps.get_db), the job runner, the command line and the hub's recorder
    ("uow.py", "commit"),
    ("uow.py", "rollback"),
    ("uow.py", "end_read"),  # a read ended before slow work (refuses if it wrote)
    # the audit appender group-commits read rows on a connection of its own
    ("audit/appender.py", "AuditAppender._commit"),
}


def _transaction_ends(source: str) -> set[tuple[str, str]]:
    """(function, method) of every ``x.commit(...)`` and ``x.rollback(...)`` call."""
    found: set[tuple[str, str]] = set()

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = where
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{where}.{child.name}" if where else child.name
            if (
                isinstance(child, ast.Call)
                and isinstance(child.func, ast.Attribute)
                and child.func.attr in ("commit", "rollback")
            ):
                found.add((where or "<module>", child.func.attr))
            visit(child, name)

    visit(ast.parse(source), "")
    return found


def test_the_finder_sees_a_commit_in_a_service() -> None:
    """The walk below finds what it must, or its silence would prove nothing."""
    source = (
        "def create(session):\n"
        "    session.add(1)\n"
        "    session.commit()\n"
        "class Job:\n"
        "    def run(self):\n"
        "        with x:\n"
        "            self.db.rollback()\n"
    )
    assert _transaction_ends(source) == {("create", "commit"), ("Job.run", "rollback")}


def test_no_commit_or_rollback_outside_the_scope_owners() -> None:
    """Services and repositories only flush: a new ``commit()`` or ``rollback()`` anywhere
    else in telemed/ fails here, named, until it is made a scope owner (and listed above,
    with its reason)."""
    found = {
        (str(path.relative_to(TELEMED)), function)
        for path in sorted(TELEMED.rglob("*.py"))
        if "migrations" not in path.parts
        for function, _method in _transaction_ends(path.read_text(encoding="utf-8"))
    }
    outside = sorted(found - SCOPE_OWNERS)
    assert not outside, f"commit()/rollback() outside the scope owners: {outside}"
    assert found == SCOPE_OWNERS, f"listed but gone (update the list): {SCOPE_OWNERS - found}"


@contextmanager
def installed(engine: Engine, sqlite: list[str], postgresql: list[str]) -> Iterator[None]:
    """DDL for this backend for the time of a block: its ``DROP`` statements are run at the
    end (the PostgreSQL database is shared by the session's tests)."""
    statements = sqlite if engine.dialect.name == "sqlite" else postgresql
    undo = [s for s in statements if s.startswith("DROP")]
    with engine.begin() as connection:
        for statement in statements:
            if not statement.startswith("DROP"):
                connection.execute(text(statement.replace(":", "\\:")))  # no bind params
    try:
        yield
    finally:
        with engine.begin() as connection:
            for statement in undo:
                connection.execute(text(statement))


def _trigger_function(name: str, body: str) -> str:
    return f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body} END $$"


@contextmanager
def commit_fails_after_a_message(engine: Engine) -> Iterator[None]:
    """Every INSERT into ``messages`` also inserts a row whose deferred foreign key has no
    parent: the statement succeeds, and the COMMIT of its transaction fails."""
    with installed(
        engine,
        sqlite=[
            "CREATE TABLE uow_parent (id INTEGER PRIMARY KEY)",
            "CREATE TABLE uow_child (parent_id INTEGER REFERENCES uow_parent (id) "
            "DEFERRABLE INITIALLY DEFERRED)",
            "CREATE TRIGGER uow_fail_at_commit AFTER INSERT ON messages "
            "BEGIN INSERT INTO uow_child VALUES (-1); END",
            "DROP TRIGGER uow_fail_at_commit",
            "DROP TABLE uow_child",
            "DROP TABLE uow_parent",
        ],
        postgresql=[
            "CREATE TABLE uow_parent (id INTEGER PRIMARY KEY)",
            "CREATE TABLE uow_child (parent_id INTEGER REFERENCES uow_parent (id) "
            "DEFERRABLE INITIALLY DEFERRED)",
            _trigger_function("uow_dangle", "INSERT INTO uow_child VALUES (-1); RETURN NEW;"),
            "CREATE TRIGGER uow_fail_at_commit AFTER INSERT ON messages "
            "FOR EACH ROW EXECUTE FUNCTION uow_dangle()",
            "DROP TRIGGER uow_fail_at_commit ON messages",
            "DROP FUNCTION uow_dangle()",
            "DROP TABLE uow_child",
            "DROP TABLE uow_parent",
        ],
    ):
        yield


def _messages(engine: Engine, consult_id: int) -> list[str]:
    """What another connection sees committed: not the application's sessions."""
    with Session(engine) as session:
        return list(session.exec(select(Message.body).where(Message.consult_id == consult_id)))


def _chain_intact(engine: Engine) -> bool:
    """Every committed audit row sealed into one unbroken chain."""
    seal_pending(engine)
    with Session(engine) as session:
        report = audit.verify(session)
    return report.broken is None and report.unsealed == 0


def test_an_acknowledged_write_is_committed_and_a_failed_commit_is_an_error(
    engine: Engine,
    settings: Settings,
    clock: ManualClock,
    users: Users,
    login: LoginFn,
) -> None:
    """The request's unit commits before the response is sent: a 201 means the message is
    in the database, and a COMMIT that fails is a 500 with nothing saved (were the commit
    made after the response, the client would have its 201 and the message would be lost).
    """
    nurse = login(users.make(Role.clinician))
    consult_id = nurse.post("/api/v1/consults", consult_payload()).json()["id"]
    url = f"/api/v1/consults/{consult_id}/messages"

    posted = nurse.post(url, {"body": "acknowledged"})
    assert posted.status_code == 201, posted.text
    assert _messages(engine, consult_id) == ["acknowledged"]

    quiet = TestClient(create_app(settings, engine, clock), raise_server_exceptions=False)
    with quiet:
        poster = ApiClient(quiet, nurse.user)
        with commit_fails_after_a_message(engine):
            failed = poster.post(url, {"body": "never committed"})
        assert failed.status_code == 500, failed.text
        assert "nothing was saved" in failed.json()["error"]["message"]
        assert _messages(engine, consult_id) == ["acknowledged"]
        again = poster.post(url, {"body": "after the failure"})
        assert again.status_code == 201, again.text
    assert _messages(engine, consult_id) == ["acknowledged", "after the failure"]
    assert _chain_intact(engine)


def test_registration_is_one_transaction_across_its_two_services(
    engine: Engine, settings: Settings, clock: ManualClock, db: Session
) -> None:
    """The account (accounts.create_user) and its profile (directory.register) commit
    together: when the profile's INSERT fails, the account is not left behind."""
    client = TestClient(create_app(settings, engine, clock), raise_server_exceptions=False)
    with client:
        client.get("/specialists/register")
        form = {**registration(), "csrf_token": client.cookies["telemed_register_csrf"]}
        refuse_profiles = installed(
            engine,
            sqlite=[
                "CREATE TRIGGER uow_refuse_profile BEFORE INSERT ON specialist_profiles "
                "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
                "DROP TRIGGER uow_refuse_profile",
            ],
            postgresql=[
                _trigger_function("uow_refuse", "RAISE EXCEPTION 'refused by the test';"),
                "CREATE TRIGGER uow_refuse_profile BEFORE INSERT ON specialist_profiles "
                "FOR EACH ROW EXECUTE FUNCTION uow_refuse()",
                "DROP TRIGGER uow_refuse_profile ON specialist_profiles",
                "DROP FUNCTION uow_refuse()",
            ],
        )
        with refuse_profiles:
            failed = client.post("/specialists/register", data=form, follow_redirects=False)
        assert failed.status_code == 500
        db.rollback()
        assert db.exec(select(User).where(User.email == form["email"])).all() == []

        done = client.post("/specialists/register", data=form, follow_redirects=False)
        assert done.status_code == 303, done.text
    db.rollback()
    assert [u.email for u in db.exec(select(User).where(User.email == form["email"]))] == [
        form["email"]
    ]


def test_a_refusal_is_recorded_although_its_request_is_rolled_back(
    login: LoginFn, users: Users, db: Session
) -> None:
    """The audit row of a refused attempt persists while the request itself fails."""
    owner = login(users.make(Role.clinician, "MOTEBANG"))
    stranger = login(users.make(Role.clinician, "MOKHOTLONG"))
    consult_id = owner.post("/api/v1/consults", consult_payload()).json()["id"]
    refused = stranger.post(f"/api/v1/consults/{consult_id}/messages", {"body": "hello"})
    assert refused.status_code == 404
    db.rollback()
    denied = db.exec(
        select(AuditEntry).where(
            AuditEntry.action == AuditAction.denied, AuditEntry.consult_id == consult_id
        )
    ).all()
    assert [(e.actor_id, e.object_type) for e in denied] == [(stranger.user.id, "consult")]
    assert db.exec(select(Message).where(Message.consult_id == consult_id)).all() == []


def test_a_read_recorded_after_a_savepoint_write_keeps_the_chain(
    engine: Engine, users: Users
) -> None:
    """A savepoint (a step whose refusal a page shows) that wrote an audit row, then a read
    recorded in the same unit: both commit with the chain intact (on PostgreSQL the read
    must not wait for the group-commit appender while this unit holds the chain)."""
    nurse = users.make(Role.clinician)
    with Units(engine).one() as session:
        with session.begin_nested():
            audit.record(session, nurse, AuditAction.update, "test", 1)
        audit.record_access(session, nurse, AuditAction.read, "test", 1)
        try:
            with session.begin_nested():
                audit.record(session, nurse, AuditAction.update, "test", 2)
                raise RuntimeError("refused")
        except RuntimeError:
            pass
        audit.record(session, nurse, AuditAction.update, "test", 3)
    with Session(engine) as session:
        rows = session.exec(
            select(AuditEntry.object_id).where(AuditEntry.object_type == "test")
        ).all()
    assert sorted(rows) == ["1", "1", "3"]
    assert _chain_intact(engine)


def test_a_write_that_must_persist_is_made_once_whether_the_unit_commits_or_not(
    engine: Engine, users: Users
) -> None:
    """``persist_regardless`` writes once whether the unit commits or rolls back, and an
    ``after_commit`` action runs only after a commit."""
    nurse = users.make(Role.clinician)
    ran: list[str] = []

    def note(what: str) -> uow.Write:
        return lambda session: audit.record(session, nurse, AuditAction.denied, "test", what)

    with Units(engine).one() as session:
        uow.persist_regardless(session, note("kept with a commit"))
        uow.after_commit(session, lambda: ran.append("committed"))

    def failing() -> None:
        with Units(engine).one() as session:
            uow.persist_regardless(session, note("kept after a rollback"))
            uow.after_commit(session, lambda: ran.append("rolled back"))
            audit.record(session, nurse, AuditAction.update, "test", "rolled back")
            raise RuntimeError("the unit fails")

    with pytest.raises(RuntimeError, match="the unit fails"):
        failing()
    with Session(engine) as session:
        rows = session.exec(
            select(AuditEntry.object_id)
            .where(AuditEntry.object_type == "test")
            .order_by(col(AuditEntry.id))
        ).all()
    assert list(rows) == ["kept with a commit", "kept after a rollback"]
    assert ran == ["committed"]
    assert _chain_intact(engine)


def test_a_reads_row_commits_with_its_unit_which_waits_for_the_wal_only_if_it_wrote(
    engine: Engine, users: Users
) -> None:
    """A read's audit row goes in with the unit's own COMMIT (no second transaction); on
    PostgreSQL a unit that wrote nothing else does not wait for the WAL flush, one that
    wrote does; a row recorded by a write that persists regardless (an idempotent replay,
    a refusal) is made in the unit's end, even after a rollback."""
    nurse = users.make(Role.clinician)
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    def unit(write: bool) -> list[str]:
        statements.clear()
        with Units(engine).one() as session:
            audit.record_access(session, nurse, AuditAction.read, "test", "read")
            if write:
                audit.record(session, nurse, AuditAction.update, "test", "write")
        return [s for s in statements if "synchronous_commit" in s]

    def refused() -> None:
        with Units(engine).one() as session:
            audit.record_refusal(session, nurse, "test", "refused")
            raise RuntimeError("refused")

    event.listen(engine, "before_cursor_execute", seen)
    try:
        relaxed, durable = unit(write=False), unit(write=True)
        with pytest.raises(RuntimeError):
            refused()
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    postgres = engine.dialect.name == "postgresql"
    assert relaxed == (["SET LOCAL synchronous_commit = off"] if postgres else [])
    assert durable == []
    with Session(engine) as session:
        rows = session.exec(
            select(AuditEntry.object_id).where(AuditEntry.object_type == "test")
        ).all()
    assert sorted(rows) == ["read", "read", "refused", "write"]


def test_end_read_refuses_to_drop_a_write(engine: Engine, users: Users) -> None:
    nurse = users.make(Role.clinician)

    def read_then_write() -> None:
        with Units(engine).one() as session:
            session.get(User, nurse.id)
            uow.end_read(session)  # a read: ended
            audit.record(session, nurse, AuditAction.update, "test", "pending")
            uow.end_read(session)

    with pytest.raises(RuntimeError, match="has written"):
        read_then_write()
    with Session(engine) as session:
        assert session.exec(select(AuditEntry).where(AuditEntry.object_type == "test")).all() == []


def _two_booked(
    db: Session, settings: Settings, users: Users, login: LoginFn
) -> tuple[Booked, Booked]:
    """Two video consults of one clinician booked with one specialist, 30 hours and 30
    hours 30 minutes from now."""
    specialist = Specialists(db, settings, users).make()
    nurse, doctor = login(users.make(Role.clinician)), login(specialist)
    booked = []
    for _ in range(2):
        made = nurse.post("/api/v1/consults", consult_payload(mode="video"))
        consult_id = int(made.json()["id"])
        db.rollback()
        [offer] = db.exec(select(ConsultOffer).where(ConsultOffer.consult_id == consult_id))
        assert doctor.post(f"/api/v1/offers/{offer.id}/accept").status_code == 200
        booked.append(Booked(db, nurse, doctor, consult_id))
    start = whole_minute(utcnow() + timedelta(hours=30))
    booked[0].move_to(start)
    booked[1].move_to(start + timedelta(minutes=30))
    return booked[0], booked[1]


def test_one_failing_item_of_a_job_leaves_nothing_and_the_others_go_on(
    db: Session, units: Units, engine: Engine, settings: Settings, users: Users, login: LoginFn
) -> None:
    """Two appointments due for their day-before reminder; the database refuses the second
    notice of the first (to its clinician): that appointment's unit rolls back whole (its
    specialist's notice too) and is logged, and the other appointment is reminded."""
    first, second = _two_booked(db, settings, users, login)
    refused = f"%:appointment{first.appointment.id}:%:user{first.nurse.user.id}"
    day_before = first.appointment.starts_at - timedelta(hours=23)
    with installed(
        engine,
        sqlite=[
            "CREATE TRIGGER uow_refuse_notice BEFORE INSERT ON notifications "
            f"WHEN NEW.dedupe_key LIKE '{refused}' "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
            "DROP TRIGGER uow_refuse_notice",
        ],
        postgresql=[
            _trigger_function(
                "uow_refuse_notice",
                f"IF NEW.dedupe_key LIKE '{refused}' THEN "
                "RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW;",
            ),
            "CREATE TRIGGER uow_refuse_notice BEFORE INSERT ON notifications "
            "FOR EACH ROW EXECUTE FUNCTION uow_refuse_notice()",
            "DROP TRIGGER uow_refuse_notice ON notifications",
            "DROP FUNCTION uow_refuse_notice()",
        ],
    ):
        assert jobs.send_reminders(units, settings, day_before) == 2

    def reminded() -> list[tuple[int | None, str | None]]:
        """(user, consult page) of every day-before reminder, in order."""
        notices = first.notices(first.doctor, "reminder_24h") + first.notices(
            first.nurse, "reminder_24h"
        )
        return sorted((n.user_id, n.link) for n in notices)

    doctor, nurse = first.doctor.user.id, first.nurse.user.id
    one, two = (f"/consults/{b.consult_id}/call" for b in (first, second))
    assert reminded() == sorted([(doctor, two), (nurse, two)])
    # The next run, the database willing again, reminds of the first appointment too.
    assert jobs.send_reminders(units, settings, day_before + timedelta(minutes=1)) == 2
    assert reminded() == sorted([(doctor, one), (nurse, one), (doctor, two), (nurse, two)])
