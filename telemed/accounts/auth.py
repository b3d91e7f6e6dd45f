"""Role checks every domain shares: "coordinators only", "specialists only", "admins only".

Each domain's ``auth.py`` still says what is restricted and why (its own refusal text);
the check itself lives here once, so a change of what makes a coordinator (or a
specialist) is made in one place.
"""

from __future__ import annotations

from telemed.accounts.models import Role, User
from telemed.errors import Forbidden


def is_clinician(user: User) -> bool:
    return user.role == Role.clinician


def is_specialist(user: User) -> bool:
    return user.role == Role.specialist


def is_coordinator(user: User) -> bool:
    return user.role == Role.coordinator


def is_admin(user: User) -> bool:
    return user.role == Role.admin


def ensure_admin(user: User, refusal: str = "this is for administrators") -> None:
    """403 with ``refusal`` unless the user is an administrator."""
    if not is_admin(user):
        raise Forbidden(refusal)


def ensure_coordinator(user: User, refusal: str = "this is for coordinators") -> None:
    """403 with ``refusal`` unless the user is a coordinator."""
    if not is_coordinator(user):
        raise Forbidden(refusal)


def ensure_specialist(user: User, refusal: str = "this is for specialists") -> int:
    """The specialist's user id; 403 with ``refusal`` for anyone else."""
    if not is_specialist(user) or user.id is None:
        raise Forbidden(refusal)
    return user.id
