"""Who may do what in the directory.

- a specialist edits their own profile and availability;
- coordinators see every profile and verify or reject registrations.
"""

from __future__ import annotations

from telemed.accounts.models import Role, User
from telemed.errors import Forbidden


def ensure_specialist(user: User) -> int:
    if user.role != Role.specialist or user.id is None:
        raise Forbidden("this is for specialists")
    return user.id


def ensure_coordinator(user: User) -> None:
    if user.role != Role.coordinator:
        raise Forbidden("this is for coordinators")
