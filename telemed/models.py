"""Imports every table so that ``SQLModel.metadata`` is complete (migrations, tests)."""

from sqlmodel import SQLModel

from telemed.accounts.models import LoginAttempt, LoginUnlock, User, UserSession
from telemed.appointments.models import Appointment, AppointmentChange
from telemed.attachments.models import Attachment, Upload
from telemed.audit.models import AuditEntry
from telemed.cases.models import Case
from telemed.consent.models import ConsentRecord
from telemed.consults.models import Consult, ConsultEvent, ConsultParticipant, Specialty
from telemed.directory.models import (
    AvailabilityException,
    AvailabilityWindow,
    SpecialistProfile,
    SpecialistSpecialty,
)
from telemed.facilities.models import District, Facility
from telemed.idempotency.models import IdempotencyKey
from telemed.interop.dhis2.models import Dhis2Push
from telemed.jobs.models import JobRun, SchedulerLease
from telemed.messages.models import Message
from telemed.mfa.models import (
    GuessCounter,
    LoginChallenge,
    Reauthentication,
    RecoveryCode,
    TotpCredential,
)
from telemed.notes.models import ConsultNote, ConsultOutcome, NoteDiagnosis
from telemed.notifications.models import Notification, OutboxAttachment, OutboxMessage
from telemed.offers.models import ConsultOffer
from telemed.oncall.models import OnCallBlock, OnCallLinkUse
from telemed.precall.models import NetworkTest
from telemed.sessions.models import CallSession, CallSessionEvent
from telemed.uptake.models import UptakeFact, UptakeRollup, UptakeRollupState, UptakeWaitPick

metadata = SQLModel.metadata

__all__ = [
    "Appointment",
    "AppointmentChange",
    "Attachment",
    "AuditEntry",
    "AvailabilityException",
    "AvailabilityWindow",
    "CallSession",
    "CallSessionEvent",
    "Case",
    "ConsentRecord",
    "Consult",
    "ConsultEvent",
    "ConsultNote",
    "ConsultOffer",
    "ConsultOutcome",
    "ConsultParticipant",
    "Dhis2Push",
    "District",
    "Facility",
    "GuessCounter",
    "IdempotencyKey",
    "JobRun",
    "LoginAttempt",
    "LoginChallenge",
    "LoginUnlock",
    "Message",
    "NetworkTest",
    "NoteDiagnosis",
    "Notification",
    "OnCallBlock",
    "OnCallLinkUse",
    "OutboxAttachment",
    "OutboxMessage",
    "Reauthentication",
    "RecoveryCode",
    "SchedulerLease",
    "SpecialistProfile",
    "SpecialistSpecialty",
    "Specialty",
    "TotpCredential",
    "Upload",
    "UptakeFact",
    "UptakeRollup",
    "UptakeRollupState",
    "UptakeWaitPick",
    "User",
    "UserSession",
    "metadata",
]
