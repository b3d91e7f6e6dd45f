"""Users, their login sessions and the record of login attempts used for throttling."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import String
from sqlmodel import Field, SQLModel

from telemed.db import UTCDateTime, utcnow


class Role(StrEnum):
    clinician = "clinician"
    specialist = "specialist"
    coordinator = "coordinator"
    admin = "admin"


class UserBase(SQLModel):
    email: str = Field(max_length=254, unique=True, index=True)
    full_name: str = Field(max_length=120)
    role: Role = Field(sa_type=String(16))
    facility_id: int | None = Field(default=None, foreign_key="facilities.id", index=True)
    timezone: str = Field(default="Africa/Maseru", max_length=64)
    # "en" or "st" (telemed.i18n.LANGUAGES): pages, e-mails and SMS to this user use it.
    language: str = Field(default="en", max_length=8)


class User(UserBase, table=True):
    __tablename__ = "users"
    id: int | None = Field(default=None, primary_key=True)
    password_hash: str = Field(max_length=255)
    phone: str | None = Field(default=None, max_length=20)  # E.164, e.g. +26658123456
    is_active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class UserSession(SQLModel, table=True):
    """A login session. Only the SHA-256 digest of the cookie value is stored."""

    __tablename__ = "user_sessions"
    id: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="users.id", index=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LoginAttempt(SQLModel, table=True):
    __tablename__ = "login_attempts"
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, index=True)
    client_address: str = Field(max_length=64, index=True)
    succeeded: bool
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class LoginUnlock(SQLModel, table=True):
    """An unlock link sent by e-mail (``telemed.accounts.unlock``): only the digest of its
    token is kept. Used once; its use clears the account's login throttle."""

    __tablename__ = "login_unlocks"
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, index=True)
    token_digest: str = Field(max_length=64, unique=True)
    issued_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    used_from: str | None = Field(default=None, max_length=64)  # the client address
