"""One-tap accept links: ``<offer>.<user>.<expiry>.<signature>``, an HMAC-SHA256 of the
three with the application's secret. The link is the credential (the phone by the bed has
no session), so it names exactly one offer for one user, lives only as long as the offer,
and is recorded when used (``OnCallLinkUse``): it works once."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

from telemed.errors import Conflict, NotFound
from telemed.i18n import N_

PATH = "/oncall/accept/"


@dataclass(frozen=True)
class LinkClaim:
    offer_id: int
    user_id: int
    expires_at: datetime


def _signature(secret: str, offer_id: int, user_id: int, expires: int) -> str:
    message = f"oncall-accept:{offer_id}:{user_id}:{expires}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign(secret: str, offer_id: int, user_id: int, expires_at: datetime) -> str:
    expires = int(expires_at.timestamp())
    return f"{offer_id}.{user_id}.{expires}.{_signature(secret, offer_id, user_id, expires)}"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def read(secret: str, token: str, now: datetime) -> LinkClaim:
    """The link's claim; a forged or mangled link is "not found" (it names nothing we
    made), an expired one a conflict that says so."""
    parts = token.split(".")
    if len(parts) != 4 or not all(p.isdigit() for p in parts[:3]):
        raise NotFound(N_("this link is not valid"), field="token")
    offer_id, user_id, expires = (int(p) for p in parts[:3])
    expected = _signature(secret, offer_id, user_id, expires)
    if not hmac.compare_digest(expected, parts[3]):
        raise NotFound(N_("this link is not valid"), field="token")
    expires_at = datetime.fromtimestamp(expires, UTC)
    if now >= expires_at:
        raise Conflict(
            N_("this link has expired; the emergency went to other specialists"), field="token"
        )
    return LinkClaim(offer_id, user_id, expires_at)
