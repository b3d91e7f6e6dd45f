"""The coordinators' directory pages: the verification queue, and each verified
specialist's load this week against their caps (consults, hours booked, emergencies),
counted as the caps count them (``appointments.caps``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from telemed import onboarding
from telemed.appointments import caps
from telemed.deps import CurrentUser, NowDep, SessionDep
from telemed.directory import service
from telemed.directory.models import VerificationStatus
from telemed.mfa.deps import RecentAuth
from telemed.validation import Id
from telemed.web.access import COORDINATORS
from telemed.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/coordinator/specialists")
def verification_queue(
    request: Request,
    user: CurrentUser,
    db: SessionDep,
    now: NowDep,
    status: VerificationStatus | None = VerificationStatus.pending,
) -> HTMLResponse:
    profiles = service.queue(db, user, status, now.date())
    soon = service.expiring_registrations(db, now.date())
    verified = [p.user_id for p in profiles if p.status == VerificationStatus.verified]
    return render(
        request,
        "coordinator_specialists.html",
        {
            "profiles": profiles,
            "status": status,
            "expiring": soon,
            "loads": caps.week_loads(db, verified, now),
        },
    )


@router.post("/coordinator/specialists/{user_id}/verify")
def verify(
    user_id: Id,
    user: CurrentUser,
    _recent: RecentAuth,
    db: SessionDep,
    now: NowDep,
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    onboarding.verify(db, user, user_id, note, now)
    return RedirectResponse("/coordinator/specialists", status_code=303)


@router.post("/coordinator/specialists/{user_id}/reject")
def reject(
    user_id: Id,
    user: CurrentUser,
    _recent: RecentAuth,
    db: SessionDep,
    now: NowDep,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    onboarding.reject(db, user, user_id, reason, now)
    return RedirectResponse("/coordinator/specialists", status_code=303)


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {
    "verification_queue": COORDINATORS,
    "verify": COORDINATORS,
    "reject": COORDINATORS,
}
