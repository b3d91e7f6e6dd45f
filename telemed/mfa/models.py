"""The second factor's tables: the TOTP secret (encrypted), recovery codes (hashed), the
pending second step of a login, re-authentications, and the guess counter."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlmodel import Field, SQLModel

from telemed.db import UTCDateTime, utcnow


class TotpCredential(SQLModel, table=True):
    """One authenticator per user. ``confirmed_at`` is None while enrolment waits for its
    first code. ``last_step`` is the TOTP time step of the last code accepted: a code of
    that step or an earlier one is a replay and is refused."""

    __tablename__ = "mfa_totp"
    user_id: int = Field(foreign_key="users.id", primary_key=True)
    secret_encrypted: str = Field(max_length=255)  # Fernet token (telemed.mfa.crypto)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_step: int | None = Field(default=None, sa_type=BigInteger)


class RecoveryCode(SQLModel, table=True):
    """A single-use recovery code; only its keyed hash is stored."""

    __tablename__ = "mfa_recovery_codes"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    code_hash: str = Field(max_length=64, unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LoginChallenge(SQLModel, table=True):
    """A login whose password was right and whose second step (a code, or enrolment) is
    still to come. No session exists until it is done. Only the cookie's digest is kept."""

    __tablename__ = "mfa_challenges"
    id: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="users.id", index=True)
    purpose: str = Field(max_length=8, sa_type=String(8))  # "code" or "enrol"
    csrf_token: str = Field(max_length=64)
    next_path: str = Field(default="/", max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Reauthentication(SQLModel, table=True):
    """When a login session last proved its user again (password or code)."""

    __tablename__ = "mfa_reauth"
    session_id: str = Field(foreign_key="user_sessions.id", primary_key=True, max_length=64)
    verified_at: datetime = Field(sa_type=UTCDateTime)


class GuessCounter(SQLModel, table=True):
    """Wrong codes and passwords at the second step or a re-authentication, per user:
    after ``max_failures`` within the window further guesses are refused (429)."""

    __tablename__ = "mfa_throttle"
    user_id: int = Field(foreign_key="users.id", primary_key=True)
    failures: int = 0
    last_failure_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
