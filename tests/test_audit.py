"""The audit trail: what is recorded, who may read it, and tamper detection.

The sealer itself (concurrency, crashes, two sealers) is tested in test_audit_sealer.py."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, bindparam, text
from sqlmodel import Session, col, select

from telemed.accounts.models import Role
from telemed.audit import chain, service
from telemed.audit.appender import _appenders
from telemed.audit.models import AuditAction, AuditEntry
from telemed.audit.sealer import seal_pending
from telemed.db import UTCDateTime, utcnow
from tests.cli_helpers import Ran, run_telemed
from tests.conftest import LoginFn
from tests.helpers import Users, consult_payload


def entries(db: Session) -> list[AuditEntry]:
    db.expire_all()
    rows = list(db.exec(select(AuditEntry).order_by(col(AuditEntry.id))))
    db.rollback()
    return rows


def test_clinical_reads_and_writes_are_recorded(
    login: LoginFn, users: Users, db: Session, engine: Engine
) -> None:
    nurse = login(users.make(Role.clinician))
    consult = nurse.post("/api/v1/consults", consult_payload()).json()
    nurse.get(f"/api/v1/consults/{consult['id']}")
    nurse.get("/api/v1/consults")
    nurse.post(f"/api/v1/consults/{consult['id']}/messages", {"body": "update"})
    nurse.get(f"/api/v1/consults/{consult['id']}/messages")
    rows = entries(db)
    assert [(e.action, e.object_type) for e in rows] == [
        ("create", "case"),
        ("create", "consult"),
        ("transition", "consult"),
        ("create", "consent"),  # sharing, taken with the request
        ("create", "consent"),  # call
        ("read", "consult"),
        ("list", "consult"),
        ("create", "message"),
        ("read", "thread"),
    ]
    read = rows[5]
    assert read.actor_id == nurse.user.id
    assert read.actor_role == "clinician"
    assert read.case_id == consult["case_id"]
    assert read.consult_id == consult["id"]
    assert read.client_address == "testclient"
    assert rows[2].detail == "draft -> requested"
    assert rows[6].detail == f"consults {consult['id']}"
    assert rows[3].detail == "sharing consent given by the guardian 'Mamosa (mother), verbal"
    # Written unsealed: no writer touched the chain.
    assert [(e.seq, e.prev_hash, e.row_hash) for e in rows] == [(None, None, None)] * len(rows)
    assert seal_pending(engine) == len(rows)
    sealed = entries(db)
    assert [e.seq for e in sealed] == list(range(1, len(rows) + 1))  # no commit raced here
    assert chain.verify(sealed) == (len(rows), None)
    assert service.verify(db) == service.ChainReport(len(rows), None, 0, None)


def test_a_refused_read_is_recorded_and_a_failed_write_leaves_no_row(
    login: LoginFn, users: Users, db: Session
) -> None:
    owner = login(users.make(Role.clinician, "MOTEBANG"))
    consult = owner.post("/api/v1/consults", consult_payload()).json()
    before = len(entries(db))
    stranger = login(users.make(Role.clinician, "PARAY"))
    assert stranger.get(f"/api/v1/consults/{consult['id']}").status_code == 404
    assert owner.post("/api/v1/consults", consult_payload(specialty="astrology")).status_code == 422
    rows = entries(db)[before:]
    assert [(e.action, e.actor_id, e.consult_id) for e in rows] == [
        ("denied", stranger.user.id, consult["id"])
    ]


def test_the_audit_rows_cannot_be_changed_through_the_database(
    login: LoginFn, users: Users, db: Session, engine: Engine
) -> None:
    """Sealed or not, a row is never deleted nor its content changed; the one update the
    triggers allow is the sealing of an unsealed row (chain columns from empty to set,
    once), and a row is never inserted sealed."""
    nurse = login(users.make(Role.clinician))
    nurse.post("/api/v1/consults", consult_payload())  # three rows
    seal_pending(engine)
    nurse.post("/api/v1/consults", consult_payload())  # three more, not sealed
    refused = [
        "UPDATE audit_log SET detail = 'x' WHERE seq = 1",  # sealed
        "UPDATE audit_log SET detail = 'x' WHERE seq IS NULL",  # unsealed
        "DELETE FROM audit_log WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq IS NULL",
        "UPDATE audit_log SET seq = seq + 100 WHERE seq = 1",  # re-sealing a sealed row
        "UPDATE audit_log SET row_hash = 'x' WHERE seq = 1",
        "UPDATE audit_log SET seq = NULL, prev_hash = NULL, row_hash = NULL WHERE seq = 3",
        # sealing, but changing the content on the way
        "UPDATE audit_log SET seq = 99, prev_hash = 'p', row_hash = 'h', detail = 'x' "
        "WHERE id = (SELECT min(id) FROM audit_log WHERE seq IS NULL)",
        # half a sealing
        "UPDATE audit_log SET seq = 99 WHERE id = (SELECT min(id) FROM audit_log WHERE seq IS NULL)",
    ]
    for statement in refused:
        with pytest.raises(Exception, match="append-only"):
            db.execute(text(statement))
        db.rollback()
    with pytest.raises(Exception, match="inserted unsealed"):
        db.execute(
            text(
                "INSERT INTO audit_log (at, actor_role, action, object_type, object_id, "
                "client_address, detail, seq, prev_hash, row_hash) SELECT at, actor_role, "
                "action, object_type, object_id, client_address, detail, 50, row_hash, 'x' "
                "FROM audit_log WHERE seq = 3"
            )
        )
    db.rollback()
    # What the sealer does is allowed (here by hand: any values, the chain is not the
    # triggers' business) and only once.
    sealing = (
        "UPDATE audit_log SET seq = 99, prev_hash = 'p', row_hash = 'h' "
        "WHERE id = (SELECT min(id) FROM audit_log WHERE seq IS NULL)"
    )
    assert db.execute(text(sealing)).rowcount == 1  # type: ignore[attr-defined]
    with pytest.raises(Exception, match="append-only"):
        db.execute(
            text("UPDATE audit_log SET seq = 100, prev_hash = 'p', row_hash = 'h2' WHERE seq = 99")
        )
    db.rollback()


def test_coordinators_read_a_cases_audit_log(login: LoginFn, users: Users, db: Session) -> None:
    nurse = login(users.make(Role.clinician))
    consult = nurse.post("/api/v1/consults", consult_payload()).json()
    coordinator = login(users.make(Role.coordinator))
    url = f"/api/v1/cases/{consult['case_id']}/audit"
    assert nurse.get(url).status_code == 403
    trail = coordinator.get(url).json()
    assert [e["action"] for e in trail] == ["create", "create", "transition", "create", "create"]
    assert [e["object_type"] for e in trail][:2] == ["consent", "consent"]
    assert coordinator.get("/api/v1/cases/999/audit").status_code == 404
    page = coordinator.client.get(f"/cases/{consult['case_id']}/audit")
    assert page.status_code == 200
    assert "MOT-1" in page.text
    assert entries(db)[-1].object_type == "audit_log"


def run_audit(engine: Engine, tmp_path: Path, *command: str) -> Ran:
    """``telemed audit *command`` on the test's database."""
    env = {
        "TELEMED_DATA_DIR": str(tmp_path),
        "TELEMED_DATABASE_URL": engine.url.render_as_string(hide_password=False),
    }
    return run_telemed(["audit", *command], env)


def run_verify(engine: Engine, tmp_path: Path) -> Ran:
    return run_audit(engine, tmp_path, "verify")


def _tamper(db: Session, backend: str, statement: str) -> None:
    """What an attacker with rights over the database does: triggers off, then the change.
    On PostgreSQL for this transaction only (the test database is shared by the whole run,
    and the next test needs its triggers); each SQLite test has a database of its own."""
    if backend == "postgresql":
        db.execute(text("SET LOCAL session_replication_role = replica"))
    else:
        for trigger in ("no_update", "no_delete", "born_unsealed"):
            db.execute(text(f"DROP TRIGGER audit_log_{trigger}"))
    db.execute(text(statement))
    db.commit()


@pytest.mark.parametrize(
    ("tamper", "broken_row", "problem"),
    [
        pytest.param(
            "UPDATE audit_log SET detail = 'nothing to see' WHERE seq = 3", 3, "altered", id="edit"
        ),
        pytest.param(
            "UPDATE audit_log SET actor_id = actor_id + 1 WHERE seq = 4",
            4,
            "altered",
            id="edit-actor",
        ),
        pytest.param(
            "UPDATE audit_log SET object_id = '999' WHERE seq = 2",
            2,
            "altered",
            id="edit-object",
        ),
        pytest.param("DELETE FROM audit_log WHERE seq = 3", 4, "removed", id="delete"),
        pytest.param(
            "DELETE FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)",
            None,
            None,
            id="truncate-tail",
        ),
        pytest.param(
            "INSERT INTO audit_log (at, actor_id, actor_role, action, object_type, object_id, "
            "client_address, detail, seq, prev_hash, row_hash) SELECT at, actor_id, actor_role, "
            "'read', object_type, object_id, client_address, '', 100, row_hash, 'f00d' "
            "FROM audit_log WHERE seq = 5",
            100,
            "removed",
            id="insert-after",
        ),
        pytest.param(
            "UPDATE audit_log SET seq = seq + 1000 WHERE seq = 2",
            3,
            "removed",
            id="renumber",
        ),
        pytest.param(
            # Unsealing a sealed row, for the sealer to chain its forged content anew: the
            # hole it leaves stays, whatever is sealed after it.
            "UPDATE audit_log SET seq = NULL, prev_hash = NULL, row_hash = NULL, "
            "detail = 'forged' WHERE seq = 3",
            4,
            "removed",
            id="unseal",
        ),
    ],
)
def test_audit_verify_names_the_first_tampered_row(
    login: LoginFn,
    users: Users,
    db: Session,
    engine: Engine,
    backend: str,
    tmp_path: Path,
    tamper: str,
    broken_row: int | None,
    problem: str | None,
) -> None:
    nurse = login(users.make(Role.clinician))
    consult = nurse.post("/api/v1/consults", consult_payload(consent=None)).json()
    nurse.get(f"/api/v1/consults/{consult['id']}")
    nurse.post(f"/api/v1/consults/{consult['id']}/messages", {"body": "x"})
    sealed = run_audit(engine, tmp_path, "seal")
    assert sealed.returncode == 0, sealed.stderr
    assert re.search(
        r"Sealed 5 rows; the chain has 5 rows, last hash [0-9a-f]{64}\.", sealed.stdout
    )
    intact = run_verify(engine, tmp_path)
    assert intact.returncode == 0, intact.stderr
    assert "Audit chain intact: 5 rows." in intact.stdout
    assert "Not sealed yet" not in intact.stdout

    _tamper(db, backend, tamper)
    assert run_audit(engine, tmp_path, "seal").returncode == 0  # the sealer cannot mend it
    result = run_verify(engine, tmp_path)
    if broken_row is None:
        # Removing the newest rows leaves a valid shorter chain: only an outside anchor
        # (the last hash kept elsewhere) can tell; the count shows what remains.
        assert result.returncode == 0
        assert "4 rows" in result.stdout
        return
    assert result.returncode == 1
    assert f"audit row {broken_row}" in result.stderr
    assert problem in result.stderr
    assert "Traceback" not in result.stderr


def test_audit_verify_reports_the_unsealed_tail_apart(
    login: LoginFn, users: Users, db: Session, engine: Engine, tmp_path: Path
) -> None:
    """Rows not sealed yet are counted, with the age of the oldest, apart from the chain;
    one left unsealed for over a minute says the sealer is not running."""
    nurse = login(users.make(Role.clinician))
    consult = nurse.post("/api/v1/consults", consult_payload(consent=None)).json()  # three rows
    assert run_audit(engine, tmp_path, "seal").returncode == 0
    nurse.get(f"/api/v1/consults/{consult['id']}")
    nurse.post(f"/api/v1/consults/{consult['id']}/messages", {"body": "x"})
    result = run_verify(engine, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Audit chain intact: 3 rows." in result.stdout
    assert re.search(r"Not sealed yet: 2 rows, the oldest written \d+ s ago", result.stdout)
    assert "Warning" not in result.stdout

    # An unsealed row from two minutes ago (inserting unsealed rows is what writers do).
    db.execute(
        text(
            "INSERT INTO audit_log (at, actor_role, action, object_type, object_id, "
            "client_address, detail) VALUES (:at, 'system', 'read', 'consult', '1', '', '')"
        ).bindparams(bindparam("at", utcnow() - timedelta(minutes=2), type_=UTCDateTime()))
    )
    db.commit()
    stale = run_verify(engine, tmp_path)
    assert re.search(r"Not sealed yet: 3 rows, the oldest written 1[2-9]\d s ago", stale.stdout)
    assert "Warning: is the scheduler running?" in stale.stdout

    both = run_audit(engine, tmp_path, "verify", "--seal")
    assert both.returncode == 0, both.stderr
    assert "Sealed 3 rows." in both.stdout
    assert "Audit chain intact: 6 rows." in both.stdout
    assert "Not sealed yet" not in both.stdout


def _sealed(entries: list[AuditEntry]) -> list[AuditEntry]:
    """``entries`` given their place in a new chain, as the sealer would."""
    for entry, link in zip(entries, chain.link(entries, None), strict=True):
        entry.seq, entry.prev_hash, entry.row_hash = link.seq, link.prev_hash, link.row_hash
    return entries


def _read(row_id: int, detail: str = "") -> AuditEntry:
    from datetime import UTC, datetime

    return AuditEntry(
        id=row_id,
        at=datetime(2026, 1, 1, tzinfo=UTC),
        actor_id=1,
        actor_role="clinician",
        action=AuditAction.read,
        object_type="consult",
        object_id="1",
        client_address="x",
        detail=detail,
    )


def test_chain_detects_an_inserted_row_with_a_forged_hash() -> None:
    # Inserted in the order 7, 3, 5 (ids), committed and sealed in the order 3, 5, 7.
    first, second, third = _sealed([_read(3), _read(5), _read(7)])
    assert [e.seq for e in (first, second, third)] == [1, 2, 3]
    assert chain.verify([first, second, third]) == (3, None)
    [forged] = _sealed([_read(9, "inserted")])
    forged.seq, forged.prev_hash = 2, first.row_hash
    assert forged.prev_hash is not None
    forged.row_hash = chain.row_digest(forged, 2, forged.prev_hash)
    checked, broken = chain.verify([first, forged, third])
    assert checked == 2
    assert broken is not None
    assert (broken.seq, broken.row_id) == (3, 7)
    assert "previous-hash link broken" in broken.problem
    assert str(broken).startswith("audit row 3 (id 7): ")


def test_a_rows_position_is_hashed_not_its_id() -> None:
    """The id is the database's insert order; the chain protects the position and the
    content. Rows chained before the sealer had their id as their position (seq = id), so
    the digest of a position is the digest those rows were given."""
    [row] = _sealed([_read(4)])
    assert row.row_hash == chain.row_digest(_read(1), 1, chain.GENESIS_HASH)
    assert row.row_hash != chain.row_digest(_read(4), 2, chain.GENESIS_HASH)
    assert row.row_hash != chain.row_digest(_read(4, "x"), 1, chain.GENESIS_HASH)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # SQLite: reads in the unit
def test_the_read_appender_commits_at_once_and_never_pools_its_relaxed_connection(
    engine: Engine,
) -> None:
    """A read's row is committed before ``record_access`` returns (another connection sees
    it), and the appender's own connection, whose commits do not wait for the WAL flush,
    is closed for good when dropped: no pooled connection a request gets has that setting."""
    with Session(engine) as session:
        service.record_access(session, None, AuditAction.read, "consult", 1, detail="appended")
        session.rollback()  # the caller's transaction has nothing to do with the row
    with engine.connect() as other:
        found = other.execute(text("SELECT count(*) FROM audit_log WHERE detail = 'appended'"))
        assert found.scalar_one() == 1
    appender = _appenders[engine]
    assert appender._connection is not None  # (kept between batches)
    appender._drop_connection()
    pooled = [engine.connect() for _ in range(engine.pool.checkedin() + 1)]
    try:
        for connection in pooled:
            setting = connection.exec_driver_sql("SHOW synchronous_commit").scalar_one()
            assert setting == "on"
    finally:
        for connection in pooled:
            connection.close()
