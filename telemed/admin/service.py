"""Administration of accounts and facilities: each change checked against the admin rule
(``telemed.accounts.auth``) and written to the audit log with who made it.

The API (``POST /api/v1/users``) and the admin pages both come through here, so an account
made either way leaves the same audit row. Nothing is deleted: an account is deactivated
(its notes, messages and audit rows stay its own), a facility is edited.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from telemed.accounts import auth
from telemed.accounts import service as accounts
from telemed.accounts.models import User
from telemed.accounts.schemas import UserCreate
from telemed.accounts.session_cache import SessionCache
from telemed.admin.schemas import FacilityIn
from telemed.audit import service as audit
from telemed.audit.models import AuditAction
from telemed.db import pk
from telemed.errors import Conflict, NotFound, ValidationFailed
from telemed.facilities import repository as facilities
from telemed.facilities.models import District, Facility
from telemed.i18n import N_
from telemed.settings import Settings


def create_user(session: Session, settings: Settings, admin: User, data: UserCreate) -> User:
    auth.ensure_admin(admin)
    user = accounts.create_user(
        session,
        settings,
        email=str(data.email),
        full_name=data.full_name,
        role=data.role,
        password=data.password,
        facility_code=data.facility_code or None,
        timezone=data.timezone,
        phone=data.phone,
    )
    session.flush()
    audit.record(session, admin, AuditAction.create, "user", pk(user), detail=str(user.role))
    return user


def deactivate_user(
    session: Session, admin: User, user_id: int, cache: SessionCache | None, now: datetime
) -> User:
    auth.ensure_admin(admin)
    user = accounts.deactivate_user(session, user_id, by=admin, cache=cache, now=now)
    audit.record(session, admin, AuditAction.update, "user", user_id, detail="deactivated")
    return user


def _district(session: Session, district_id: int) -> District:
    district = session.get(District, district_id)
    if district is None:
        raise ValidationFailed(N_("choose a district from the list"), field="district_id")
    return district


def create_facility(session: Session, admin: User, data: FacilityIn) -> Facility:
    auth.ensure_admin(admin)
    _district(session, data.district_id)
    code = data.code.strip().upper()
    if facilities.facility_by_code(session, code) is not None:
        raise Conflict(
            N_("a facility with the code %(code)s exists already"), code=code, field="code"
        )
    facility = Facility(
        code=code, name=data.name.strip(), kind=data.kind.strip(), district_id=data.district_id
    )
    try:
        with session.begin_nested():  # a refusal leaves the caller's unit of work usable
            session.add(facility)
    except IntegrityError as exc:  # a concurrent create with the same code
        raise Conflict(
            N_("a facility with the code %(code)s exists already"), code=code, field="code"
        ) from exc
    audit.record(session, admin, AuditAction.create, "facility", pk(facility), detail=code)
    return facility


def get_facility(session: Session, facility_id: int) -> Facility:
    facility = session.get(Facility, facility_id)
    if facility is None:
        raise NotFound(N_("facility %(facility_id)s not found"), facility_id=facility_id)
    return facility


def update_facility(session: Session, admin: User, facility_id: int, data: FacilityIn) -> Facility:
    """Name, kind and district change; the code too, unless another facility has it (the
    clinicians of the facility keep it: they hold its id, not its code)."""
    auth.ensure_admin(admin)
    facility = get_facility(session, facility_id)
    _district(session, data.district_id)
    code = data.code.strip().upper()
    other = facilities.facility_by_code(session, code)
    if other is not None and pk(other) != facility_id:
        raise Conflict(
            N_("a facility with the code %(code)s exists already"), code=code, field="code"
        )
    facility.code = code
    facility.name = data.name.strip()
    facility.kind = data.kind.strip()
    facility.district_id = data.district_id
    session.add(facility)
    session.flush()
    audit.record(session, admin, AuditAction.update, "facility", facility_id, detail=code)
    return facility
