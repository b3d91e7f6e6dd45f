"""All SQL of the second factor."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, or_, update
from sqlmodel import Session, col, select

from telemed.accounts.models import UserSession
from telemed.mfa.models import (
    GuessCounter,
    LoginChallenge,
    Reauthentication,
    RecoveryCode,
    TotpCredential,
)


def credential(session: Session, user_id: int, *, lock: bool = False) -> TotpCredential | None:
    query = select(TotpCredential).where(TotpCredential.user_id == user_id)
    if lock:
        query = query.with_for_update()
    return session.exec(query).first()


def claim_step(session: Session, user_id: int, step: int) -> bool:
    """Record ``step`` as the last one used, only if it is later than the last one: the
    compare-and-set that refuses a replayed code, also between two requests at once."""
    result = session.execute(
        update(TotpCredential)
        .where(
            col(TotpCredential.user_id) == user_id,
            or_(col(TotpCredential.last_step).is_(None), col(TotpCredential.last_step) < step),
        )
        .values(last_step=step)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def use_recovery_code(session: Session, user_id: int, code_hash: str, now: datetime) -> bool:
    """Mark the code used, once: a second use (or a code of someone else) changes nothing."""
    result = session.execute(
        update(RecoveryCode)
        .where(
            col(RecoveryCode.user_id) == user_id,
            col(RecoveryCode.code_hash) == code_hash,
            col(RecoveryCode.used_at).is_(None),
        )
        .values(used_at=now)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def recovery_codes_left(session: Session, user_id: int) -> int:
    query = (
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user_id, col(RecoveryCode.used_at).is_(None))
    )
    return int(session.exec(query).one())


def drop_recovery_codes(session: Session, user_id: int) -> None:
    session.execute(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user_id))


def drop_credential(session: Session, user_id: int) -> None:
    session.execute(delete(TotpCredential).where(col(TotpCredential.user_id) == user_id))


def counter(session: Session, user_id: int, *, lock: bool = False) -> GuessCounter | None:
    query = select(GuessCounter).where(GuessCounter.user_id == user_id)
    if lock:
        query = query.with_for_update()
    return session.exec(query).first()


def live_challenge(session: Session, digest: str, now: datetime) -> LoginChallenge | None:
    return session.exec(
        select(LoginChallenge).where(
            LoginChallenge.id == digest,
            col(LoginChallenge.used_at).is_(None),
            col(LoginChallenge.expires_at) > now,
        )
    ).first()


def close_challenge(session: Session, digest: str, now: datetime) -> bool:
    result = session.execute(
        update(LoginChallenge)
        .where(col(LoginChallenge.id) == digest, col(LoginChallenge.used_at).is_(None))
        .values(used_at=now)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def last_proof(session: Session, digest: str) -> tuple[datetime, datetime | None] | None:
    """When the login session began, and when it last re-authenticated (or None)."""
    row = session.execute(
        select(col(UserSession.created_at), col(Reauthentication.verified_at))
        .outerjoin(Reauthentication, col(Reauthentication.session_id) == col(UserSession.id))
        .where(col(UserSession.id) == digest)
    ).first()
    if row is None:
        return None
    return row[0], row[1]


def set_proof(session: Session, digest: str, now: datetime) -> None:
    found = session.get(Reauthentication, digest)
    if found is None:
        session.add(Reauthentication(session_id=digest, verified_at=now))
    else:
        found.verified_at = now
        session.add(found)
