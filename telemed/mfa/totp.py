"""TOTP codes (RFC 6238, 6 digits, 30 s steps) checked at a given time, so that tests and
the request's clock decide "now"; pyotp computes the codes. Recovery codes are made here
too. Pure: no database, no clock of its own."""

from __future__ import annotations

import hmac
import re
import secrets
from datetime import datetime

import pyotp

ISSUER = "Telemed"
DIGITS = 6
#: Steps either side of now that are accepted: a phone's clock a little off still works.
DRIFT_STEPS = 1
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread
_NOT_DIGITS = re.compile(r"[\s-]")


def new_secret() -> str:
    return pyotp.random_base32()  # 160 bits, as RFC 4226 recommends


def provisioning_uri(secret: str, account: str) -> str:
    """The ``otpauth://`` address an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=ISSUER)


def step_at(secret: str, at: datetime) -> int:
    return int(pyotp.TOTP(secret).timecode(at))


def code_at_step(secret: str, step: int) -> str:
    return pyotp.TOTP(secret).generate_otp(step)


def matching_step(secret: str, code: str, at: datetime) -> int | None:
    """The time step whose code ``code`` is, within the drift allowed around ``at``, or
    None. Every candidate is compared in constant time."""
    typed = _NOT_DIGITS.sub("", code)
    if len(typed) != DIGITS or not typed.isdigit():
        return None
    now_step = step_at(secret, at)
    found = None
    for step in range(now_step - DRIFT_STEPS, now_step + DRIFT_STEPS + 1):
        if hmac.compare_digest(code_at_step(secret, step), typed):
            found = step
    return found


def looks_like_totp(code: str) -> bool:
    typed = _NOT_DIGITS.sub("", code)
    return len(typed) == DIGITS and typed.isdigit()


def new_recovery_codes(count: int = RECOVERY_CODES) -> list[str]:
    """``count`` codes like ``k7m2q-x9a4t`` (10 characters of a 31-letter alphabet: about
    50 bits each)."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def normal_recovery_code(code: str) -> str:
    """What a person typed, as stored: lower case, one dash in the middle."""
    raw = _NOT_DIGITS.sub("", code).lower()
    return f"{raw[:5]}-{raw[5:]}" if len(raw) == 10 else raw
