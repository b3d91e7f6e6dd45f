"""All SQL of attachments and uploads."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from telemed.accounts.models import User
from telemed.attachments.models import Attachment, Upload, UploadState
from telemed.messages.models import Message


def get_attachment(session: Session, attachment_id: int) -> Attachment | None:
    return session.get(Attachment, attachment_id)


def attachments_of(session: Session, consult_id: int) -> list[tuple[Attachment, User]]:
    """The consult's attachments with their uploaders, oldest first."""
    rows = session.exec(
        select(Attachment, User)
        .join(User, col(User.id) == col(Attachment.uploaded_by_id))
        .where(Attachment.consult_id == consult_id)
        .order_by(col(Attachment.created_at), col(Attachment.id))
    )
    return [(a, u) for a, u in rows]


def message_consult_id(session: Session, message_id: int) -> int | None:
    return session.exec(select(Message.consult_id).where(Message.id == message_id)).first()


def get_upload(session: Session, upload_id: str, *, lock: bool = False) -> Upload | None:
    """The upload; ``lock`` holds its row until the transaction ends (PostgreSQL), so that
    two requests for the same upload (a client retrying while its first try still runs)
    take turns. SQLite transactions already hold the write lock (BEGIN IMMEDIATE)."""
    statement = select(Upload).where(Upload.id == upload_id)
    if lock:
        statement = statement.with_for_update()
        # A row read earlier in this session must not hide the locked, current values.
        statement = statement.execution_options(populate_existing=True)
    return session.exec(statement).first()


def count_open_uploads(session: Session, uploader_id: int) -> int:
    return session.exec(
        select(func.count())
        .select_from(Upload)
        .where(Upload.uploader_id == uploader_id, Upload.state == UploadState.open)
    ).one()


def expired_open_uploads(session: Session, now: datetime, limit: int) -> list[Upload]:
    """Open uploads past their expiry; rows another transaction holds are skipped."""
    return list(
        session.exec(
            select(Upload)
            .where(Upload.state == UploadState.open, col(Upload.expires_at) < now)
            .order_by(col(Upload.expires_at))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
