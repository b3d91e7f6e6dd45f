"""Imports every table so that ``SQLModel.metadata`` is complete (migrations, tests)."""

from sqlmodel import SQLModel

from telemed.accounts.models import LoginAttempt, User, UserSession
from telemed.attachments.models import Attachment, Upload
from telemed.audit.models import AuditEntry
from telemed.cases.models import Case
from telemed.consults.models import Consult, ConsultEvent, ConsultParticipant, Specialty
from telemed.facilities.models import District, Facility
from telemed.messages.models import Message
from telemed.notes.models import ConsultNote, ConsultOutcome, NoteDiagnosis

metadata = SQLModel.metadata

__all__ = [
    "Attachment",
    "AuditEntry",
    "Case",
    "Consult",
    "ConsultEvent",
    "ConsultNote",
    "ConsultOutcome",
    "ConsultParticipant",
    "District",
    "Facility",
    "LoginAttempt",
    "Message",
    "NoteDiagnosis",
    "Specialty",
    "Upload",
    "User",
    "UserSession",
    "metadata",
]
