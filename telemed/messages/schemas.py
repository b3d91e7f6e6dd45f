"""Shapes of thread messages in the API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from telemed.i18n import gettext
from telemed.validation import Id


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str = Field(min_length=1, max_length=8000)

    @field_validator("body")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError(gettext("the message is empty"))
        return value.strip()


class VoiceNotePublic(BaseModel):
    """A message's recording: play it from ``url`` (an audited download)."""

    attachment_id: Id
    url: str
    media_type: str
    size_bytes: int
    duration_ms: int | None


class MessagePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    consult_id: Id
    author_id: Id
    author_name: str
    author_role: str
    body: str  # empty for a voice note sent on its own
    created_at: datetime
    voice_note: VoiceNotePublic | None = None
