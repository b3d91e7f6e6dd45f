"""Shapes of audit rows in the API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from telemed.audit.models import AuditAction
from telemed.validation import Id


class AuditEntryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    at: datetime
    actor_id: Id | None
    actor_role: str
    action: AuditAction
    object_type: str
    object_id: str
    case_id: Id | None
    consult_id: Id | None
    client_address: str
    detail: str
    seq: int | None  # the row's place in the hash chain; none until the sealer seals it
    row_hash: str | None
