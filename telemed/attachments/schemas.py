"""Shapes of attachments and resumable uploads in the API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from telemed.attachments.models import Attachment, AttachmentKind, Upload, UploadState
from telemed.validation import Id


class UploadCreate(BaseModel):
    """Announce a file before sending it in chunks (``PATCH /uploads/{id}``)."""

    model_config = ConfigDict(extra="forbid")
    filename: str = Field(min_length=1, max_length=255, examples=["wound-day3.jpg"])
    length: int = Field(ge=1, description="the file's exact size in bytes")
    media_type: str = Field(
        default="application/octet-stream",
        max_length=100,
        description="as the browser says; a generic type defers to the file name's extension",
        examples=["image/jpeg"],
    )
    message_id: Id | None = Field(
        default=None, description="attach to this message of the consult's thread"
    )
    voice_note: bool = Field(
        default=False,
        description="a voice note: Ogg or WebM Opus of at most 3 minutes; without "
        "`message_id` it becomes a message of the thread of its own",
    )

    @field_validator("filename")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the file name is empty")
        return value.strip()


class AttachmentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    consult_id: Id
    message_id: Id | None
    uploaded_by_id: Id
    kind: AttachmentKind
    filename: str
    media_type: str
    received_media_type: str
    size_bytes: int
    sha256: str
    preview_size_bytes: int | None
    width: int | None
    height: int | None
    duration_ms: int | None
    created_at: datetime
    original_url: str
    preview_url: str | None

    @classmethod
    def of(cls, attachment: Attachment) -> AttachmentPublic:
        base = f"/api/v1/attachments/{attachment.id}"
        return cls.model_validate(
            {
                **{name: getattr(attachment, name) for name in Attachment.model_fields},
                "original_url": f"{base}/original",
                "preview_url": f"{base}/preview" if attachment.preview_sha256 else None,
            }
        )


class UploadPublic(BaseModel):
    """Where an upload stands. ``offset`` is how many bytes the server has kept."""

    id: str
    url: str
    consult_id: Id
    message_id: Id | None
    filename: str
    media_type: str
    length: int
    offset: int
    state: UploadState
    failure: str
    expires_at: datetime
    attachment: AttachmentPublic | None = None

    @classmethod
    def of(cls, upload: Upload, attachment: Attachment | None = None) -> UploadPublic:
        return cls(
            id=upload.id,
            url=f"/api/v1/uploads/{upload.id}",
            consult_id=upload.consult_id,
            message_id=upload.message_id,
            filename=upload.filename,
            media_type=upload.media_type,
            length=upload.length,
            offset=upload.offset,
            state=UploadState(upload.state),
            failure=upload.failure,
            expires_at=upload.expires_at,
            attachment=AttachmentPublic.of(attachment) if attachment else None,
        )
