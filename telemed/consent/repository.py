"""All SQL of consent."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func
from sqlmodel import Session, col, select

from telemed.consent.models import ConsentAction, ConsentRecord, ConsentScope


def records_of(session: Session, consult_id: int) -> list[ConsentRecord]:
    return list(
        session.exec(
            select(ConsentRecord)
            .where(ConsentRecord.consult_id == consult_id)
            .order_by(col(ConsentRecord.id))
        )
    )


def records_of_many(session: Session, consult_ids: Iterable[int]) -> list[ConsentRecord]:
    ids = list(consult_ids)
    if not ids:
        return []
    return list(
        session.exec(
            select(ConsentRecord)
            .where(col(ConsentRecord.consult_id).in_(ids))
            .order_by(col(ConsentRecord.id))
        )
    )


def latest(session: Session, consult_id: int, scope: ConsentScope) -> ConsentRecord | None:
    """The latest record of the scope: the one in force (rows are never changed, so the
    highest id is the newest)."""
    return session.exec(
        select(ConsentRecord)
        .where(ConsentRecord.consult_id == consult_id, ConsentRecord.scope == scope)
        .order_by(col(ConsentRecord.id).desc())
        .limit(1)
    ).first()


def given_among(session: Session, consult_ids: Iterable[int], scope: ConsentScope) -> set[int]:
    """Those of ``consult_ids`` whose latest record of ``scope`` gives consent (one query)."""
    ids = list(consult_ids)
    if not ids:
        return set()
    newest = (
        select(func.max(ConsentRecord.id))
        .where(col(ConsentRecord.consult_id).in_(ids), ConsentRecord.scope == scope)
        .group_by(col(ConsentRecord.consult_id))
    )
    rows = session.exec(
        select(ConsentRecord.consult_id).where(
            col(ConsentRecord.id).in_(newest), ConsentRecord.action == ConsentAction.given
        )
    )
    return set(rows)
