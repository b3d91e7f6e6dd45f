"""Shapes of audit rows in the API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from telemed.audit.models import AuditAction


class AuditEntryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    at: datetime
    actor_id: int | None
    actor_role: str
    action: AuditAction
    object_type: str
    object_id: str
    case_id: int | None
    consult_id: int | None
    client_address: str
    detail: str
    seq: int | None  # the row's place in the hash chain; none until the sealer seals it
    row_hash: str | None
