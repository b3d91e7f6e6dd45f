"""Specialist directory JSON API: registration, profile, verification, availability."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request

from telemed import onboarding
from telemed.accounts.models import User
from telemed.appointments import caps, free_time
from telemed.deps import CurrentUser, NowDep, SessionDep, SettingsDep, client_address
from telemed.directory import auth, service
from telemed.directory.models import VerificationStatus
from telemed.directory.schemas import (
    AvailabilityIn,
    AvailabilityPublic,
    LoadPublic,
    ProfileFields,
    ProfilePublic,
    RegistrationIn,
    RejectIn,
    SlotPublic,
    VerifyIn,
)
from telemed.mfa.deps import RecentAuth
from telemed.validation import Id
from telemed.web.access import COORDINATORS, PUBLIC, SPECIALIST_OWN
from telemed.web.errors import error_responses

router = APIRouter(tags=["directory"])

ERRORS = error_responses(401, 403, 404, 409, 422)


@router.post("/specialists/register", status_code=201, responses=error_responses(409, 422, 429))
def register(
    body: RegistrationIn, request: Request, db: SessionDep, settings: SettingsDep, now: NowDep
) -> ProfilePublic:
    """Create a specialist account and profile; it receives no offers until a coordinator
    has verified the registration. Throttled per client address."""
    profile = service.register(db, settings, body, client_address(request), now)
    user = db.get(User, profile.user_id)
    assert user is not None
    return service.public(db, profile, user, now.date())


@router.get("/specialists/me", responses=ERRORS)
def my_profile(user: CurrentUser, db: SessionDep, now: NowDep) -> ProfilePublic:
    """Your own profile and its verification status (specialists)."""
    return service.public(
        db, service.get_profile(db, auth.ensure_specialist(user)), user, now.date()
    )


@router.put("/specialists/me", responses=ERRORS)
def update_my_profile(
    body: ProfileFields, user: CurrentUser, db: SessionDep, now: NowDep
) -> ProfilePublic:
    """Change your profile; a changed registration goes back to the verification queue."""
    profile = service.update_profile(db, user, body, now).profile
    stored = db.get(User, profile.user_id)
    assert stored is not None
    return service.public(db, profile, stored, now.date())


@router.get("/specialists/me/availability", responses=ERRORS)
def my_availability(user: CurrentUser, db: SessionDep) -> AvailabilityPublic:
    """Weekly windows, leave, extra hours, cap, away switch, notice: in your time zone."""
    return service.get_availability(db, user)


@router.put("/specialists/me/availability", responses=ERRORS)
def set_my_availability(
    body: AvailabilityIn, user: CurrentUser, db: SessionDep, settings: SettingsDep, now: NowDep
) -> AvailabilityPublic:
    """Replace your availability. Overlapping or inverted windows, windows off the slot
    grid and inverted leave are refused (422 naming the field); removing the hours under a
    booked appointment too (409 ``weekly``, nothing saved)."""
    booked = free_time.booked_times(db, user, now)
    return service.set_availability(db, settings, user, body, now, booked=booked)


@router.get("/specialists/me/slots", responses=ERRORS)
def my_slots(
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    days: Annotated[int, Query(ge=1, le=60)] = 7,
) -> list[SlotPublic]:
    """Your availability expanded into concrete UTC slots for the next `days` days."""
    found = service.upcoming_slots(db, settings, user, now, timedelta(days=days))
    return [SlotPublic(start=s.start, end=s.end) for s in found]


@router.get("/specialists", responses=ERRORS)
def list_specialists(
    user: CurrentUser, db: SessionDep, now: NowDep, status: VerificationStatus | None = None
) -> list[ProfilePublic]:
    """Every specialist profile, oldest first; `status=pending` is the verification queue
    (coordinators)."""
    return service.queue(db, user, status, now.date())


@router.get("/specialists/load", responses=ERRORS)
def week_load(user: CurrentUser, db: SessionDep, now: NowDep) -> list[LoadPublic]:
    """Each verified specialist's consults, hours booked and emergencies this week (their
    zone's ISO week) against their caps, as the coordinators' directory page shows them."""
    verified = service.queue(db, user, VerificationStatus.verified, now.date())
    loads = caps.week_loads(db, [p.user_id for p in verified], now)
    return [
        LoadPublic(user_id=p.user_id, full_name=p.full_name, **asdict(loads[p.user_id]))
        for p in verified
        if p.user_id in loads
    ]


@router.get("/specialists/expiring", responses=ERRORS)
def expiring(
    user: CurrentUser, db: SessionDep, now: NowDep, days: Annotated[int, Query(ge=1, le=365)] = 30
) -> list[ProfilePublic]:
    """Verified specialists whose registration expires within `days` (coordinators)."""
    auth.ensure_coordinator(user)
    soon = service.expiring_registrations(db, now.date(), timedelta(days=days))
    out = []
    for item in soon:
        specialist = db.get(User, item.user_id)
        assert specialist is not None
        out.append(
            service.public(db, service.get_profile(db, item.user_id), specialist, now.date())
        )
    return out


@router.post("/specialists/{user_id}/verify", responses=ERRORS)
def verify(
    user_id: Id,
    body: VerifyIn,
    user: CurrentUser,
    _recent: RecentAuth,
    db: SessionDep,
    now: NowDep,
) -> ProfilePublic:
    """Verify a registration, recording the evidence checked (coordinators)."""
    profile = onboarding.verify(db, user, user_id, body.note, now)
    specialist = db.get(User, user_id)
    assert specialist is not None
    return service.public(db, profile, specialist, now.date())


@router.post("/specialists/{user_id}/reject", responses=ERRORS)
def reject(
    user_id: Id,
    body: RejectIn,
    user: CurrentUser,
    _recent: RecentAuth,
    db: SessionDep,
    now: NowDep,
) -> ProfilePublic:
    """Reject a registration with the reason (coordinators)."""
    profile = onboarding.reject(db, user, user_id, body.reason, now)
    specialist = db.get(User, user_id)
    assert specialist is not None
    return service.public(db, profile, specialist, now.date())


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {
    "register": PUBLIC,
    "my_profile": SPECIALIST_OWN,
    "update_my_profile": SPECIALIST_OWN,
    "my_availability": SPECIALIST_OWN,
    "set_my_availability": SPECIALIST_OWN,
    "my_slots": SPECIALIST_OWN,
    "list_specialists": COORDINATORS,
    "week_load": COORDINATORS,
    "expiring": COORDINATORS,
    "verify": COORDINATORS,
    "reject": COORDINATORS,
}
