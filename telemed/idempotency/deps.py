"""``IdempotencyDep``: the ``Idempotency-Key`` header on every API POST that creates.

An endpoint takes ``idem: IdempotencyDep`` as its *last* parameter (so that the consult's
access check, ``CurrentConsult``, has run first) and ends with ``return idem.respond(...)``,
which stores the answer with the write when the request carries a key. A repeat of a
stored request never reaches the endpoint: the dependency answers it with the stored
status and body and the header ``Idempotent-Replayed: true``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from telemed.accounts.models import User
from telemed.consults import auth as consult_auth
from telemed.consults.models import Consult
from telemed.db import pk
from telemed.deps import CurrentUser, NowDep, SessionDep
from telemed.idempotency import service
from telemed.idempotency.models import IdempotencyKey
from telemed.idempotency.service import HEADER, REPLAYED_HEADER, Claim

JSON = "application/json"


class Replayed(Exception):
    """Raised by the dependency to answer with a stored response instead of the endpoint."""

    def __init__(self, status_code: int, body: str) -> None:
        super().__init__(status_code)
        self.status_code = status_code
        self.body = body


@dataclass
class Idempotency:
    request: Request
    db: Session
    claim: Claim | None
    now: datetime

    def respond(self, payload: BaseModel, *, consult: Consult | None = None) -> Response:
        """The endpoint's answer (JSON, the route's status), stored when a key came with it."""
        route = self.request.scope.get("route")
        status_code = getattr(route, "status_code", None) or 200
        body = payload.model_dump_json()
        if self.claim is not None:
            service.store(
                self.db,
                self.claim,
                status_code,
                body,
                self.now,
                consult_id=pk(consult) if consult is not None else None,
                case_id=consult.case_id if consult is not None else None,
            )
        return Response(body, status_code=status_code, media_type=JSON)


def _replay(db: Session, user: User, found: IdempotencyKey) -> Replayed:
    """Check the user may still see what the answer is about, audit, and replay it."""
    if found.consult_id is not None:
        consult_auth.get_visible_consult(db, user, found.consult_id)  # 404 and audited if not
    service.record_replay(db, user, found)
    return Replayed(found.status_code, found.response_body)


async def idempotency(
    request: Request,
    user: CurrentUser,
    db: SessionDep,
    now: NowDep,
    raw: Annotated[
        str | None,
        Header(
            alias=HEADER,
            description="a new random key (e.g. a UUID) per request; sent again with the "
            "same request after a lost answer, it returns the first answer instead of "
            "creating twice (`Idempotent-Replayed: true`)",
        ),
    ] = None,
) -> Idempotency:
    if raw is None:
        return Idempotency(request, db, None, now)
    key = service.check_key(raw)
    wanted = Claim(
        user_id=pk(user),
        key=key,
        request=f"{request.method} {request.url.path}"[:300],
        request_sha256=service.request_digest(await request.body()),
    )
    found = await run_in_threadpool(service.claim, db, user, wanted)
    if found is not None:
        raise await run_in_threadpool(_replay, db, user, found)
    return Idempotency(request, db, wanted, now)


IdempotencyDep = Annotated[Idempotency, Depends(idempotency)]


def install(app: FastAPI) -> None:
    """Answer a replay with the stored status and body (called by the app factory)."""

    async def replayed(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Replayed)
        return Response(
            exc.body,
            status_code=exc.status_code,
            media_type=JSON,
            headers={REPLAYED_HEADER: "true", "Cache-Control": "no-store"},
        )

    app.add_exception_handler(Replayed, replayed)
