"""``Idempotency-Key``: a creating request sent again returns its first answer.

How it works, per request that carries the header:

1. ``check_key`` refuses a malformed key (422 naming the header).
2. ``claim`` takes a lock on (user, key) for the rest of the request's unit of work
   (``repository.lock``), then looks the key up. Two copies of one request arriving at the
   same moment are thus run one after the other: the second sees the first's stored answer.
3. Not found: the endpoint runs and ``store`` writes its answer in the same unit of work as
   the write it describes. If the endpoint fails, nothing is stored and a retry runs again.
4. Found for the same request (method, path, body): the caller replays the stored answer
   (``record_replay`` audits it). Found for another request: 409 naming the header.

Keys are per user: another user's identical key is a different key, and a stored answer is
only ever returned to the user whose request produced it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from telemed import uow
from telemed.accounts.models import User
from telemed.audit import service as audit
from telemed.audit.models import AuditAction
from telemed.db import pk
from telemed.errors import Conflict, ValidationFailed
from telemed.i18n import N_
from telemed.idempotency import repository
from telemed.idempotency.models import IdempotencyKey

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# A UUID (36) fits, and so does any client's random token; nothing a header could abuse.
KEY_PATTERN = re.compile(r"[A-Za-z0-9._:-]{8,128}")


@dataclass(frozen=True)
class Claim:
    """One request's key, as it will be stored: who, which key, what request."""

    user_id: int
    key: str
    request: str  # "POST /api/v1/consults/7/messages"
    request_sha256: str

    @property
    def lock_id(self) -> int:
        """A signed 64-bit number for (user, key), as ``pg_advisory_xact_lock`` takes."""
        digest = hashlib.sha256(f"idempotency:{self.user_id}:{self.key}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)


def check_key(value: str) -> str:
    if not KEY_PATTERN.fullmatch(value):
        raise ValidationFailed(
            N_(
                "the %(header)s header must be 8 to 128 letters, digits or . _ : - (a UUID will "
                "do); got %(length)s characters"
            ),
            header=HEADER,
            length=len(value),
            field=HEADER,
        )
    return value


def request_digest(body: bytes) -> str:
    """The sha256 of the body; of its JSON in a canonical form when it is JSON, so that a
    client re-serialising the same object (keys in another order) is the same request."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
    except ValueError:
        return hashlib.sha256(body).hexdigest()
    return hashlib.sha256(canonical.encode()).hexdigest()


def claim(session: Session, user: User, wanted: Claim) -> IdempotencyKey | None:
    """Lock the key for this unit of work, then the stored answer to replay, if any.

    Raises ``Conflict`` (409, naming the header) when the key was used for another request;
    the refused attempt is audited (the row persists although the request fails).
    """
    repository.lock(session, wanted.lock_id)
    found = repository.find(session, wanted.user_id, wanted.key)
    if found is None:
        return None
    if found.request != wanted.request or found.request_sha256 != wanted.request_sha256:
        what = "another request" if found.request != wanted.request else "another body"
        audit.record_refusal(
            session,
            user,
            "idempotent_response",
            pk(found),
            case_id=found.case_id,
            consult_id=found.consult_id,
            detail=f"{HEADER} {wanted.key} sent again with {what}: {wanted.request}",
        )
        raise Conflict(
            N_(
                "this %(header)s was already used for %(what)s (%(request)s); send a new key"
                " for a new request, or the same request unchanged to get its first answer again"
            ),
            header=HEADER,
            what=what,
            request=found.request,
            field=HEADER,
        )
    return found


def store(
    session: Session,
    claimed: Claim,
    status_code: int,
    body: str,
    now: datetime,
    *,
    consult_id: int | None = None,
    case_id: int | None = None,
) -> IdempotencyKey:
    """The answer to replay, written in the caller's unit of work (with the write itself)."""
    row = IdempotencyKey(
        key=claimed.key,
        user_id=claimed.user_id,
        request=claimed.request,
        request_sha256=claimed.request_sha256,
        status_code=status_code,
        response_body=body,
        consult_id=consult_id,
        case_id=case_id,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def record_replay(session: Session, user: User, row: IdempotencyKey) -> None:
    """A replay hands out a stored (possibly clinical) answer: audit it as a read. The
    request itself ends in a rollback (nothing new is written), so the row is written
    whichever way the unit ends."""
    row_id, consult_id, case_id = pk(row), row.consult_id, row.case_id
    detail = f"{row.request} replayed for {HEADER} {row.key}"

    def write(unit: Session) -> None:
        audit.record_access(
            unit,
            user,
            AuditAction.read,
            "idempotent_response",
            row_id,
            case_id=case_id,
            consult_id=consult_id,
            detail=detail,
        )

    uow.persist_regardless(session, write)
