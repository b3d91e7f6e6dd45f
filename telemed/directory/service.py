"""The specialist directory: registration, profiles, verification, availability.

A specialist receives offers only while a coordinator-verified registration is unexpired
(:func:`is_eligible`). Changing the registration details sends the profile back to the
verification queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from pydantic import ValidationError as PydanticValidationError
from sqlmodel import Session

from scheduling import TimeSlot
from telemed.accounts import service as accounts
from telemed.accounts.models import Role, User
from telemed.audit import service as audit
from telemed.audit.models import AuditAction
from telemed.consults import repository as consults_repository
from telemed.db import pk
from telemed.directory import auth, repository
from telemed.directory.availability import check_zone, input_of, library_value, rows_of, slots
from telemed.directory.availability import validated as validated_availability
from telemed.directory.models import SpecialistProfile, VerificationStatus
from telemed.directory.schemas import (
    AvailabilityIn,
    AvailabilityPublic,
    ProfileFields,
    ProfilePublic,
    RegistrationIn,
)
from telemed.errors import Conflict, NotFound, TooManyRequests, ValidationFailed
from telemed.i18n import N_
from telemed.settings import Settings
from telemed.timefmt import local

REVERIFY_WITHIN = timedelta(days=30)


def is_eligible(profile: SpecialistProfile, today: date) -> bool:
    """Verified by a coordinator and the registration has not expired."""
    return (
        profile.status == VerificationStatus.verified and profile.registration_expires_on >= today
    )


def _check_profile(session: Session, data: ProfileFields, today: date) -> None:
    check_zone(data.time_zone)
    for code in data.specialties:
        if consults_repository.active_specialty(session, code) is None:
            raise ValidationFailed(
                N_("unknown specialty %(code)s"), code=repr(code), field="specialties"
            )
    if data.registration_expires_on < today:
        raise ValidationFailed(
            N_("the registration has already expired; renew it first"),
            field="registration_expires_on",
        )


def _apply(profile: SpecialistProfile, data: ProfileFields, now: datetime) -> bool:
    """Copy the fields; True when the registration itself changed."""
    changed = (
        profile.registration_body != data.registration_body
        or profile.registration_number != data.registration_number.strip()
        or profile.registration_expires_on != data.registration_expires_on
    )
    profile.sub_specialties = data.sub_specialties.strip()
    profile.languages = ",".join(dict.fromkeys(lang.value for lang in data.languages))
    profile.country = data.country.upper()
    profile.registration_body = data.registration_body
    profile.registration_number = data.registration_number.strip()
    profile.registration_expires_on = data.registration_expires_on
    profile.bio = data.bio.strip()
    profile.updated_at = now
    return changed


def register(
    session: Session, settings: Settings, data: RegistrationIn, address: str, now: datetime
) -> SpecialistProfile:
    """A new specialist account and its profile, pending verification.

    One savepoint: a refusal (a taken e-mail, the rate limit, an unknown specialty) leaves
    nothing of the account or the profile, even when the caller goes on to render the form
    again and its unit of work commits."""
    with session.begin_nested():
        return _register(session, settings, data, address, now)


def _register(
    session: Session, settings: Settings, data: RegistrationIn, address: str, now: datetime
) -> SpecialistProfile:
    _check_profile(session, data, now.date())
    recent = repository.registrations_since(session, address, now - timedelta(hours=1))
    if recent >= settings.registrations_per_hour_per_address:
        raise TooManyRequests(
            N_("Too many registrations from your network; try again in an hour."),
            retry_after_seconds=3600,
        )
    user = accounts.create_user(
        session,
        settings,
        email=str(data.email),
        full_name=data.full_name,
        role=Role.specialist,
        password=data.password,
        timezone=data.time_zone,
        phone=data.phone or None,
    )
    profile = SpecialistProfile(
        user_id=pk(user),
        languages="",
        country="",
        registration_body=data.registration_body,
        registration_number="",
        registration_expires_on=data.registration_expires_on,
        registered_from=address[:64],
        created_at=now,
    )
    _apply(profile, data, now)
    session.add(profile)
    session.flush()
    repository.replace_specialties(session, pk(user), dict.fromkeys(data.specialties))
    audit.record(session, user, AuditAction.create, "specialist_profile", pk(user))
    session.flush()
    return profile


@dataclass(frozen=True)
class ProfileSaved:
    profile: SpecialistProfile
    sent_back: bool  # its registration changed: back in the verification queue


def update_profile(
    session: Session, user: User, data: ProfileFields, now: datetime
) -> ProfileSaved:
    """Save the specialist's own profile. Changed registration details send a verified or
    rejected profile back to the verification queue: a coordinator must check the new ones
    before offers resume. One savepoint: a refusal leaves nothing of it, even when the
    caller renders the form again and its unit of work commits."""
    with session.begin_nested():
        return _update_profile(session, user, data, now)


def _update_profile(
    session: Session, user: User, data: ProfileFields, now: datetime
) -> ProfileSaved:
    user_id = auth.ensure_specialist(user)
    profile = get_profile(session, user_id)
    _check_profile(session, data, now.date())
    sent_back = _apply(profile, data, now) and profile.status != VerificationStatus.pending
    if sent_back:
        profile.status = VerificationStatus.pending
        profile.verification_note = ""
    session.add(profile)
    repository.replace_specialties(session, user_id, dict.fromkeys(data.specialties))
    stored = session.get(User, user_id)
    if stored is not None:
        stored.timezone = data.time_zone
        if data.phone is not None:  # absent from an API call: kept
            stored.phone = data.phone or None
        session.add(stored)
    audit.record(session, user, AuditAction.update, "specialist_profile", user_id)
    session.flush()
    return ProfileSaved(profile, sent_back)


def get_profile(session: Session, user_id: int) -> SpecialistProfile:
    profile = repository.get_profile(session, user_id)
    if profile is None:
        raise NotFound(N_("specialist %(user_id)s has no profile"), user_id=user_id)
    return profile


def public(session: Session, profile: SpecialistProfile, user: User, today: date) -> ProfilePublic:
    return ProfilePublic(
        user_id=profile.user_id,
        full_name=user.full_name,
        email=user.email,
        specialties=repository.specialties_of(session, [profile.user_id]).get(profile.user_id, []),
        sub_specialties=profile.sub_specialties,
        languages=profile.language_codes,
        country=profile.country,
        time_zone=user.timezone,
        registration_body=profile.registration_body,
        registration_number=profile.registration_number,
        registration_expires_on=profile.registration_expires_on,
        bio=profile.bio,
        status=profile.status,
        verified_by_id=profile.verified_by_id,
        verified_at=profile.verified_at,
        verification_note=profile.verification_note,
        rejection_reason=profile.rejection_reason,
        eligible=is_eligible(profile, today),
    )


# --- onboarding: what a newcomer does before receiving offers -----------------------------


@dataclass(frozen=True)
class Onboarding:
    """Where a specialist stands: registered (always, having a profile), verified, hours
    set, not away. Offers come only once all of it holds; the profile page words each step."""

    verification: str  # "done", "expired", "pending" or "rejected"
    hours_set: bool
    away: bool

    @property
    def complete(self) -> bool:
        return self.verification == "done" and self.hours_set and not self.away


def onboarding(session: Session, user: User, today: date) -> Onboarding:
    profile = get_profile(session, auth.ensure_specialist(user))
    availability = get_availability(session, user)
    if is_eligible(profile, today):
        verification = "done"
    elif profile.status == VerificationStatus.verified:  # verified, but it has expired
        verification = "expired"
    elif profile.status == VerificationStatus.pending:
        verification = "pending"
    else:
        verification = "rejected"
    hours = bool(availability.weekly) or any(x.day >= today for x in availability.extra)
    return Onboarding(verification, hours, profile.away)


def days_to_expiry_warning(expires_on: date, today: date) -> int | None:
    """Days until the registration expires (negative: expired) when the specialist should
    be warned, that is within the reminder period :data:`REVERIFY_WITHIN` or after; None
    when no warning is due."""
    left = (expires_on - today).days
    return left if left <= REVERIFY_WITHIN.days else None


def queue(
    session: Session, user: User, status: VerificationStatus | None, today: date
) -> list[ProfilePublic]:
    auth.ensure_coordinator(user)
    return [public(session, p, u, today) for p, u in repository.list_profiles(session, status)]


def verify(
    session: Session, coordinator: User, user_id: int, note: str, now: datetime
) -> SpecialistProfile:
    """Record who verified the registration, when, and on what evidence."""
    auth.ensure_coordinator(coordinator)
    if len(note.strip()) < 3:
        raise ValidationFailed(N_("say what evidence you checked"), field="note")
    profile = get_profile(session, user_id)
    if profile.registration_expires_on < now.date():
        raise Conflict(
            N_("this registration has expired; the specialist must renew it first"),
            field="registration_expires_on",
        )
    profile.status = VerificationStatus.verified
    profile.verified_by_id = coordinator.id
    profile.verified_at = now
    profile.verification_note = note.strip()
    profile.rejection_reason = ""
    session.add(profile)
    audit.record(
        session, coordinator, AuditAction.update, "specialist_profile", user_id, detail="verified"
    )
    session.flush()
    return profile


def reject(
    session: Session, coordinator: User, user_id: int, reason: str, now: datetime
) -> SpecialistProfile:
    auth.ensure_coordinator(coordinator)
    if len(reason.strip()) < 3:
        raise ValidationFailed(N_("say why the registration is rejected"), field="reason")
    profile = get_profile(session, user_id)
    profile.status = VerificationStatus.rejected
    profile.verified_by_id = coordinator.id
    profile.verified_at = now
    profile.rejection_reason = reason.strip()
    session.add(profile)
    audit.record(
        session, coordinator, AuditAction.update, "specialist_profile", user_id, detail="rejected"
    )
    session.flush()
    return profile


@dataclass(frozen=True)
class Expiring:
    user_id: int
    full_name: str
    email: str
    expires_on: date


def expiring_registrations(
    session: Session, today: date, within: timedelta = REVERIFY_WITHIN
) -> list[Expiring]:
    """Verified specialists whose registration expires within ``within`` (reminder job)."""
    return [
        Expiring(p.user_id, u.full_name, u.email, p.registration_expires_on)
        for p, u in repository.expiring(session, today, today + within)
    ]


# --- availability ------------------------------------------------------------------------


def get_availability(session: Session, user: User) -> AvailabilityPublic:
    user_id = auth.ensure_specialist(user)
    profile = get_profile(session, user_id)
    data = input_of(
        profile,
        repository.windows_of(session, [user_id]).get(user_id, []),
        repository.exceptions_of(session, [user_id]).get(user_id, []),
    )
    return AvailabilityPublic(**data.model_dump(), time_zone=user.timezone)


Booked = Sequence[tuple[datetime, datetime]]


def _ensure_keeps_booked(
    session: Session,
    settings: Settings,
    user: User,
    zone: str,
    data: AvailabilityIn,
    booked: Booked,
    now: datetime,
) -> None:
    """Refuse (409 ``weekly``, the attempt audited) new availability that removes the hours
    under a booked appointment: one the old availability covered and the new one does not.
    The appointment is kept and nothing is saved; the specialist reschedules or cancels it
    first. Away and the minimum notice are left aside (they stop new offers only); an
    appointment booked outside the hours (by hand, by phone) never was under them."""
    ahead = [(start, end) for start, end in booked if end > now]
    if not ahead:
        return
    user_id = pk(user)
    length = timedelta(minutes=settings.slot_minutes)
    horizon = max(end for _, end in ahead) - now + length
    stored = library_value(
        user.timezone,
        get_profile(session, user_id),
        repository.windows_of(session, [user_id]).get(user_id, []),
        repository.exceptions_of(session, [user_id]).get(user_id, []),
    )
    new = validated_availability(zone, data, length)
    covered = [
        slots(replace(a, away=False, min_notice=timedelta(0)), now, horizon, length)
        for a in (stored, new)
    ]
    for start, end in sorted(ahead):
        before, after = (any(s.start < end and start < s.end for s in c) for c in covered)
        if before and not after:
            message = (
                f"you have an appointment on {local(start, user.timezone)} in the hours you "
                "removed; reschedule or cancel it first, or keep those hours"
            )
            audit.record_refusal(
                session, user, "availability", user_id, detail=f"conflict: {message}"
            )
            raise Conflict(message, field="weekly")


def set_availability(
    session: Session,
    settings: Settings,
    user: User,
    data: AvailabilityIn,
    now: datetime,
    *,
    booked: Booked = (),
) -> AvailabilityPublic:
    """Replace the specialist's availability after the scheduling library's checks; never
    from under ``booked`` appointments (their start and end, given by the caller: the
    directory knows nothing of appointments)."""
    user_id = auth.ensure_specialist(user)
    profile = get_profile(session, user_id)
    validated_availability(user.timezone, data, timedelta(minutes=settings.slot_minutes))
    _ensure_keeps_booked(session, settings, user, user.timezone, data, booked, now)
    windows, exceptions = rows_of(user_id, data)
    repository.replace_availability(session, user_id, windows, exceptions)
    profile.weekly_cap = data.weekly_cap
    profile.weekly_cap_minutes = (
        None if data.weekly_cap_hours is None else round(data.weekly_cap_hours * 60)
    )
    profile.away = data.away
    profile.min_notice_minutes = data.min_notice_minutes
    profile.updated_at = now
    session.add(profile)
    audit.record(session, user, AuditAction.update, "availability", user_id)
    session.flush()
    return AvailabilityPublic(**data.model_dump(), time_zone=user.timezone)


def save_availability(
    session: Session,
    settings: Settings,
    user: User,
    data: AvailabilityIn,
    time_zone: str,
    now: datetime,
    *,
    booked: Booked = (),
) -> User:
    """Replace the specialist's availability and, when ``time_zone`` is another zone, move
    the profile to it first (the windows keep their clock times, now read in the new zone).
    Checked in the new zone before anything is written, and one savepoint: a refused save
    leaves the zone unchanged too. The user as saved (with its zone)."""
    with session.begin_nested():
        zone = check_zone(time_zone)
        validated_availability(zone, data, timedelta(minutes=settings.slot_minutes))
        _ensure_keeps_booked(session, settings, user, zone, data, booked, now)
        saver = user if zone == user.timezone else _move_zone(session, user, zone, now)
        set_availability(session, settings, saver, data, now)
    return saver


def _move_zone(session: Session, user: User, zone: str, now: datetime) -> User:
    """The specialist's profile moved to ``zone``, every other field as stored."""
    profile = get_profile(session, auth.ensure_specialist(user))
    current = public(session, profile, user, now.date())
    try:
        fields = ProfileFields.model_validate(
            {**current.model_dump(include=set(ProfileFields.model_fields)), "time_zone": zone}
        )
    except PydanticValidationError as exc:
        raise ValidationFailed(
            N_("your time zone cannot be changed: %(error)s"), error=exc
        ) from exc
    _update_profile(session, user, fields, now)
    stored = session.get(User, profile.user_id)
    assert stored is not None
    return stored


def upcoming_slots(
    session: Session, settings: Settings, user: User, now: datetime, horizon: timedelta
) -> list[TimeSlot]:
    """The specialist's availability expanded to concrete UTC slots over ``horizon``."""
    user_id = auth.ensure_specialist(user)
    profile = get_profile(session, user_id)
    availability = library_value(
        user.timezone,
        profile,
        repository.windows_of(session, [user_id]).get(user_id, []),
        repository.exceptions_of(session, [user_id]).get(user_id, []),
    )
    return slots(availability, now, horizon, timedelta(minutes=settings.slot_minutes))
