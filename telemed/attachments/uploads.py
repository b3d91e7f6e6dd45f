"""Resumable (tus-like) uploads: create, append chunks at offsets, finalize, expire.

The database row's ``offset`` is the truth about how much arrived (see ``storage``). Each
chunk is checked against that offset under a row lock (PostgreSQL ``FOR UPDATE``; SQLite's
single writer), so a client retrying a chunk while its first try still runs cannot write
twice. The last chunk finalizes the upload through the same pipeline as a one-shot upload
(``service.process_and_store`` and ``service.create_attachment``), outside a transaction
while the image work runs. A refused file marks the upload ``failed`` with the reason, is
audited as ``denied`` and leaves no attachment and no partial file behind.

Units of work: a chunk cannot be one, so ``append_chunk`` takes ``Units`` and is a scope
owner. The request's own unit only reads the offset and ends (``expected_offset``) before
the body is read, which may take minutes over 2G; the chunk is written and committed in a
unit of its own; the last one is then finalized (image work with no transaction open, then
the attachment in a third unit). A failure marking is written whether or not its unit
commits (``telemed.uow.persist_regardless``), and partial files are deleted only once the
row that says so is committed (``telemed.uow.after_commit``).
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from sqlmodel import Session

from telemed import uow
from telemed.accounts.models import User
from telemed.attachments import auth, media, repository
from telemed.attachments.models import Attachment, Upload, UploadState
from telemed.attachments.schemas import UploadCreate
from telemed.attachments.service import (
    OPUS_CONTAINERS,
    Target,
    blob_store,
    check_size,
    check_target,
    create_attachment,
    ensure_open_for_attachments,
    image_gate,
    part_files,
    process_and_store,
    refuse,
)
from telemed.audit import service as audit
from telemed.audit.models import AuditAction
from telemed.clock import Clock
from telemed.consults.models import Consult
from telemed.db import pk
from telemed.errors import Conflict, NotFound, TelemedError, ValidationFailed
from telemed.i18n import N_
from telemed.messages import service as messages
from telemed.settings import Settings
from telemed.uow import Units

log = logging.getLogger(__name__)

# An upload nobody continues for this long is abandoned; each chunk extends it.
UPLOAD_LIFETIME = timedelta(hours=24)
# Unfinished uploads one user may hold at once (each holds a partial file on disk).
MAX_OPEN_UPLOADS_PER_USER = 20
EXPIRE_BATCH = 100
# Three minutes of Opus at 16 kbit/s is 360 KB; room for a recorder that overshoots.
VOICE_NOTE_MAX_BYTES = 2 * 1024 * 1024


class UploadGone(TelemedError):
    status_code = 410
    code = "gone"


class OffsetMismatch(Conflict):
    """The client's idea of the offset is not the server's; it must ask (HEAD) and resume."""

    code = "offset_mismatch"

    def __init__(self, expected: int, sent: int) -> None:
        super().__init__(
            f"the chunk was sent at offset {sent} but the upload is at offset {expected}; "
            f"continue from {expected}",
            field="Upload-Offset",
        )
        self.expected = expected


def create_upload(
    session: Session,
    settings: Settings,
    user: User,
    consult: Consult,
    data: UploadCreate,
    clock: Clock,
) -> Upload:
    """Announce a file: checks its declared type and size before a byte is sent."""
    expire_stale_uploads(session, settings, clock.now())
    target = check_target(session, user, consult, data.message_id)
    try:
        fmt = media.declared_format(data.filename, data.media_type)
        check_size(settings, data.length, "length")
        if data.voice_note:
            check_voice_note_declared(fmt, data.length)
    except ValidationFailed as exc:
        refuse(session, user, "upload", "new", target, f"{data.filename[:100]}: {exc.message}")
        raise
    if repository.count_open_uploads(session, pk(user)) >= MAX_OPEN_UPLOADS_PER_USER:
        raise Conflict(
            N_(
                "you have %(count)s unfinished uploads; finish them or wait %(hours)s h for them "
                "to expire"
            ),
            count=MAX_OPEN_UPLOADS_PER_USER,
            hours=format(UPLOAD_LIFETIME.total_seconds() / 3600, ".0f"),
        )
    now = clock.now()
    upload = Upload(
        id=secrets.token_hex(16),
        consult_id=target.consult_id,
        message_id=target.message_id,
        voice_note=data.voice_note,
        uploader_id=pk(user),
        filename=data.filename,
        media_type=fmt.media_type,
        length=data.length,
        created_at=now,
        updated_at=now,
        expires_at=now + UPLOAD_LIFETIME,
    )
    session.add(upload)
    session.flush()
    uow.after_commit(session, lambda: part_files(settings).create(upload.id))
    return upload


def check_voice_note_declared(fmt: media.Format, length: int) -> None:
    """A voice note is Opus in Ogg or WebM, and small: refused before a byte is sent."""
    if fmt.media_type not in OPUS_CONTAINERS:
        raise ValidationFailed(
            N_(
                "a voice note must be Opus in Ogg or WebM (audio/ogg or audio/webm), not %(format)s"
            ),
            format=fmt.label,
            field="media_type",
        )
    if length > VOICE_NOTE_MAX_BYTES:
        raise ValidationFailed(
            N_(
                "a voice note of %(size)s is far longer than 3 minutes of "
                "Opus; the limit is %(limit)s"
            ),
            size=media.format_size(length),
            limit=media.format_size(VOICE_NOTE_MAX_BYTES),
            field="length",
        )


def _ensure_open(upload: Upload, now: datetime) -> None:
    state = UploadState(upload.state)
    if state is UploadState.complete:
        raise Conflict(
            N_("the upload is already complete (attachment %(attachment_id)s)"),
            attachment_id=upload.attachment_id,
        )
    if state is UploadState.failed:
        raise Conflict(
            N_("the upload failed: %(failure)s. Start a new upload."),
            failure=upload.failure,
        )
    if state is UploadState.expired or upload.expires_at <= now:
        raise UploadGone(N_("the upload expired; start a new upload"))


def get_upload(
    session: Session, user: User, upload_id: str, now: datetime
) -> tuple[Upload, Attachment | None]:
    upload, _consult = auth.get_own_upload(session, user, upload_id)
    attachment = (
        repository.get_attachment(session, upload.attachment_id) if upload.attachment_id else None
    )
    if upload.state == UploadState.expired or (
        upload.state == UploadState.open and upload.expires_at <= now
    ):
        raise UploadGone(N_("the upload expired; start a new upload"))
    return upload, attachment


def expected_offset(session: Session, user: User, upload_id: str, clock: Clock) -> tuple[int, int]:
    """Where the next chunk must start and how many bytes may still come.

    Ends the transaction (a read): the caller is about to wait for a chunk over a slow link.
    """
    upload, _consult = auth.get_own_upload(session, user, upload_id)
    _ensure_open(upload, clock.now())
    offset, remaining = upload.offset, upload.length - upload.offset
    uow.end_read(session)
    return offset, remaining


def _fail(
    session: Session,
    settings: Settings,
    user: User,
    upload_id: str,
    target: Target,
    why: str,
    clock: Clock,
) -> None:
    """Mark the upload failed (if nobody finished it meanwhile), audit, drop its bytes:
    recorded when the unit of work ends, whether it commits or (the request is refused)
    rolls back."""

    def write(unit: Session) -> None:
        upload = repository.get_upload(unit, upload_id, lock=True)
        if upload is not None and upload.state == UploadState.open:
            upload.state = UploadState.failed
            upload.failure = why[:500]
            upload.updated_at = clock.now()
            unit.add(upload)
            audit.record(
                unit,
                user,
                AuditAction.denied,
                "upload",
                upload_id,
                case_id=target.case_id,
                consult_id=target.consult_id,
                detail=f"{upload.filename[:100]}: {why}",
            )
        uow.after_commit(unit, lambda: part_files(settings).remove(upload_id))

    uow.persist_regardless(session, write)


def append_chunk(
    units: Units,
    settings: Settings,
    user: User,
    upload_id: str,
    offset: int,
    data: bytes,
    clock: Clock,
) -> tuple[Upload, Attachment | None]:
    """Write ``data`` at ``offset`` (committed); finalize the upload when its last byte is
    in.

    An empty chunk at the final offset finalizes an upload whose last chunk arrived but
    whose finalization was interrupted.
    """
    now = clock.now()  # read when the chunk has arrived, maybe minutes after the request
    with units.one() as session:
        upload, consult = auth.get_own_upload(session, user, upload_id, lock=True)
        _ensure_open(upload, now)
        target = Target(upload.consult_id, consult.case_id, upload.message_id)
        if offset != upload.offset:
            raise OffsetMismatch(upload.offset, offset)
        if offset + len(data) > upload.length:
            raise ValidationFailed(
                N_("the chunk ends at byte %(end)s, past the declared length %(upload_length)s"),
                end=offset + len(data),
                upload_length=upload.length,
                field="body",
            )
        parts = part_files(settings)
        kept = parts.size(upload_id)
        if kept is None or kept < upload.offset:
            _fail(session, settings, user, upload_id, target, "the partial file was lost", clock)
            raise UploadGone(N_("the partial file of this upload was lost; start a new upload"))
        fmt = media.format_for_media_type(upload.media_type)
        assert fmt is not None
        if offset == 0 and len(data) >= min(upload.length, media.SNIFF_BYTES):
            # Refuse a wrong file at its first chunk: no point sending megabytes over 2G first.
            try:
                media.check_bytes(fmt, data[: media.SNIFF_BYTES])
            except ValidationFailed as exc:
                _fail(session, settings, user, upload_id, target, exc.message, clock)
                raise
        if data:
            parts.write_at(upload_id, offset, data)
            upload.offset = offset + len(data)
            upload.updated_at = now
            upload.expires_at = now + UPLOAD_LIFETIME
            session.add(upload)
    if upload.offset < upload.length:
        return upload, None
    return _finalize(units, settings, user, upload_id, target, fmt, clock)


def _finalize(
    units: Units,
    settings: Settings,
    user: User,
    upload_id: str,
    target: Target,
    fmt: media.Format,
    clock: Clock,
) -> tuple[Upload, Attachment]:
    parts = part_files(settings)
    try:  # no transaction open during the image work (module docstring)
        stored = process_and_store(
            blob_store(settings), fmt, parts.path(upload_id), image_gate(settings)
        )
    except ValidationFailed as exc:
        with units.one() as session:
            _fail(session, settings, user, upload_id, target, exc.message, clock)
        raise
    with units.one() as session:
        upload = repository.get_upload(session, upload_id, lock=True)
        if upload is None:  # pragma: no cover - uploads are never deleted
            raise NotFound(N_("upload %(upload_id)s not found"), upload_id=upload_id)
        if upload.state == UploadState.complete and upload.attachment_id is not None:
            # A retry of the last chunk finalized it first: answer with its result.
            existing = repository.get_attachment(session, upload.attachment_id)
            assert existing is not None
            return upload, existing
        _ensure_open(upload, clock.now())
        consult = session.get(Consult, target.consult_id)
        assert consult is not None
        try:
            ensure_open_for_attachments(consult)
        except Conflict as exc:
            _fail(session, settings, user, upload_id, target, exc.message, clock)
            raise
        if upload.voice_note and target.message_id is None:
            # A voice note sent on its own is a message of the thread, written with it.
            message = messages.post(session, user, consult, "")
            target = Target(target.consult_id, target.case_id, pk(message))
        attachment = create_attachment(session, user, target, upload.filename, stored)
        upload.state = UploadState.complete
        upload.attachment_id = attachment.id
        upload.updated_at = clock.now()
        session.add(upload)
        uow.after_commit(session, lambda: parts.remove(upload_id))
    return upload, attachment


def expire_stale_uploads(session: Session, settings: Settings, now: datetime) -> int:
    """Mark abandoned uploads expired and delete their partial files (once that is
    committed); returns how many. Called opportunistically whenever an upload is created
    (in that request's unit of work), and by a periodic job."""
    stale = repository.expired_open_uploads(session, now, EXPIRE_BATCH)
    for upload in stale:
        upload.state = UploadState.expired
        upload.updated_at = now
        session.add(upload)
    ids = [u.id for u in stale]
    session.flush()
    parts = part_files(settings)

    def remove() -> None:
        for upload_id in ids:
            parts.remove(upload_id)

    if ids:
        uow.after_commit(session, remove)
        log.info("expired %d abandoned upload(s)", len(ids))
    return len(ids)
