"""Audit trail JSON API (coordinators)."""

from __future__ import annotations

from fastapi import APIRouter

from telemed.audit import service
from telemed.audit.schemas import AuditEntryPublic
from telemed.deps import CurrentUser, SessionDep
from telemed.validation import Id
from telemed.web.access import COORDINATORS
from telemed.web.errors import error_responses

router = APIRouter(tags=["audit"])


@router.get("/cases/{case_id}/audit", responses=error_responses(401, 403, 404))
def case_audit(case_id: Id, user: CurrentUser, db: SessionDep) -> list[AuditEntryPublic]:
    """Every recorded read and write of one case's clinical data, newest first."""
    return [AuditEntryPublic.model_validate(e) for e in service.case_trail(db, user, case_id)]


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {"case_audit": COORDINATORS}
