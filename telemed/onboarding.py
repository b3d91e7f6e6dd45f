"""A specialist's registration decided: the decision, then an e-mail saying so.

The registration confirmation page promises "you get an e-mail once a coordinator has
checked your registration"; the directory knows nothing about notifications, so the
coordinator's verify and reject (page and API) come through here, as the other
cross-domain steps go through ``telemed.flows``.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from telemed import i18n
from telemed.accounts.models import User
from telemed.directory import service as directory
from telemed.directory.models import SpecialistProfile
from telemed.errors import NotFound
from telemed.i18n import N_
from telemed.notifications.service import notify

PROFILE_LINK = "/specialists/profile"


def _tell(
    session: Session, profile: SpecialistProfile, subject: str, body: str, now: datetime
) -> None:
    specialist = session.get(User, profile.user_id)
    if specialist is None:
        raise NotFound(N_("specialist %(user_id)s has no profile"), user_id=profile.user_id)
    stamp = profile.verified_at.isoformat() if profile.verified_at else now.isoformat()
    with i18n.use_language(specialist.language):
        notify(
            session,
            specialist,
            kind="registration_decided",
            subject=i18n.gettext(subject),
            body=i18n.gettext(body),
            dedupe_key=f"registration:{profile.user_id}:{profile.status}:{stamp}",
            link=PROFILE_LINK,
            now=now,
        )


def verify(
    session: Session, coordinator: User, user_id: int, note: str, now: datetime
) -> SpecialistProfile:
    """Verify the registration and tell the specialist that offers can now reach them."""
    profile = directory.verify(session, coordinator, user_id, note, now)
    _tell(
        session,
        profile,
        N_("Your Telemed registration is verified"),
        N_(
            "A coordinator has checked your registration: you can now receive consult "
            "requests. Set the hours you are available on your profile."
        ),
        now,
    )
    return profile


def reject(
    session: Session, coordinator: User, user_id: int, reason: str, now: datetime
) -> SpecialistProfile:
    """Reject the registration and tell the specialist where to read why and correct it."""
    profile = directory.reject(session, coordinator, user_id, reason, now)
    _tell(
        session,
        profile,
        N_("Your Telemed registration needs a correction"),
        N_(
            "A coordinator could not verify your registration. Your profile says why; "
            "correct it there and it is checked again."
        ),
        now,
    )
    return profile
