"""The cookie of a login's pending second step (``telemed.mfa.service.Pending``)."""

from __future__ import annotations

from starlette.responses import Response

from telemed.mfa.policy import CHALLENGE_MINUTES
from telemed.settings import Settings

CHALLENGE_COOKIE = "telemed_mfa_step"
CHALLENGE_PATH = "/login"  # /login/code and /login/enrol only


def set_challenge_cookie(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(
        CHALLENGE_COOKIE,
        token,
        max_age=CHALLENGE_MINUTES * 60,
        httponly=True,
        samesite="strict",
        secure=settings.secure_cookies,
        path=CHALLENGE_PATH,
    )


def clear_challenge_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        CHALLENGE_COOKIE,
        httponly=True,
        samesite="strict",
        secure=settings.secure_cookies,
        path=CHALLENGE_PATH,
    )
