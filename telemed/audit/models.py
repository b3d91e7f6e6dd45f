"""The audit trail: every read and write of clinical data, hash-chained.

Each row carries the hash of the previous row and its own hash over its content and that
previous hash, so that altering, inserting or removing a row breaks the chain at that row
(`telemed audit verify`). The table is also append-only at the database level.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, String
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
    denied = "denied"


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_case", "case_id", "id"),
        Index("ix_audit_log_consult", "consult_id", "id"),
    )
    # Assigned by the chain (previous id + 1), not by the database: the id is hashed.
    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
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
    prev_hash: str = Field(max_length=64)
    row_hash: str = Field(max_length=64, unique=True)
