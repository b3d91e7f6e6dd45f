"""Who may do what with offers: a specialist sees and answers their own; coordinators see
the escalation queue and assign a consult by hand (checks of ``telemed.accounts.auth``)."""

from __future__ import annotations

from telemed.accounts import auth as accounts_auth
from telemed.accounts.models import User


def ensure_specialist(user: User) -> int:
    """A specialist's own offers; returns their user id."""
    return accounts_auth.ensure_specialist(user, "offers are for specialists")


def ensure_can_answer(user: User) -> int:
    """Accepting or declining an offer; returns the specialist's user id."""
    return accounts_auth.ensure_specialist(user, "offers are answered by specialists")


def ensure_coordinator(user: User) -> None:
    """The escalation queue."""
    accounts_auth.ensure_coordinator(user, "the escalation queue is for coordinators")


def ensure_can_assign(user: User) -> None:
    """Assigning a waiting consult to a specialist by hand."""
    accounts_auth.ensure_coordinator(user, "only coordinators assign consults by hand")
