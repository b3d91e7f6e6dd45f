"""A third participant in a consult's call (issue 14, item 4): an interpreter or a second
specialist, invited by a coordinator or the consult's assigned specialist.

Who may be invited, and why:

- an **interpreter** is an active clinician or specialist account. Interpreting in a
  clinical call is done by health workers who speak both languages (a nurse of another
  clinic, a Sesotho-speaking doctor); they already hold an account that an administrator
  created and that signs the audit trail. There is no separate "interpreter" account kind:
  one would be an account with no accountable role reading the call. Admins and
  coordinators are not interpreters (they see no call; least privilege).
- a **second specialist** is an active specialist whose registration is verified and not
  expired, as for any specialist who takes a consult (``directory.is_eligible``).

Neither may already be in the call another way (a clinician of the requesting facility,
the assigned specialist). The invitation admits to the call page and a call ticket, within
the consult's call window, until it is revoked (``consults.auth`` is the one access rule).
Invitations are never deleted: revoking sets ``revoked_at``. Inviting someone who is
already invited returns the standing invitation (an idempotent retry); revoking a revoked
one changes nothing. Every invitation and revocation is audited; the ticket too (in
``sessions.service.mint_ticket``).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from telemed.accounts import repository as accounts_repository
from telemed.accounts.models import Role, User
from telemed.audit import service as audit
from telemed.audit.models import AuditAction
from telemed.consults import auth as consult_auth
from telemed.consults import repository as consults_repository
from telemed.consults.models import CallGuest, Consult, ConsultState, GuestRole
from telemed.db import pk
from telemed.directory import repository as directory_repository
from telemed.directory.service import is_eligible
from telemed.errors import Conflict, NotFound, ValidationFailed
from telemed.i18n import N_, gettext, use_language
from telemed.notifications.service import notify
from telemed.sessions import repository
from telemed.sessions.auth import GUEST_SIGNAL_ROLES, NO_CALL_STATES, booked_appointment
from telemed.sessions.schemas import CallGuestPublic
from telemed.timefmt import local_time


def _fitting(session: Session, user: User, role: GuestRole, now: datetime) -> bool:
    if not user.is_active:
        return False
    if role is GuestRole.interpreter:
        return user.role in (Role.clinician, Role.specialist)
    profile = directory_repository.get_profile(session, pk(user))
    return user.role == Role.specialist and profile is not None and is_eligible(profile, now.date())


def _in_call_already(session: Session, user: User, consult: Consult) -> bool:
    return consult_auth.is_requesting_clinician(
        user, consult
    ) or consult_auth.is_assigned_specialist(session, user, consult)


def candidates(session: Session, consult: Consult, now: datetime) -> dict[GuestRole, list[User]]:
    """Whom the consult page's form offers, per role: fitting, and not in the call yet."""
    invited = {
        g.user_id
        for g in consults_repository.guests_of(session, pk(consult))
        if g.revoked_at is None
    }
    found: dict[GuestRole, list[User]] = {}
    users = repository.active_staff(session)
    for role in GuestRole:
        found[role] = [
            u
            for u in users
            if pk(u) not in invited
            and _fitting(session, u, role, now)
            and not _in_call_already(session, u, consult)
        ]
    return found


def invite(
    session: Session, actor: User, consult: Consult, user_id: int, role: GuestRole, now: datetime
) -> tuple[CallGuest, bool]:
    """Invite ``user_id`` into the consult's call; (the invitation, whether it is new).

    403 unless the actor is a coordinator or the assigned specialist; 409 for a consult
    with no call; 422 naming ``user_id`` for someone who does not fit the role or is in the
    call already. The invitee is notified in their language, with the link to the call.
    """
    consult_auth.ensure_can_invite(session, actor, consult)
    if ConsultState(consult.state) in NO_CALL_STATES:
        raise Conflict(
            N_("the consult is %(state)s; it has no call to invite to"),
            state=ConsultState(consult.state).value,
        )
    invitee = session.get(User, user_id)
    if invitee is None or not _fitting(session, invitee, role, now):
        message = (
            N_("user %(user_id)s cannot interpret in a call: an active clinician or specialist")
            if role is GuestRole.interpreter
            else N_("user %(user_id)s is not an active specialist with a verified registration")
        )
        raise ValidationFailed(message, user_id=user_id, field="user_id")
    if _in_call_already(session, invitee, consult):
        raise ValidationFailed(
            N_("%(name)s is in this consult's call already"),
            name=invitee.full_name,
            field="user_id",
        )
    consult_id = pk(consult)
    consults_repository.lock_consult(session, consult_id)  # one invitation per retry race
    standing = consults_repository.active_guest(session, consult_id, user_id)
    if standing is not None:
        if standing.role != role:
            raise Conflict(
                N_("%(name)s is invited already in another role: revoke that first"),
                name=invitee.full_name,
                field="role",
            )
        return standing, False
    guest = CallGuest(
        consult_id=consult_id, user_id=user_id, role=role, invited_by_id=pk(actor), invited_at=now
    )
    session.add(guest)
    session.flush()
    audit.record(
        session,
        actor,
        AuditAction.create,
        "call_guest",
        pk(guest),
        case_id=consult.case_id,
        consult_id=consult_id,
        detail=f"invited user {user_id} as {role.value}",
    )
    _notify(session, invitee, consult, guest, now)
    return guest, True


def revoke(
    session: Session, actor: User, consult: Consult, guest_id: int, now: datetime
) -> CallGuest:
    """Withdraw an invitation (the row stays, with ``revoked_at``); a repeat is a no-op.
    404 for an invitation of another consult."""
    consult_auth.ensure_can_invite(session, actor, consult)
    guest = session.get(CallGuest, guest_id)
    if guest is None or guest.consult_id != consult.id:
        raise NotFound(N_("invitation %(guest_id)s not found"), guest_id=guest_id, field="guest_id")
    if guest.revoked_at is not None:
        return guest
    guest.revoked_at = now
    guest.revoked_by_id = pk(actor)
    session.add(guest)
    session.flush()
    audit.record(
        session,
        actor,
        AuditAction.update,
        "call_guest",
        pk(guest),
        case_id=consult.case_id,
        consult_id=pk(consult),
        detail=f"revoked the invitation of user {guest.user_id}",
    )
    return guest


def guests(session: Session, consult: Consult) -> list[tuple[CallGuest, User]]:
    """The consult's invitations (revoked ones too), with their users, oldest first."""
    rows = consults_repository.guests_of(session, pk(consult))
    users = accounts_repository.users_by_id(session, {g.user_id for g in rows})
    return [(g, users[g.user_id]) for g in rows if g.user_id in users]


def _notify(
    session: Session, invitee: User, consult: Consult, guest: CallGuest, now: datetime
) -> None:
    appointment = booked_appointment(session, consult)
    with use_language(invitee.language):
        names: dict[str, object] = {"id": consult.id}
        what = (
            gettext("as interpreter")
            if guest.role == GuestRole.interpreter
            else gettext("as second specialist")
        )
        names["what"] = what
        body = gettext("You are invited to the call of consult %(id)s %(what)s.") % names
        if appointment is not None:
            names["time"] = local_time(
                appointment.starts_at, ZoneInfo(invitee.timezone), "%a %d %b %H:%M"
            )
            body += "\n" + gettext("The call is booked for %(time)s.") % names
        notify(
            session,
            invitee,
            kind="call_invitation",
            subject=gettext("Invitation to the call of consult %(id)s") % names,
            body=body,
            dedupe_key=f"call_guest:{guest.id}",
            link=f"/consults/{consult.id}/call",
            now=now,
        )


def public(guest: CallGuest, user: User) -> CallGuestPublic:
    role = GuestRole(guest.role)
    return CallGuestPublic(
        id=pk(guest),
        consult_id=guest.consult_id,
        user_id=guest.user_id,
        name=user.full_name,
        role=role,
        signal_role=GUEST_SIGNAL_ROLES[role],
        invited_by_id=guest.invited_by_id,
        invited_at=guest.invited_at,
        revoked_at=guest.revoked_at,
        active=guest.revoked_at is None,
    )


def invitee(session: Session, guest: CallGuest) -> User:
    user = session.get(User, guest.user_id)
    assert user is not None  # a foreign key
    return user
