"""Who sees the uptake dashboard: coordinators only (the Diaspora Directorate monitors
uptake; clinicians and specialists see their own consults elsewhere)."""

from __future__ import annotations

from telemed.accounts import auth as accounts_auth
from telemed.accounts.models import User

REFUSAL = "the uptake dashboard is for coordinators"


def ensure_coordinator(user: User) -> None:
    accounts_auth.ensure_coordinator(user, REFUSAL)
