"""The request id: accepted when sane, else made; echoed; on the access log line and on the
audit rows the request wrote, where the chain hashes it and the triggers keep it unchanged."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select

from telemed import request_id
from telemed.accounts.models import Role
from telemed.audit import chain, sealer
from telemed.audit import service as audit
from telemed.audit.models import AuditEntry
from telemed.observability.logs import ACCESS_LOGGER, JsonFormatter, RequestIdFilter
from tests.conftest import LoginFn
from tests.helpers import Users, consult_payload

HEX32 = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize(
    "incoming",
    ["abc", "nginx-4f1c2a", "req.2026-12-03:7@edge+1=x", "A" * 64, " padded-id "],
)
def test_a_sane_incoming_id_is_kept(incoming: str) -> None:
    assert request_id.accept(incoming) == incoming.strip()


@pytest.mark.parametrize(
    "incoming",
    [None, "", "   ", "A" * 65, "two words", "line\nbreak", 'quote"d', "-leading-dash", "é", "a;b"],
)
def test_anything_else_is_replaced_by_a_fresh_id(incoming: str | None) -> None:
    made = request_id.accept(incoming)
    assert HEX32.fullmatch(made)
    assert made != request_id.accept(incoming)  # fresh each time


def test_the_response_echoes_the_id_or_the_one_made(client: TestClient) -> None:
    assert client.get("/healthz", headers={"X-Request-ID": "lb-77"}).headers["x-request-id"] == (
        "lb-77"
    )
    made = client.get("/healthz", headers={"X-Request-ID": "bad id\t"}).headers["x-request-id"]
    assert HEX32.fullmatch(made)
    first, second = (client.get("/healthz").headers["x-request-id"] for _ in range(2))
    assert first != second
    # Error answers carry it too (a 404 page, a 422 of the API).
    assert client.get("/no/such/page", headers={"X-Request-ID": "e-1"}).headers["x-request-id"] == (
        "e-1"
    )


@pytest.fixture
def access_lines() -> Iterator[io.StringIO]:
    """What the access logger writes through the real JSON formatter and request-id filter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger(ACCESS_LOGGER)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def test_one_json_log_line_per_request_and_the_audit_rows_carry_its_id(
    login: LoginFn, users: Users, db: Session, engine: Engine, access_lines: io.StringIO
) -> None:
    nurse = login(users.make(Role.clinician))
    created = nurse.client.post(
        "/api/v1/consults?source=form",
        json=consult_payload(),
        headers={"X-CSRF-Token": nurse.csrf, "X-Request-ID": "req-create-1"},
    )
    assert created.status_code == 201, created.text
    assert created.headers["x-request-id"] == "req-create-1"
    consult_id = created.json()["id"]
    read = nurse.client.get(
        f"/api/v1/consults/{consult_id}", headers={"X-Request-ID": "req-read-1"}
    )
    assert read.status_code == 200

    lines = [json.loads(line) for line in access_lines.getvalue().splitlines()]
    mine = {line["request_id"]: line for line in lines}
    line = mine["req-create-1"]
    assert (line["method"], line["path"], line["status"]) == ("POST", "/api/v1/consults", 201)
    assert line["duration_ms"] > 0
    assert line["logger"] == ACCESS_LOGGER
    assert line["level"] == "info"
    assert "source=form" not in json.dumps(line)  # no query string: it may hold tokens
    assert mine["req-read-1"]["path"] == f"/api/v1/consults/{consult_id}"

    db.rollback()
    by_request: dict[str | None, set[str]] = {}
    for entry in db.exec(select(AuditEntry).where(AuditEntry.consult_id == consult_id)):
        by_request.setdefault(entry.request_id, set()).add(str(entry.action))
    assert "create" in by_request["req-create-1"]
    assert "read" in by_request["req-read-1"]
    assert None not in by_request  # every row of these requests names its request

    # Sealed, the chain covers the ids: intact, and a row forged afterwards breaks it.
    sealer.seal_pending(engine)
    db.rollback()
    assert audit.verify(db).broken is None
    row = db.exec(select(AuditEntry).where(AuditEntry.request_id == "req-read-1")).first()
    assert row is not None
    assert row.seq is not None
    forged = row.model_copy(update={"request_id": "someone-else"})
    assert chain.row_digest(forged, row.seq, row.prev_hash or "") != row.row_hash


def test_outside_a_request_rows_have_no_id_and_hash_as_before(db: Session, engine: Engine) -> None:
    audit.record(db, None, audit.AuditAction.create, "job", 1, detail="from a job")
    db.commit()
    sealer.seal_pending(engine)
    db.rollback()
    sealed = db.exec(select(AuditEntry).where(AuditEntry.object_type == "job")).one()
    assert sealed.request_id is None
    # The content hashed is exactly what it was before request ids existed.
    legacy = [
        sealed.seq,
        sealed.at.isoformat(timespec="microseconds"),
        sealed.actor_id,
        sealed.actor_role,
        str(sealed.action),
        sealed.object_type,
        sealed.object_id,
        sealed.case_id,
        sealed.consult_id,
        sealed.client_address,
        sealed.detail,
        sealed.prev_hash,
    ]
    canonical = json.dumps(legacy, ensure_ascii=False, separators=(",", ":"))
    assert hashlib.sha256(canonical.encode()).hexdigest() == sealed.row_hash


def test_the_database_refuses_to_change_a_request_id(
    login: LoginFn, users: Users, db: Session, engine: Engine
) -> None:
    nurse = login(users.make(Role.clinician))
    nurse.client.post(
        "/api/v1/consults",
        json=consult_payload(),
        headers={"X-CSRF-Token": nurse.csrf, "X-Request-ID": "req-guarded"},
    )
    db.rollback()
    unsealed = db.exec(
        select(AuditEntry).where(
            AuditEntry.request_id == "req-guarded", col(AuditEntry.seq).is_(None)
        )
    ).first()
    assert unsealed is not None
    # Not even alongside the one update allowed (the sealing of an unsealed row).
    with engine.connect() as connection, pytest.raises(DBAPIError, match="append-only"):
        connection.execute(
            text(
                "UPDATE audit_log SET request_id = 'forged', seq = 999999, prev_hash = :h, "
                "row_hash = :h WHERE id = :id"
            ),
            {"h": "f" * 64, "id": unsealed.id},
        )
    sealer.seal_pending(engine)
    with engine.connect() as connection, pytest.raises(DBAPIError, match="append-only"):
        connection.execute(
            text("UPDATE audit_log SET request_id = 'forged' WHERE id = :id"), {"id": unsealed.id}
        )
