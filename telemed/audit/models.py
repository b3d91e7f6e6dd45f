"""The audit trail: every read and write of clinical data, hash-chained.

A row is written unsealed (``seq``, ``prev_hash`` and ``row_hash`` empty) in the
transaction of the write it records, so it commits with it and no writer waits for the
chain. The sealer (``telemed.audit.sealer``) then gives each committed row its place in
the chain (``seq``), the previous row's hash and its own hash over its position, content
and that previous hash, so that altering, inserting or removing a sealed row breaks the
chain at that row (`telemed audit verify`). Database triggers refuse any delete and any
update except that one sealing of an unsealed row (migration 0011).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, String, text
from sqlmodel import Field, SQLModel

from telemed.db import UTCDateTime, utcnow


class AuditAction(StrEnum):
    read = "read"
    list = "list"
    create = "create"
    update = "update"
    transition = "transition"
    sign = "sign"
    amend = "amend"
    upload = "upload"
    download = "download"
    export = "export"  # handed to another system in bulk (FHIR NDJSON)
    denied = "denied"
    authenticate = "authenticate"  # a second factor or a re-authentication passed (mfa)


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_case", "case_id", "id"),
        Index("ix_audit_log_consult", "consult_id", "id"),
        Index("ix_audit_log_request_id", "request_id"),
        # The sealer's work list: small, whatever the length of the chain.
        Index(
            "ix_audit_log_unsealed",
            "id",
            postgresql_where=text("seq IS NULL"),
            sqlite_where=text("seq IS NULL"),
        ),
    )
    # The database's, in insert order; the position in the chain is ``seq``.
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    actor_id: int | None = Field(default=None)
    actor_role: str = Field(max_length=16, sa_type=String(16))
    action: AuditAction = Field(sa_type=String(16))
    object_type: str = Field(max_length=32)
    object_id: str = Field(max_length=64)
    case_id: int | None = None
    consult_id: int | None = None
    client_address: str = Field(default="", max_length=64)
    detail: str = Field(default="", max_length=500)
    # The request that wrote the row (``telemed.request_id``), as in its log line; None for
    # rows written outside a request (jobs, the command line) and before migration 0013.
    request_id: str | None = Field(default=None, max_length=64)
    # Set once, by the sealer; a second sealer giving the same position fails (unique).
    seq: int | None = Field(default=None, unique=True)
    prev_hash: str | None = Field(default=None, max_length=64)
    row_hash: str | None = Field(default=None, max_length=64, unique=True)
