"""Who may read the audit trail: coordinators (their reading is audited too)."""

from __future__ import annotations

from telemed.accounts.models import Role, User
from telemed.errors import Forbidden
from telemed.i18n import N_


def can_read_audit(user: User) -> bool:
    return user.role == Role.coordinator


def ensure_can_read_audit(user: User) -> None:
    if not can_read_audit(user):
        raise Forbidden(N_("only coordinators can read the audit trail"))
