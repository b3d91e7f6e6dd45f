"""Words for the codes pages and notices show (states, urgencies, roles, specialties, modes), in the
viewer's language: ``{{ c.urgency | label }}``.

A code is shown in English as itself with spaces ("follow_up_due" -> "follow up due"), as
before translation; each known one is listed here as a literal ``gettext`` call so that
``pybabel extract`` finds it and tests/test_i18n.py holds the Sesotho catalogue to it. A code
not listed (a specialty added later with ``telemed specialties add``) is shown as itself.
"""

from __future__ import annotations

from collections.abc import Callable

from telemed.i18n import gettext

_LABELS: dict[str, Callable[[], str]] = {
    # consult states
    "draft": lambda: gettext("draft"),
    "requested": lambda: gettext("requested"),
    "offered": lambda: gettext("offered"),
    "accepted": lambda: gettext("accepted"),
    "scheduled": lambda: gettext("scheduled"),
    "in_session": lambda: gettext("in session"),
    "completed": lambda: gettext("completed"),
    "closed": lambda: gettext("closed"),
    "follow_up_due": lambda: gettext("follow up due"),
    "escalated": lambda: gettext("escalated"),
    "cancelled": lambda: gettext("cancelled"),
    "no_show": lambda: gettext("no show"),
    "answered_async": lambda: gettext("answered async"),
    # urgency
    "emergency": lambda: gettext("emergency"),
    "urgent": lambda: gettext("urgent"),
    "routine": lambda: gettext("routine"),
    # consult modes
    "video": lambda: gettext("video"),
    "audio": lambda: gettext("audio"),
    "asynchronous": lambda: gettext("asynchronous"),
    # pre-call network recommendations (telemed.precall.service.LABELS, shown as _(label))
    "low-bandwidth video": lambda: gettext("low-bandwidth video"),
    "audio only": lambda: gettext("audio only"),
    "messages and photos (no live call)": lambda: gettext("messages and photos (no live call)"),
    # outcomes (telemed.notes.panels.OUTCOME_LABELS, kept English for the FHIR export)
    "Treated locally": lambda: gettext("Treated locally"),
    "Referral avoided": lambda: gettext("Referral avoided"),
    "Referred": lambda: gettext("Referred"),
    "Transferred": lambda: gettext("Transferred"),
    "Admitted": lambda: gettext("Admitted"),
    "Died": lambda: gettext("Died"),
    "Lost to follow-up": lambda: gettext("Lost to follow-up"),
    # outcome codes as a consult's history writes them ("outcome recorded: referral avoided",
    # telemed.consults.reasons)
    "treated_locally": lambda: gettext("treated locally"),
    "referral_avoided": lambda: gettext("referral avoided"),
    "referred": lambda: gettext("referred"),
    "transferred": lambda: gettext("transferred"),
    "admitted": lambda: gettext("admitted"),
    "died": lambda: gettext("died"),
    "lost_to_follow_up": lambda: gettext("lost to follow up"),
    # specialist verification, and the uptake periods
    "pending": lambda: gettext("pending"),
    "verified": lambda: gettext("verified"),
    "rejected": lambda: gettext("rejected"),
    # the specialist's onboarding checklist (telemed.directory.views._checklist)
    "done": lambda: gettext("done"),
    "to do": lambda: gettext("to do"),
    "expired": lambda: gettext("expired"),
    "month": lambda: gettext("month"),
    "week": lambda: gettext("week"),
    # consent actions (shown as _(action))
    "given": lambda: gettext("given"),
    "withdrawn": lambda: gettext("withdrawn"),
    # how consent was given (telemed.consent.models.ConsentMethod)
    "verbal": lambda: gettext("verbal"),
    "witnessed": lambda: gettext("verbal, witnessed"),
    "written": lambda: gettext("written"),
    # sex
    "female": lambda: gettext("female"),
    "male": lambda: gettext("male"),
    "other": lambda: gettext("other"),
    "unknown": lambda: gettext("unknown"),
    # roles
    "clinician": lambda: gettext("clinician"),
    "specialist": lambda: gettext("specialist"),
    # call guests (telemed.sessions.guests) and their roles in the call's room
    "interpreter": lambda: gettext("interpreter"),
    "second_specialist": lambda: gettext("second specialist"),
    "observer": lambda: gettext("observer"),
    "coordinator": lambda: gettext("coordinator"),
    "admin": lambda: gettext("admin"),
    # specialties (codes of the initial list, migration 0001)
    "anaesthesiology": lambda: gettext("anaesthesiology"),
    "cardiology": lambda: gettext("cardiology"),
    "dermatology": lambda: gettext("dermatology"),
    "emergency_medicine": lambda: gettext("emergency medicine"),
    "endocrinology": lambda: gettext("endocrinology"),
    "ent": lambda: gettext("ent"),
    "family_medicine": lambda: gettext("family medicine"),
    "gastroenterology": lambda: gettext("gastroenterology"),
    "general_surgery": lambda: gettext("general surgery"),
    "haematology": lambda: gettext("haematology"),
    "infectious_diseases": lambda: gettext("infectious diseases"),
    "internal_medicine": lambda: gettext("internal medicine"),
    "nephrology": lambda: gettext("nephrology"),
    "neurology": lambda: gettext("neurology"),
    "obstetrics_gynaecology": lambda: gettext("obstetrics gynaecology"),
    "oncology": lambda: gettext("oncology"),
    "ophthalmology": lambda: gettext("ophthalmology"),
    "orthopaedics": lambda: gettext("orthopaedics"),
    "paediatrics": lambda: gettext("paediatrics"),
    "psychiatry": lambda: gettext("psychiatry"),
    "pulmonology": lambda: gettext("pulmonology"),
    "radiology": lambda: gettext("radiology"),
    "urology": lambda: gettext("urology"),
    # appointment changes (telemed.appointments.early)
    "early_asked": lambda: gettext("asked to start now"),
    "booked": lambda: gettext("booked"),
    "rescheduled": lambda: gettext("rescheduled"),
}


def label(code: object) -> str:
    """The word for ``code`` in the language in force; "" for None."""
    if code is None:
        return ""
    key = str(code)
    found = _LABELS.get(key)
    return found() if found is not None else key.replace("_", " ")
