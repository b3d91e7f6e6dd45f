"""The second factor's dependencies: its policy, and ``RecentAuth`` for sensitive actions
(verifying specialists, changing users, disabling MFA, ...)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from telemed.accounts.security import token_digest
from telemed.deps import SESSION_COOKIE, Auth, CurrentAuth, NowDep, SessionDep
from telemed.errors import ReauthRequired
from telemed.mfa import service
from telemed.mfa.policy import MfaPolicy


async def get_mfa_policy(request: Request) -> MfaPolicy:
    """Built once per application from its settings (deriving the keys reads the secret)."""
    policy: MfaPolicy | None = getattr(request.app.state, "mfa_policy", None)
    if policy is None:
        policy = request.app.state.mfa_policy = MfaPolicy.from_settings(request.app.state.settings)
    return policy


MfaPolicyDep = Annotated[MfaPolicy, Depends(get_mfa_policy)]


async def _recent_auth(
    request: Request, auth: CurrentAuth, db: SessionDep, now: NowDep, policy: MfaPolicyDep
) -> Auth:
    digest = token_digest(request.cookies[SESSION_COOKIE])
    recent = await run_in_threadpool(service.recently_proved, db, policy, auth.user, digest, now)
    if not recent:
        raise ReauthRequired(
            "Confirm it is you: enter your password, or the code from your app if you use "
            "two-step login (POST /api/v1/auth/reauth)."
        )
    return auth


#: The signed-in user, who proved who they are within ``TELEMED_MFA_REAUTH_MINUTES``.
RecentAuth = Annotated[Auth, Depends(_recent_auth)]
