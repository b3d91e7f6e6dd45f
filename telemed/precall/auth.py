"""Who may run the network test (clinicians, specialists) and who sees every facility's
results (coordinators)."""

from __future__ import annotations

from telemed.accounts.models import Role, User
from telemed.errors import Forbidden

TESTERS = frozenset({Role.clinician, Role.specialist})


def ensure_can_test(user: User) -> None:
    if user.role not in TESTERS:
        raise Forbidden("the network test is for clinicians and specialists")


def ensure_coordinator(user: User) -> None:
    if user.role != Role.coordinator:
        raise Forbidden("the facilities' network results are for coordinators")
