"""Password hashing (Argon2id) and opaque session tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import cache
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

PasswordCost = Literal["standard", "light"]
"""How hard a new hash is to compute (``Settings.password_hashing``). ``standard`` is
argon2-cffi's default, RFC 9106's second recommendation. ``light`` is the same Argon2id at
its cheapest, for test suites only (``Settings`` refuses it in production): thousands of
test logins would otherwise spend most of CI's minutes stretching keys. A hash records its
own parameters, so either kind verifies anywhere, and a ``light`` hash met by a
``standard`` deployment is rehashed at the next login."""

_HASHERS: dict[str, PasswordHasher] = {
    "standard": PasswordHasher(),
    "light": PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
}

MIN_PASSWORD_LENGTH = 10


@cache
def _dummy_hash(cost: PasswordCost) -> str:
    """Verified against when the e-mail is unknown, so both paths cost the same time."""
    return _HASHERS[cost].hash(secrets.token_urlsafe(16))


def hash_password(password: str, cost: PasswordCost = "standard") -> str:
    return _HASHERS[cost].hash(password)


def verify_password(
    password_hash: str | None, password: str, cost: PasswordCost = "standard"
) -> bool:
    hasher = _HASHERS[cost]
    try:
        checked = password_hash or _dummy_hash(cost)
        return hasher.verify(checked, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str, cost: PasswordCost = "standard") -> bool:
    return _HASHERS[cost].check_needs_rehash(password_hash)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What we store for a session cookie: a leaked table does not leak live sessions."""
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
