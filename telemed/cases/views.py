"""The case timeline page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from telemed.cases import timeline
from telemed.deps import CurrentUser, SessionDep
from telemed.notes.models import OUTCOME_LABELS
from telemed.validation import Id
from telemed.web.access import CLINICIAN, COORDINATOR, SPECIALIST, Access
from telemed.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/cases/{case_id}/timeline")
def case_timeline(request: Request, case_id: Id, user: CurrentUser, db: SessionDep) -> HTMLResponse:
    return render(
        request,
        "case_timeline.html",
        {"timeline": timeline.build(db, user, case_id), "outcome_labels": OUTCOME_LABELS},
    )


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {
    "case_timeline": Access(
        CLINICIAN, SPECIALIST, COORDINATOR, scope="the case's consults the user may see"
    ),
}
