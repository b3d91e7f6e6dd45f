"""Request and response shapes of the accounts API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from telemed.accounts.models import Role
from telemed.validation import Id, Name, Zone


class LoginRequest(BaseModel):
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=1024)
    code: str | None = Field(
        default=None,
        max_length=64,
        description="Two-step login: the code from the authenticator app, or a recovery code.",
    )


class UnlockRequest(BaseModel):
    email: str = Field(min_length=3, max_length=254)


class UnlockUse(BaseModel):
    token: str = Field(min_length=1, max_length=200, description="From the e-mailed link.")


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    email: str
    full_name: str
    role: Role
    facility_id: Id | None
    timezone: str
    is_active: bool = Field(description="False once deactivated: no login, no offers.")


class LoginResponse(BaseModel):
    user: UserPublic
    csrf_token: str = Field(
        description="Send it back as the X-CSRF-Token header on every POST/PUT/PATCH/DELETE."
    )


class UserCreate(BaseModel):
    email: EmailStr
    full_name: Name = Field(min_length=1, max_length=120)
    role: Role
    facility_code: str | None = None
    timezone: Zone | None = None
    phone: str | None = Field(
        default=None, max_length=32, description="For SMS notices, e.g. +26658123456 (E.164)."
    )
    password: str = Field(min_length=10, max_length=1024)
