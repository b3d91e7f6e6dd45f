"""Who may do what with notifications: each user reads their own (the service selects by
user); coordinators see and retry the deliveries that failed."""

from __future__ import annotations

from telemed.accounts import auth as accounts_auth
from telemed.accounts.models import User


def ensure_can_see_deliveries(user: User) -> None:
    accounts_auth.ensure_coordinator(user, "delivery problems are for coordinators")
