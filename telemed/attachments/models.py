"""Attachments (photos, PDFs, short audio) of a consult and the uploads that bring them in.

An ``Attachment`` is evidence: its row is append-only (a database trigger refuses UPDATE and
DELETE) and its bytes live in content-addressed files named by their sha256, so nothing
can change an attachment without the change being visible. An ``Upload`` is the working
state of a resumable (tus-like) transfer: it is mutable, expires, and only becomes an
attachment when its last byte has arrived and passed the checks.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, String
from sqlmodel import Field, SQLModel

from telemed.db import UTCDateTime, utcnow


class AttachmentKind(StrEnum):
    image = "image"
    pdf = "pdf"
    audio = "audio"


class UploadState(StrEnum):
    open = "open"  # accepting chunks
    complete = "complete"  # finalized into an attachment
    failed = "failed"  # finalization refused the bytes; ``failure`` says why
    expired = "expired"  # abandoned; its partial bytes were removed


class Attachment(SQLModel, table=True):
    __tablename__ = "attachments"
    __table_args__ = (Index("ix_attachments_consult_created", "consult_id", "created_at", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    consult_id: int = Field(foreign_key="consults.id")
    message_id: int | None = Field(default=None, foreign_key="messages.id", index=True)
    uploaded_by_id: int = Field(foreign_key="users.id")
    kind: AttachmentKind = Field(sa_type=String(8))
    filename: str = Field(max_length=255)  # sanitised original name, for downloads
    media_type: str = Field(max_length=64)  # of the stored bytes (HEIC arrives, JPEG is kept)
    received_media_type: str = Field(max_length=64)  # as sniffed from the bytes received
    size_bytes: int
    sha256: str = Field(max_length=64, index=True)
    preview_sha256: str | None = Field(default=None, max_length=64)
    preview_size_bytes: int | None = None
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None  # audio: read from the container (attachments.audio)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Upload(SQLModel, table=True):
    __tablename__ = "uploads"
    __table_args__ = (Index("ix_uploads_state_expires", "state", "expires_at"),)
    # Random and unguessable: the id is part of the upload URL.
    id: str = Field(primary_key=True, max_length=32)
    consult_id: int = Field(foreign_key="consults.id", index=True)
    message_id: int | None = Field(default=None, foreign_key="messages.id")
    # A voice note: Opus only, three minutes at most; without ``message_id`` it becomes a
    # message of its own in the thread when it completes.
    voice_note: bool = False
    uploader_id: int = Field(foreign_key="users.id")
    filename: str = Field(max_length=255)
    media_type: str = Field(max_length=64)  # as declared by the client
    length: int
    offset: int = 0
    state: UploadState = Field(default=UploadState.open, sa_type=String(10))
    failure: str = Field(default="", max_length=500)
    attachment_id: int | None = Field(default=None, foreign_key="attachments.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
