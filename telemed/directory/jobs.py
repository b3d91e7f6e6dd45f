"""The re-verification job: verified specialists whose registration expires within 30
days are asked to renew it (and the coordinators told), once per expiry date; after it
expires they get no offers until a coordinator verifies the renewed registration."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from telemed.accounts.models import User
from telemed.directory import repository
from telemed.directory.models import SpecialistProfile
from telemed.i18n import gettext, use_language
from telemed.labels import label
from telemed.notifications.service import already_queued, notify, notify_coordinators
from telemed.settings import Settings
from telemed.timefmt import format_day
from telemed.uow import Units

REVERIFY_NOTICE = timedelta(days=30)


def reverification_reminders(units: Units, settings: Settings, now: datetime) -> int:
    """Returns how many specialists were told (dates in the clinicians' zone); one unit of
    work for the run (it only queues notices, idempotent by their keys)."""
    with units.one() as session:
        return _remind(session, settings, now)


def _remind(session: Session, settings: Settings, now: datetime) -> int:
    today = now.astimezone(ZoneInfo(settings.clinician_timezone)).date()
    rows = repository.expiring_registrations(session, today, today + REVERIFY_NOTICE)

    def key_of(profile: SpecialistProfile, user: User) -> str:
        return f"reverify:user{user.id}:{profile.registration_expires_on.isoformat()}"

    done = already_queued(session, [key_of(profile, user) for profile, user in rows])
    queued = 0
    for profile, user in rows:
        key = key_of(profile, user)
        if key in done:
            continue  # told already (the coordinators in the same transaction)

        def names(profile: SpecialistProfile = profile, user: User = user) -> dict[str, str]:
            """In the language in force: the day's month name is the reader's."""
            return {
                "day": format_day(profile.registration_expires_on),
                "body": label(profile.registration_body),
                "name": user.full_name,
            }

        with use_language(user.language):
            subject = gettext("Your registration expires on %(day)s") % names()
            body = (
                gettext(
                    "Your %(body)s registration expires on %(day)s. Update it on your profile "
                    "so a coordinator can verify it again; after it expires you receive no "
                    "consult offers."
                )
                % names()
            )
        queued += notify(
            session,
            user,
            kind="reverification",
            subject=subject,
            body=body,
            dedupe_key=key,
            link="/specialists/profile",
            now=now,
        )
        notify_coordinators(
            session,
            kind="reverification",
            # Called at once, in each coordinator's language, while this row is the loop's.
            subject=lambda: gettext("%(name)s's registration expires on %(day)s") % names(),
            body=lambda: gettext("%(name)s (%(body)s) must be verified again.") % names(),
            dedupe_key=key,
            link="/coordinator/specialists",
            now=now,
        )
    return queued
