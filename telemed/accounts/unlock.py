"""Unlock links: the owner of a throttled account clears its throttle from their mailbox,
with no CAPTCHA (a CAPTCHA would load a third party's script into a clinic's page, and
fails on 2G).

A link is ``<nonce>.<signature>``: a random nonce and an HMAC-SHA256 of it with the
application's secret, so a forged link is refused before any lookup. Only the digest is
stored (``LoginUnlock``); it lives ``UNLOCK_MINUTES``, works once (a compare-and-set on
``used_at``), and both its sending and its use are audited. At most one link a quarter
hour per account, so the owner's mailbox cannot be flooded. The e-mail itself is queued
by ``telemed.flows.send_unlock_link`` (accounts know nothing of notifications).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from telemed.accounts import repository
from telemed.accounts.models import LoginUnlock, User
from telemed.accounts.security import token_digest
from telemed.audit.models import AuditAction
from telemed.audit.service import record
from telemed.db import pk
from telemed.errors import Conflict, NotFound
from telemed.i18n import N_

UNLOCK_MINUTES = 15
PATH = "/login/unlock/"


@dataclass(frozen=True)
class IssuedUnlock:
    user: User
    token: str  # goes into the e-mail only
    unlock_id: int


def _signature(secret: str, nonce: str) -> str:
    digest = hmac.new(secret.encode(), f"login-unlock:{nonce}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")


def issue(session: Session, secret: str, email: str, now: datetime) -> IssuedUnlock | None:
    """A new link for the account of ``email``; None (and nothing said to the asker) when
    there is no such active account or one was sent within the last ``UNLOCK_MINUTES``."""
    email = email.strip().lower()
    user = repository.get_user_by_email(session, email)
    if user is None or not user.is_active:
        return None
    if repository.open_unlock_since(session, email, now - timedelta(minutes=UNLOCK_MINUTES)):
        return None
    nonce = secrets.token_urlsafe(24)
    token = f"{nonce}.{_signature(secret, nonce)}"
    unlock = LoginUnlock(
        email=email,
        token_digest=token_digest(token),
        issued_at=now,
        expires_at=now + timedelta(minutes=UNLOCK_MINUTES),
    )
    session.add(unlock)
    session.flush()
    record(session, None, AuditAction.create, "login_unlock", pk(unlock), detail="link sent")
    return IssuedUnlock(user=user, token=token, unlock_id=pk(unlock))


def use(session: Session, secret: str, token: str, now: datetime, address: str) -> str:
    """Clear the throttle of the link's account; the account's e-mail. A forged or unknown
    link is "not found"; an expired or used one a conflict that says so."""
    nonce, _, signature = token.partition(".")
    if not nonce or not hmac.compare_digest(_signature(secret, nonce), signature):
        raise NotFound(N_("This unlock link is not valid."), field="token")
    unlock = repository.unlock_by_digest(session, token_digest(token))
    if unlock is None:
        raise NotFound(N_("This unlock link is not valid."), field="token")
    if now >= unlock.expires_at:
        raise Conflict(N_("This unlock link has expired; ask for a new one."), field="token")
    if unlock.used_at is not None or not repository.use_unlock(session, pk(unlock), now, address):
        raise Conflict(N_("This unlock link was used already; ask for a new one."), field="token")
    user = repository.get_user_by_email(session, unlock.email)
    record(session, user, AuditAction.update, "login_unlock", pk(unlock), detail="throttle cleared")
    return unlock.email
