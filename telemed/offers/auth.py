"""Who may see offers: a specialist their own; coordinators the escalation queue."""

from __future__ import annotations

from telemed.accounts.models import Role, User
from telemed.errors import Forbidden


def ensure_specialist(user: User) -> int:
    if user.role != Role.specialist or user.id is None:
        raise Forbidden("offers are for specialists")
    return user.id


def ensure_coordinator(user: User) -> None:
    if user.role != Role.coordinator:
        raise Forbidden("the escalation queue is for coordinators")
