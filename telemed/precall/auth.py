"""Who may run the network test (clinicians, specialists) and who sees every facility's
results (coordinators)."""

from __future__ import annotations

from telemed.accounts import auth as accounts_auth
from telemed.accounts.models import Role, User
from telemed.errors import Forbidden
from telemed.i18n import N_

TESTERS = frozenset({Role.clinician, Role.specialist})


def can_test(user: User) -> bool:
    return user.role in TESTERS


def ensure_can_test(user: User) -> None:
    if not can_test(user):
        raise Forbidden(N_("the network test is for clinicians and specialists"))


def ensure_coordinator(user: User) -> None:
    accounts_auth.ensure_coordinator(user, "the facilities' network results are for coordinators")
