"""Imports every table so that ``SQLModel.metadata`` is complete (migrations, tests)."""

from sqlmodel import SQLModel

from telemed.accounts.models import LoginAttempt, User, UserSession
from telemed.audit.models import AuditEntry
from telemed.cases.models import Case
from telemed.consults.models import Consult, ConsultEvent, ConsultParticipant, Specialty
from telemed.facilities.models import District, Facility
from telemed.messages.models import Message

metadata = SQLModel.metadata

__all__ = [
    "AuditEntry",
    "Case",
    "Consult",
    "ConsultEvent",
    "ConsultParticipant",
    "District",
    "Facility",
    "LoginAttempt",
    "Message",
    "Specialty",
    "User",
    "UserSession",
    "metadata",
]
