"""Who may see an attachment and continue an upload.

An attachment is visible to exactly the users who may see its consult (the consult rules in
``telemed.consults.auth``); an upload belongs to its uploader alone, who must still be
allowed on the consult. Refusals answer 404 (nothing is revealed about what exists) and are
audited as ``denied``, a row that persists although the request fails (``telemed.uow``).
"""

from __future__ import annotations

from sqlmodel import Session

from telemed.accounts.models import User
from telemed.attachments import repository
from telemed.attachments.models import Attachment, Upload
from telemed.audit import service as audit
from telemed.consults import auth as consult_auth
from telemed.consults import repository as consult_repository
from telemed.consults.models import Consult
from telemed.errors import NotFound
from telemed.i18n import N_


def refuse(
    session: Session,
    user: User,
    object_type: str,
    object_id: int | str,
    *,
    case_id: int | None,
    consult_id: int | None,
    detail: str,
) -> None:
    """Record the refused attempt; the row persists although the request fails."""
    audit.record_refusal(
        session,
        user,
        object_type,
        object_id,
        case_id=case_id,
        consult_id=consult_id,
        detail=detail,
    )


def get_visible_attachment(
    session: Session, user: User, attachment_id: int, purpose: str
) -> tuple[Attachment, Consult]:
    """The attachment and its consult, or 404 (audited) when the user is not on the consult."""
    attachment = repository.get_attachment(session, attachment_id)
    consult = consult_repository.get_consult(session, attachment.consult_id) if attachment else None
    if attachment is None or consult is None:
        raise NotFound(N_("attachment %(attachment_id)s not found"), attachment_id=attachment_id)
    if not consult_auth.can_view(session, user, consult):
        refuse(
            session,
            user,
            "attachment",
            attachment_id,
            case_id=consult.case_id,
            consult_id=consult.id,
            detail=f"{purpose} refused: not allowed on consult {consult.id}",
        )
        raise NotFound(N_("attachment %(attachment_id)s not found"), attachment_id=attachment_id)
    return attachment, consult


def get_own_upload(
    session: Session, user: User, upload_id: str, *, lock: bool = False
) -> tuple[Upload, Consult]:
    """The user's own upload and its consult; anyone else's is 404 (audited)."""
    upload = repository.get_upload(session, upload_id, lock=lock)
    if upload is None:
        raise NotFound(N_("upload %(upload_id)s not found"), upload_id=upload_id)
    if upload.uploader_id != user.id:
        consult = consult_repository.get_consult(session, upload.consult_id)
        refuse(
            session,
            user,
            "upload",
            upload_id,
            case_id=consult.case_id if consult else None,
            consult_id=upload.consult_id,
            detail="only the uploader may continue an upload",
        )
        raise NotFound(N_("upload %(upload_id)s not found"), upload_id=upload_id)
    # The uploader may have lost access to the consult since (e.g. a specialist reassigned).
    consult = consult_auth.get_visible_consult(session, user, upload.consult_id)
    return upload, consult
