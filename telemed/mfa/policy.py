"""The second factor's policy, built once from the settings and passed to the service."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from telemed.mfa.crypto import SecretBox
from telemed.settings import Settings

#: How long the second step of a login may wait after a right password.
CHALLENGE_MINUTES = 10


@dataclass(frozen=True)
class MfaPolicy:
    required_roles: frozenset[str]  # roles that must use a second factor
    reauth: timedelta  # a sensitive action needs a proof of identity this recent
    max_failures: int  # wrong codes (or passwords at re-authentication) per user ...
    window: timedelta  # ... within this window, then 429 until it has passed
    box: SecretBox
    challenge: timedelta = timedelta(minutes=CHALLENGE_MINUTES)

    @classmethod
    def from_settings(cls, settings: Settings) -> MfaPolicy:
        return cls(
            required_roles=settings.mfa_roles,
            reauth=timedelta(minutes=settings.mfa_reauth_minutes),
            max_failures=settings.mfa_max_failures,
            window=timedelta(minutes=settings.mfa_window_minutes),
            box=SecretBox(settings.effective_secret()),
        )
