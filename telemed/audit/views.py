"""The audit log page of a case (coordinators)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from telemed.accounts import repository as accounts_repository
from telemed.audit import service
from telemed.cases.models import Case
from telemed.deps import CurrentUser, SessionDep
from telemed.validation import Id
from telemed.web.access import COORDINATORS
from telemed.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/cases/{case_id}/audit")
def case_audit_page(
    request: Request, case_id: Id, user: CurrentUser, db: SessionDep
) -> HTMLResponse:
    entries = service.case_trail(db, user, case_id)
    people = accounts_repository.users_by_id(db, {e.actor_id for e in entries if e.actor_id})
    return render(
        request,
        "case_audit.html",
        {"case": db.get(Case, case_id), "entries": entries, "people": people},
    )


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {"case_audit_page": COORDINATORS}
