"""Attachments JSON API and the resumable (tus-like) upload protocol.

Sending a file over a link that drops:

1. ``POST /consults/{id}/uploads`` with the file's name, exact length and media type; the
   answer (201) carries the upload's ``url`` and ``offset`` 0. A wrong type or a file over
   the limit is refused here, before a byte is sent.
2. ``PATCH {url}`` with the header ``Upload-Offset: <offset>``, ``Content-Type:
   application/offset+octet-stream`` and the next bytes as the body (e.g. 256 KB). The
   answer carries the new offset (body and ``Upload-Offset`` header). A chunk sent at any
   other offset is refused with 409 and the server's offset.
3. After a drop: ``HEAD {url}`` gives the server's ``Upload-Offset``; continue from there.
4. The chunk that brings the last byte finalizes the upload: the answer has ``state``
   ``complete`` and the ``attachment``, or 422 with the reason the file was refused (the
   upload is then ``failed``). If the connection dropped during finalization, an empty
   ``PATCH`` at the final offset finishes it.

Uploads expire 24 hours after their last chunk. Only the uploader may continue one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from starlette.requests import ClientDisconnect

from telemed.attachments import service, uploads
from telemed.attachments.models import Upload
from telemed.attachments.schemas import AttachmentPublic, UploadCreate, UploadPublic
from telemed.consults import service as consult_service
from telemed.consults.deps import CurrentConsult
from telemed.deps import ClockDep, CurrentUser, NowDep, SessionDep, SettingsDep, UnitsDep
from telemed.errors import TelemedError, ValidationFailed
from telemed.i18n import N_
from telemed.idempotency.deps import IdempotencyDep
from telemed.validation import Id
from telemed.web.access import CONSULT_READERS, UPLOADER
from telemed.web.errors import ErrorBody, ErrorDetail, error_responses

router = APIRouter(tags=["attachments"])

ERRORS = error_responses(401, 403, 404, 409, 410, 415, 422)
CHUNK_MEDIA_TYPE = "application/offset+octet-stream"
NO_STORE = {"Cache-Control": "no-store"}


class UnsupportedMediaType(TelemedError):
    status_code = 415
    code = "unsupported_media_type"


def _upload_headers(upload: Upload) -> dict[str, str]:
    return {
        "Upload-Offset": str(upload.offset),
        "Upload-Length": str(upload.length),
        "Upload-State": str(upload.state),
        "Upload-Expires": upload.expires_at.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        **NO_STORE,
    }


def _offset_conflict(exc: uploads.OffsetMismatch) -> JSONResponse:
    """409 that also carries the server's offset as a header, as tus clients expect."""
    body = ErrorBody(error=ErrorDetail(code=exc.code, message=exc.message))
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=409,
        headers={"Upload-Offset": str(exc.expected), **NO_STORE},
    )


@router.get("/consults/{consult_id}/attachments", responses=ERRORS)
def list_attachments(
    consult: CurrentConsult, user: CurrentUser, db: SessionDep
) -> list[AttachmentPublic]:
    """The consult's attachments, oldest first (metadata; files via their URLs)."""
    consult_service.record_read(db, user, consult, "attachments")
    return [AttachmentPublic.of(item.attachment) for item in service.attachments_of(db, consult)]


@router.post(
    "/consults/{consult_id}/uploads",
    status_code=201,
    responses=ERRORS,
    response_model=UploadPublic,
)
def create_upload(
    body: UploadCreate,
    consult: CurrentConsult,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    idem: IdempotencyDep,
) -> Response:
    """Start a resumable upload of one file (JPEG, PNG, HEIC, PDF, Ogg/M4A/WebM audio).

    The type (from `media_type` and the file name) and the size are checked now; the
    bytes themselves are checked when they arrive. Send them with `PATCH` to the `url`.
    With an `Idempotency-Key`, a repeat returns the same upload (continue it from the
    offset `HEAD` gives) instead of starting a second one.
    """
    upload = uploads.create_upload(db, settings, user, consult, body, clock)
    response = idem.respond(UploadPublic.of(upload), consult=consult)
    response.headers["Location"] = f"/api/v1/uploads/{upload.id}"
    response.headers.update(_upload_headers(upload))
    return response


@router.head("/uploads/{upload_id}", responses=ERRORS)
def upload_offset(upload_id: str, user: CurrentUser, db: SessionDep, now: NowDep) -> Response:
    """How many bytes the server has (`Upload-Offset`), to resume after a drop."""
    upload, _attachment = uploads.get_upload(db, user, upload_id, now)
    return Response(status_code=200, headers=_upload_headers(upload))


@router.get("/uploads/{upload_id}", responses=ERRORS)
def get_upload(
    upload_id: str, user: CurrentUser, db: SessionDep, response: Response, now: NowDep
) -> UploadPublic:
    """Where the upload stands, with the failure reason or the attachment it became."""
    upload, attachment = uploads.get_upload(db, user, upload_id, now)
    response.headers.update(_upload_headers(upload))
    return UploadPublic.of(upload, attachment)


async def _read_chunk(request: Request, remaining: int) -> bytes:
    """The request body, refused as soon as it goes past the declared length."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > remaining:
        raise ValidationFailed(
            N_(
                "the chunk is %(declared)s bytes: past the declared length, only %(remaining)s "
                "remain"
            ),
            declared=declared,
            remaining=remaining,
            field="body",
        )
    chunk = bytearray()
    async for piece in request.stream():
        chunk.extend(piece)
        if len(chunk) > remaining:
            raise ValidationFailed(
                N_("the chunk goes past the declared length: only %(remaining)s bytes remain"),
                remaining=remaining,
                field="body",
            )
    return bytes(chunk)


@router.patch(
    "/uploads/{upload_id}",
    responses={**ERRORS, **error_responses(503)},  # 503: images busy (attachments/gate.py)
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {CHUNK_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def append_chunk(
    upload_id: str,
    request: Request,
    user: CurrentUser,
    db: SessionDep,
    units: UnitsDep,
    settings: SettingsDep,
    clock: ClockDep,
    upload_offset: Annotated[int, Header(ge=0, description="where this chunk starts")],
) -> Response:
    """Append the body at `Upload-Offset`; the last chunk finalizes the upload.

    Answers the new offset; 409 (with the server's `Upload-Offset`) when the offset is not
    the server's; 422 when the chunk goes past the declared length or the file turns out
    not to be what was declared (the upload is then failed and nothing is kept).
    """
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != CHUNK_MEDIA_TYPE:
        raise UnsupportedMediaType(
            N_("send chunks with Content-Type: %(media_type)s"),
            media_type=CHUNK_MEDIA_TYPE,
        )
    try:
        # Check before reading: the body may take minutes on 2G, and no database
        # transaction (SQLite's write lock) may stay open while it arrives; the request's
        # unit of work ends here, and the chunk is written in units of its own.
        expected, remaining = await run_in_threadpool(
            uploads.expected_offset, db, user, upload_id, clock
        )
        if upload_offset != expected:
            raise uploads.OffsetMismatch(expected, upload_offset)
        data = await _read_chunk(request, remaining)
        upload, attachment = await run_in_threadpool(
            uploads.append_chunk, units, settings, user, upload_id, upload_offset, data, clock
        )
    except uploads.OffsetMismatch as exc:
        return _offset_conflict(exc)
    except ClientDisconnect:
        # The link dropped mid-chunk: nothing of it was written. Nobody reads this answer;
        # the client asks HEAD for the offset and sends the chunk again.
        return Response(status_code=400, headers=NO_STORE)
    public = UploadPublic.of(upload, attachment)
    return JSONResponse(public.model_dump(mode="json"), headers=_upload_headers(upload))


@router.get("/attachments/{attachment_id}", responses=ERRORS)
def get_attachment(attachment_id: Id, user: CurrentUser, db: SessionDep) -> AttachmentPublic:
    """One attachment's metadata (name, type, size, sha256, links)."""
    return AttachmentPublic.of(service.get_attachment(db, user, attachment_id))


@router.get(
    "/attachments/{attachment_id}/original",
    responses={**ERRORS, 200: {"content": {"application/octet-stream": {}}}},
    response_class=Response,
)
def download_original(
    attachment_id: Id, request: Request, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """The stored file (images without metadata; PDFs and audio as received). Audited."""
    found = service.download(db, settings, user, attachment_id, "original")
    return file_response(request, found)


@router.get(
    "/attachments/{attachment_id}/preview",
    responses={**ERRORS, 200: {"content": {"image/jpeg": {}}}},
    response_class=Response,
)
def download_preview(
    attachment_id: Id, request: Request, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """A JPEG of at most 100 KB for slow links (images only). Audited."""
    found = service.download(db, settings, user, attachment_id, "preview")
    return file_response(request, found)


def file_response(request: Request, found: service.Download) -> Response:
    """Send a stored file as a download that no browser will try to run or sniff.

    Revalidated on every use (``no-cache``), so each view reaches the audit trail; an
    unchanged file answers 304 by its sha256 and costs the link no bytes.
    """
    etag = f'"{found.sha256}"'
    headers = {
        "ETag": etag,
        "Cache-Control": "private, no-cache",
        "X-Content-Type-Options": "nosniff",
    }
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    return FileResponse(
        found.path,
        media_type=found.media_type,
        filename=found.filename,
        content_disposition_type="attachment",
        headers=headers,
    )


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {
    "list_attachments": CONSULT_READERS,
    "create_upload": CONSULT_READERS,
    "upload_offset": UPLOADER,
    "get_upload": UPLOADER,
    "append_chunk": UPLOADER,
    "get_attachment": CONSULT_READERS,
    "download_original": CONSULT_READERS,
    "download_preview": CONSULT_READERS,
}
