"""Migration 0011 (the sealer) keeps the chain written before it valid, both ways.

Before 0011 a row's id was its position in the chain and its hash covered the id; from
0011 the position is ``seq``. The rows below are chained the pre-0011 way by this test's
own copy of that digest (not by the product's code), so the test fails if the migration or
the new digest stops accepting them."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, Engine, bindparam, text
from sqlmodel import Session

from telemed.audit import service
from telemed.audit.models import AuditAction
from telemed.audit.sealer import seal_pending
from telemed.db import UTCDateTime
from telemed.migrate import upgrade
from tests.conftest import downgrade

AT = datetime(2026, 11, 30, 8, 15, 0, 123456, tzinfo=UTC)
COLUMNS = "id, at, actor_id, actor_role, action, object_type, object_id, case_id, consult_id"
COLUMNS += ", client_address, detail, prev_hash, row_hash"


def pre_0011_digest(row: dict[str, object], prev_hash: str) -> str:
    """The digest of 0002..0010: the id first, the previous hash last."""
    at = row["at"]
    assert isinstance(at, datetime)
    content = [
        row["id"],
        at.isoformat(timespec="microseconds"),
        *(row[k] for k in ("actor_id", "actor_role", "action", "object_type", "object_id")),
        *(row[k] for k in ("case_id", "consult_id", "client_address", "detail")),
        prev_hash,
    ]
    canonical = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def legacy_row(row_id: int) -> dict[str, object]:
    return {
        "id": row_id,
        "at": AT,
        "actor_id": 7,
        "actor_role": "clinician",
        "action": "read",
        "object_type": "consult",
        "object_id": str(row_id),
        "case_id": 3,
        "consult_id": 4,
        "client_address": "10.0.0.1",
        "detail": f"legacy {row_id}",
    }


def all_rows(connection: Connection) -> list[dict[str, object]]:
    statement = text(f"SELECT {COLUMNS} FROM audit_log ORDER BY id").columns(at=UTCDateTime())
    return [dict(r._mapping) for r in connection.execute(statement)]


def valid_pre_0011_chain(rows: list[dict[str, object]]) -> bool:
    """Ids 1..n, each linked to the one before and hashed the pre-0011 way."""
    prev = "0" * 64
    for expected_id, row in enumerate(rows, start=1):
        if row["id"] != expected_id or row["prev_hash"] != prev:
            return False
        if row["row_hash"] != pre_0011_digest(row, prev):
            return False
        prev = str(row["row_hash"])
    return True


def record(engine: Engine, detail: str) -> None:
    with Session(engine) as session:
        service.record(session, None, AuditAction.update, "consult", 4, detail=detail)
        session.commit()


def report(engine: Engine) -> service.ChainReport:
    with Session(engine) as session:
        return service.verify(session)


def test_the_chain_before_0011_stays_valid_up_and_down(empty_database: Engine) -> None:
    database = empty_database
    upgrade(database, "0010")
    prev = "0" * 64
    with database.begin() as connection:
        for row_id in (1, 2, 3):
            row = legacy_row(row_id)
            row["prev_hash"], row["row_hash"] = prev, pre_0011_digest(row, prev)
            prev = str(row["row_hash"])
            connection.execute(
                text(
                    f"INSERT INTO audit_log ({COLUMNS}) VALUES "
                    f"({', '.join(':' + c.strip() for c in COLUMNS.split(','))})"
                ).bindparams(bindparam("at", type_=UTCDateTime())),
                row,
            )

    upgrade(database)
    assert report(database) == service.ChainReport(3, None, 0, None)
    record(database, "after the upgrade")
    with database.begin() as connection:  # a row the database numbered out of order
        connection.execute(
            text(
                "INSERT INTO audit_log (id, at, actor_role, action, object_type, object_id, "
                "client_address, detail) VALUES (100, :at, 'system', 'read', 'consult', '4', "
                "'', 'numbered 100')"
            ).bindparams(bindparam("at", AT, type_=UTCDateTime()))
        )
    assert seal_pending(database) == 2
    assert report(database) == service.ChainReport(5, None, 0, None)
    with database.connect() as connection:
        assert [(r["id"], r["detail"]) for r in all_rows(connection)][3:] == [
            (4, "after the upgrade"),  # numbered after the old rows (PostgreSQL's sequence)
            (100, "numbered 100"),
        ]

    record(database, "not sealed at the downgrade")
    with pytest.raises(RuntimeError, match="1 audit rows are not sealed yet"):
        downgrade(database, "0010")
    assert seal_pending(database) == 1
    downgrade(database, "0010")
    with database.connect() as connection:
        rows = all_rows(connection)
    assert [r["detail"] for r in rows][3:] == [
        "after the upgrade",
        "numbered 100",
        "not sealed at the downgrade",
    ]
    assert valid_pre_0011_chain(rows)  # ids are positions again; every hash still holds

    upgrade(database)
    assert report(database) == service.ChainReport(6, None, 0, None)
    record(database, "after the second upgrade")
    assert seal_pending(database) == 1
    assert report(database) == service.ChainReport(7, None, 0, None)
