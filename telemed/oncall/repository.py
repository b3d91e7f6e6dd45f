"""Queries of the on-call rota (``flush`` only: the caller owns the transaction)."""

from __future__ import annotations

from sqlmodel import Session, col, select

from telemed.oncall.models import OnCallBlock, OnCallLinkUse


def blocks_of(session: Session, user_id: int) -> list[OnCallBlock]:
    return list(
        session.exec(
            select(OnCallBlock)
            .where(OnCallBlock.user_id == user_id)
            .order_by(col(OnCallBlock.weekday), col(OnCallBlock.start_time), col(OnCallBlock.id))
        )
    )


def all_blocks(session: Session, specialty: str | None = None) -> list[OnCallBlock]:
    query = select(OnCallBlock)
    if specialty is not None:
        query = query.where(OnCallBlock.specialty_code == specialty)
    return list(session.exec(query.order_by(col(OnCallBlock.user_id), col(OnCallBlock.id))))


def get_block(session: Session, block_id: int) -> OnCallBlock | None:
    return session.get(OnCallBlock, block_id)


def link_used(session: Session, token_digest: str) -> OnCallLinkUse | None:
    return session.exec(
        select(OnCallLinkUse).where(OnCallLinkUse.token_digest == token_digest)
    ).first()
