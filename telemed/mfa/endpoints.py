"""The second factor's JSON API: re-authentication before a sensitive action."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from telemed.accounts.security import token_digest
from telemed.deps import SESSION_COOKIE, CurrentAuth, NowDep, SessionDep
from telemed.mfa import service
from telemed.mfa.deps import MfaPolicyDep
from telemed.web.access import OWN
from telemed.web.errors import error_responses

router = APIRouter(tags=["accounts"])


class ReauthRequest(BaseModel):
    secret: str = Field(
        min_length=1,
        max_length=1024,
        description="The code from the authenticator app (or a recovery code) for a user "
        "with two-step login; the password otherwise.",
    )


@router.post("/auth/reauth", status_code=204, responses=error_responses(401, 403, 429))
def reauth(
    body: ReauthRequest,
    request: Request,
    auth: CurrentAuth,
    db: SessionDep,
    now: NowDep,
    policy: MfaPolicyDep,
) -> None:
    """Prove who you are again: sensitive actions (verifying specialists, changing users,
    turning two-step login off) answer 403 `reauth_required` when the last proof of this
    session is older than `TELEMED_MFA_REAUTH_MINUTES`."""
    digest = token_digest(request.cookies[SESSION_COOKIE])
    service.reauthenticate(db, policy, auth.user, digest, secret=body.secret, now=now)


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {"reauth": OWN}
