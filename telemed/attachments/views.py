"""Attachment pages: the no-JavaScript upload form (refused, it shows the consult page
again with the error beside the field) and downloads behind the page's login (the same
files and audit as the API). The consult page's attachments section is
``attachments.panels``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from telemed.attachments import service
from telemed.attachments.endpoints import file_response
from telemed.consults.deps import CurrentConsult
from telemed.deps import CurrentUser, SessionDep, SettingsDep
from telemed.errors import Conflict, ValidationFailed
from telemed.i18n import N_
from telemed.validation import Id
from telemed.web.access import CONSULT_READERS
from telemed.web.pages.consult import ConsultPageDep

router = APIRouter(include_in_schema=False)


@router.post("/consults/{consult_id}/attachments")
def attach(
    consult: CurrentConsult,
    page: ConsultPageDep,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    file: Annotated[UploadFile | None, File()] = None,
    message_id: Annotated[Id | None, Form()] = None,
) -> Response:
    """The upload form without JavaScript: one small file in one request."""
    try:
        if file is None or not file.filename:
            raise ValidationFailed(N_("choose a file to attach"), field="file")
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
        return page.render({"file": exc.shown()}, {}, exc.status_code)
    return RedirectResponse(f"/consults/{consult.id}#attachments", status_code=303)


@router.get("/attachments/{attachment_id}/original")
def original(
    attachment_id: Id, request: Request, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    return file_response(request, service.download(db, settings, user, attachment_id, "original"))


@router.get("/attachments/{attachment_id}/preview")
def preview(
    attachment_id: Id, request: Request, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    return file_response(request, service.download(db, settings, user, attachment_id, "preview"))


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {
    "attach": CONSULT_READERS,
    "original": CONSULT_READERS,
    "preview": CONSULT_READERS,
}
