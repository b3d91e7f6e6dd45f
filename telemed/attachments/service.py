"""Attachments: checking what arrives, keeping it, handing it out, and the audit of each.

Two ways in, one pipeline: a resumable upload (``uploads``: create, append chunks at
offsets, finalized when its last byte arrives) for photos over 2G, and a single multipart
POST for small files from the page without JavaScript (``attach_file``). Both end in
``process_and_store`` and ``create_attachment``: the bytes are sniffed against the declared
type, images are re-encoded (no EXIF, upright, HEIC to JPEG, a small preview), files are
stored by their sha256, and the attachment row is committed together with its audit row.
Anything refused leaves no attachment behind and is audited as ``denied``.

Image work takes a moment, so it runs *outside* a database transaction: on SQLite every
transaction holds the single write lock from its first statement (BEGIN IMMEDIATE), and
nobody else should wait for a photo to be decoded. The request's read is ended first
(``telemed.uow.end_read``); the attachment is written in a new transaction of the same unit
of work, which the request commits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlmodel import Session

from telemed import uow
from telemed.accounts.models import User
from telemed.attachments import audio, auth, media, repository
from telemed.attachments.gate import ImageGate, gate_for
from telemed.attachments.models import Attachment, AttachmentKind
from telemed.attachments.storage import BlobStore, PartFiles
from telemed.audit import service as audit
from telemed.audit.models import AuditAction
from telemed.consults import auth as consult_auth
from telemed.consults.lifecycle import FINAL_STATES
from telemed.consults.models import Consult, ConsultState
from telemed.db import pk
from telemed.errors import Conflict, NotFound, ValidationFailed
from telemed.i18n import N_
from telemed.settings import Settings

log = logging.getLogger(__name__)

Variant = Literal["original", "preview"]


def blob_store(settings: Settings) -> BlobStore:
    return BlobStore(settings.data_dir / "blobs")


def part_files(settings: Settings) -> PartFiles:
    return PartFiles(settings.data_dir / "uploads")


@dataclass(frozen=True)
class Target:
    """What an attachment hangs on, checked: a consult (and optionally one of its messages)."""

    consult_id: int
    case_id: int
    message_id: int | None


def ensure_open_for_attachments(consult: Consult) -> None:
    if ConsultState(consult.state) in FINAL_STATES:
        raise Conflict(
            N_("the consult is %(state)s; nothing more can be attached"),
            state=consult.state,
        )


def check_target(session: Session, user: User, consult: Consult, message_id: int | None) -> Target:
    consult_auth.ensure_can_post(session, user, consult)
    ensure_open_for_attachments(consult)
    if message_id is not None and repository.message_consult_id(session, message_id) != consult.id:
        raise ValidationFailed(
            N_("message %(message_id)s is not in consult %(consult_id)s"),
            message_id=message_id,
            consult_id=consult.id,
            field="message_id",
        )
    return Target(pk(consult), consult.case_id, message_id)


def check_size(settings: Settings, size: int, field: str) -> None:
    if size > settings.max_upload_bytes:
        raise ValidationFailed(
            N_("the file is %(size)s; the limit is %(limit)s"),
            size=media.format_size(size),
            limit=media.format_size(settings.max_upload_bytes),
            field=field,
        )
    if size == 0:
        raise ValidationFailed(N_("the file is empty"), field=field)


def refuse(
    session: Session, user: User, object_type: str, object_id: int | str, target: Target, why: str
) -> None:
    auth.refuse(
        session,
        user,
        object_type,
        object_id,
        case_id=target.case_id,
        consult_id=target.consult_id,
        detail=why,
    )


# --- processing and storing -------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    kind: AttachmentKind
    media_type: str
    received_media_type: str
    sha256: str
    size: int
    preview_sha256: str | None = None
    preview_size: int | None = None
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None


# Audio whose container we read: Opus only, with its length (``audio``). M4A is kept as sent.
OPUS_CONTAINERS = frozenset({"audio/ogg", "audio/webm"})


def image_gate(settings: Settings) -> ImageGate:
    """This process's limit on images decoded at once (``telemed.attachments.gate``)."""
    return gate_for(settings.image_concurrency, settings.image_wait_seconds)


def process_and_store(
    store: BlobStore, fmt: media.Format, source: bytes | Path, gate: ImageGate
) -> Stored:
    """Check the bytes are what was declared, clean images (one of the ``gate``'s turns
    each: ``ServiceBusy`` when none frees up in time), write the blobs.

    Writing blobs before the row commits is safe: they are content-addressed and
    write-once, so a blob without a row is an orphan, never a wrong file.
    """
    if isinstance(source, Path):
        with source.open("rb") as f:
            head = f.read(media.SNIFF_BYTES)
    else:
        head = source[: media.SNIFF_BYTES]
    media.check_bytes(fmt, head)
    if fmt.kind is AttachmentKind.image:
        with gate.turn():
            data = source.read_bytes() if isinstance(source, Path) else source
            image = media.process_image(data, fmt)
            del data
        original = store.put_bytes(image.original)
        preview = store.put_bytes(image.preview)
        return Stored(
            kind=fmt.kind,
            media_type=image.original_format.media_type,
            received_media_type=fmt.media_type,
            sha256=original.sha256,
            size=original.size,
            preview_sha256=preview.sha256,
            preview_size=preview.size,
            width=image.width,
            height=image.height,
        )
    duration_ms = None
    if fmt.media_type in OPUS_CONTAINERS:
        info = audio.opus_info(source)
        audio.check_voice_note(info)
        duration_ms = info.duration_ms
    # PDFs and audio are kept byte for byte: nothing in them is re-encoded.
    blob = store.put_file(source) if isinstance(source, Path) else store.put_bytes(source)
    return Stored(
        fmt.kind, fmt.media_type, fmt.media_type, blob.sha256, blob.size, duration_ms=duration_ms
    )


def create_attachment(
    session: Session, user: User, target: Target, filename: str, stored: Stored
) -> Attachment:
    """The attachment row and its audit row, in the caller's transaction (not committed)."""
    fmt = media.format_for_media_type(stored.media_type)
    assert fmt is not None
    attachment = Attachment(
        consult_id=target.consult_id,
        message_id=target.message_id,
        uploaded_by_id=pk(user),
        kind=stored.kind,
        filename=media.safe_filename(filename, fmt),
        media_type=stored.media_type,
        received_media_type=stored.received_media_type,
        size_bytes=stored.size,
        sha256=stored.sha256,
        preview_sha256=stored.preview_sha256,
        preview_size_bytes=stored.preview_size,
        width=stored.width,
        height=stored.height,
        duration_ms=stored.duration_ms,
    )
    session.add(attachment)
    session.flush()
    audit.record(
        session,
        user,
        AuditAction.upload,
        "attachment",
        pk(attachment),
        case_id=target.case_id,
        consult_id=target.consult_id,
        detail=f"{attachment.filename} ({stored.received_media_type}, {stored.size} bytes, "
        f"sha256 {stored.sha256}"
        + (f", {stored.duration_ms} ms" if stored.duration_ms is not None else "")
        + ")",
    )
    return attachment


# --- the single-request way in (page form) ------------------------------------------------


def attach_file(
    session: Session,
    settings: Settings,
    user: User,
    consult: Consult,
    *,
    filename: str,
    media_type: str,
    data: bytes,
    size: int | None = None,
    message_id: int | None = None,
) -> Attachment:
    """A whole file in one request (the page's form without JavaScript).

    ``size`` is the size received when ``data`` was cut off at one byte past the limit.
    """
    target = check_target(session, user, consult, message_id)
    try:
        stored = prepare_file(session, settings, filename, media_type, data, size, "file")
    except ValidationFailed as exc:
        refuse(session, user, "attachment", "new", target, f"{filename[:100]}: {exc.message}")
        raise
    return create_attachment(session, user, target, filename, stored)


def prepare_file(
    session: Session,
    settings: Settings,
    filename: str,
    media_type: str,
    data: bytes,
    size: int | None,
    field: str,
) -> Stored:
    """A whole file checked, cleaned and its blobs written, before the row that names it.

    Ends the session's read (``uow.end_read``: no transaction during image work), so it
    runs before anything of the request is written: the consult request form prepares its
    photos first, then creates the consult and attaches them (``create_attachment``) in
    the one transaction the request commits. A size refusal names ``field``."""
    fmt = media.declared_format(filename, media_type)
    check_size(settings, max(len(data), size or 0), field)
    media.check_bytes(fmt, data[: media.SNIFF_BYTES])
    uow.end_read(session)
    return process_and_store(blob_store(settings), fmt, data, image_gate(settings))


# --- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listed:
    attachment: Attachment
    uploader_name: str


def attachments_of(session: Session, consult: Consult) -> list[Listed]:
    return [Listed(a, u.full_name) for a, u in repository.attachments_of(session, pk(consult))]


def get_attachment(session: Session, user: User, attachment_id: int) -> Attachment:
    attachment, consult = auth.get_visible_attachment(session, user, attachment_id, "read")
    audit.record_access(
        session,
        user,
        AuditAction.read,
        "attachment",
        attachment_id,
        case_id=consult.case_id,
        consult_id=consult.id,
        detail="metadata",
    )
    return attachment


@dataclass(frozen=True)
class Download:
    path: Path
    media_type: str
    filename: str
    sha256: str


def download(
    session: Session, settings: Settings, user: User, attachment_id: int, variant: Variant
) -> Download:
    """The file to send, once the download is authorized and audited."""
    attachment, consult = auth.get_visible_attachment(
        session, user, attachment_id, f"download of the {variant}"
    )
    if variant == "preview":
        if attachment.preview_sha256 is None:
            raise NotFound(
                N_("attachment %(attachment_id)s has no preview; download the original"),
                attachment_id=attachment_id,
            )
        sha256, media_type = attachment.preview_sha256, "image/jpeg"
        stem = attachment.filename.rsplit(".", 1)[0]
        filename = f"{stem}-preview.jpg"
    else:
        sha256, media_type, filename = attachment.sha256, attachment.media_type, attachment.filename
    path = blob_store(settings).path(sha256)
    if not path.is_file():
        log.error("blob %s of attachment %s is missing from %s", sha256, attachment_id, path)
        raise NotFound(
            N_(
                "the file of attachment %(attachment_id)s is missing on the server; please tell an"
                " administrator"
            ),
            attachment_id=attachment_id,
        )
    audit.record_access(
        session,
        user,
        AuditAction.download,
        "attachment",
        attachment_id,
        case_id=consult.case_id,
        consult_id=consult.id,
        detail=variant,
    )
    return Download(path, media_type, filename, sha256)
