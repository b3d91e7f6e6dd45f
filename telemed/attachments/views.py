"""Attachment pages: the consult page's attachments panel, the no-JavaScript upload form,
and downloads behind the page's login (the same files and audit as the API)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from telemed.attachments import media, service
from telemed.attachments.endpoints import file_response
from telemed.consults import auth as consult_auth
from telemed.consults.lifecycle import FINAL_STATES
from telemed.consults.models import Consult, ConsultState
from telemed.deps import CurrentUser, SessionDep, SettingsDep
from telemed.errors import Conflict, ValidationFailed
from telemed.settings import Settings

router = APIRouter(include_in_schema=False)


def _page_consult(consult_id: int, user: CurrentUser, db: SessionDep) -> Consult:
    return consult_auth.get_visible_consult(db, user, consult_id)


PageConsult = Annotated[Consult, Depends(_page_consult)]


@dataclass(frozen=True)
class PanelItem:
    id: int
    filename: str
    kind: str
    size: str
    original_url: str
    preview_url: str | None
    uploader_name: str
    created_at: datetime
    width: int | None
    height: int | None


@dataclass(frozen=True)
class Panel:
    """What ``templates/_attachments.html`` shows."""

    items: list[PanelItem]
    can_attach: bool
    accept: str
    max_bytes: int
    max_size: str
    accepted: str


def panel(request: Request, db: Session, consult: Consult) -> Panel:
    """The consult page's attachments panel (called from the consult page's view)."""
    settings: Settings = request.app.state.settings
    items = [
        PanelItem(
            id=a.id or 0,
            filename=a.filename,
            kind=a.kind,
            size=media.format_size(a.size_bytes),
            original_url=f"/attachments/{a.id}/original",
            preview_url=f"/attachments/{a.id}/preview" if a.preview_sha256 else None,
            uploader_name=listed.uploader_name,
            created_at=a.created_at,
            width=a.width,
            height=a.height,
        )
        for listed in service.attachments_of(db, consult)
        for a in [listed.attachment]
    ]
    return Panel(
        items=items,
        can_attach=ConsultState(consult.state) not in FINAL_STATES,
        accept=media.ACCEPT_ATTRIBUTE,
        max_bytes=settings.max_upload_bytes,
        max_size=media.format_size(settings.max_upload_bytes),
        accepted=media.ACCEPTED_SUMMARY,
    )


@router.post("/consults/{consult_id}/attachments")
def attach(
    request: Request,
    consult: PageConsult,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    file: Annotated[UploadFile | None, File()] = None,
    message_id: Annotated[int | None, Form()] = None,
) -> Response:
    """The upload form without JavaScript: one small file in one request."""
    try:
        if file is None or not file.filename:
            raise ValidationFailed("choose a file to attach", field="file")
        # Read at most one byte past the limit: enough to know the file is too big.
        data = file.file.read(settings.max_upload_bytes + 1)
        service.attach_file(
            db,
            settings,
            user,
            consult,
            filename=file.filename,
            media_type=file.content_type or "",
            data=data,
            size=file.size if file.size is not None else len(data),
            message_id=message_id,
        )
    except (ValidationFailed, Conflict) as exc:
        # Imported here: the consult page imports this module for its attachments panel.
        from telemed.consults.views import _detail

        return _detail(request, consult, user, db, {"file": exc.message}, {}, exc.status_code)
    return RedirectResponse(f"/consults/{consult.id}#attachments", status_code=303)


@router.get("/attachments/{attachment_id}/original")
def original(
    attachment_id: int, request: Request, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    return file_response(request, service.download(db, settings, user, attachment_id, "original"))


@router.get("/attachments/{attachment_id}/preview")
def preview(
    attachment_id: int, request: Request, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    return file_response(request, service.download(db, settings, user, attachment_id, "preview"))
