"""The on-call specialist's wake-up: SMS and e-mail, both with the one-tap accept link.

No patient text: the consult is named by number, specialty and urgency (the messages
leave the system). The link is absolute in the SMS (it has no "Open:" line of its own);
the e-mail carries it as the notification's link, made absolute on delivery.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from telemed.accounts.models import User
from telemed.audit import service as audit
from telemed.audit.models import AuditAction
from telemed.consults.models import Consult
from telemed.db import pk
from telemed.i18n import gettext, use_language
from telemed.labels import label
from telemed.notifications.service import notify
from telemed.oncall import links
from telemed.oncall.policy import OnCallPolicy
from telemed.timefmt import local_time


def accept_path(policy: OnCallPolicy, offer_id: int, user_id: int, expires_at: datetime) -> str:
    return links.PATH + links.sign(policy.link_secret, offer_id, user_id, expires_at)


def on_call_offered(
    session: Session,
    consult: Consult,
    offer_id: int,
    specialist: User,
    expires_at: datetime,
    now: datetime,
    policy: OnCallPolicy,
) -> None:
    """Queue the SMS and e-mail (same dedupe key as an ordinary offer notice, so never
    both) and audit that a link was handed out."""
    path = accept_path(policy, offer_id, pk(specialist), expires_at)
    url = policy.public_base_url.rstrip("/") + path
    with use_language(specialist.language):
        names = {
            "consult": gettext("%(specialty)s consult %(id)s")
            % {"specialty": label(consult.specialty), "id": consult.id},
            "until": local_time(expires_at, ZoneInfo(specialist.timezone), "%H:%M"),
            "url": url,
        }
        subject = gettext("EMERGENCY (you are on call): %(consult)s") % names
        body = "\n".join(
            (
                gettext("You are on call and an emergency %(consult)s needs you now.") % names,
                gettext("Accept by %(until)s with one tap (no login needed): the link works once.")
                % names,
                gettext("If you do not, it goes to every available specialist."),
            )
        )
        sms = (
            gettext("Telemed EMERGENCY, you are on call: %(consult)s. Accept by %(until)s: %(url)s")
            % names
        )
    notify(
        session,
        specialist,
        kind="oncall_offer",
        subject=subject,
        body=body,
        dedupe_key=f"offer:{offer_id}",
        link=path,
        sms=sms,
        now=now,
    )
    audit.record(
        session,
        None,
        AuditAction.create,
        "oncall_link",
        offer_id,
        case_id=consult.case_id,
        consult_id=pk(consult),
        detail=f"one-tap accept link sent to specialist {pk(specialist)}",
    )
