"""Message thread JSON API."""

from __future__ import annotations

from fastapi import APIRouter, Response

from telemed.consults import service as consult_service
from telemed.consults.deps import ERRORS, CurrentConsult
from telemed.db import pk
from telemed.deps import CurrentUser, SessionDep
from telemed.idempotency.deps import IdempotencyDep
from telemed.messages import service
from telemed.messages.schemas import MessageIn, MessagePublic
from telemed.web.access import CONSULT_READERS

router = APIRouter(tags=["messages"])


@router.get("/consults/{consult_id}/messages", responses=ERRORS)
def list_messages(
    consult: CurrentConsult, user: CurrentUser, db: SessionDep
) -> list[MessagePublic]:
    """The consult's thread, oldest first."""
    consult_service.record_read(db, user, consult, "thread")
    return service.thread(db, consult)


@router.post(
    "/consults/{consult_id}/messages",
    status_code=201,
    responses=ERRORS,
    response_model=MessagePublic,
)
def post_message(
    body: MessageIn,
    consult: CurrentConsult,
    user: CurrentUser,
    db: SessionDep,
    idem: IdempotencyDep,
) -> Response:
    """Add a message to the thread; everyone allowed on the consult sees it. With an
    `Idempotency-Key`, a repeat returns the first answer instead of a second message."""
    message = service.post(db, user, consult, body.body)
    public = MessagePublic(
        id=pk(message),
        consult_id=message.consult_id,
        author_id=pk(user),
        author_name=user.full_name,
        author_role=user.role,
        body=message.body,
        created_at=message.created_at,
    )
    return idem.respond(public, consult=consult)


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {"list_messages": CONSULT_READERS, "post_message": CONSULT_READERS}
