"""The hash chain itself: pure functions over audit rows."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from telemed.audit.models import AuditEntry

GENESIS_HASH = "0" * 64


def row_digest(entry: AuditEntry) -> str:
    """SHA-256 over the row's content (its id included) and the previous row's hash."""
    content = [
        entry.id,
        entry.at.isoformat(timespec="microseconds"),
        entry.actor_id,
        entry.actor_role,
        str(entry.action),
        entry.object_type,
        entry.object_id,
        entry.case_id,
        entry.consult_id,
        entry.client_address,
        entry.detail,
        entry.prev_hash,
    ]
    canonical = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class ChainBreak:
    row_id: int
    problem: str

    def __str__(self) -> str:
        return f"audit row {self.row_id}: {self.problem}"


def verify(entries: Iterable[AuditEntry]) -> tuple[int, ChainBreak | None]:
    """Walk the rows in id order; return how many were checked and the first break."""
    expected_prev = GENESIS_HASH
    expected_id = 1
    checked = 0
    for entry in entries:
        if entry.id != expected_id:
            problem = (
                f"expected row {expected_id} next, found row {entry.id}: "
                f"row(s) {expected_id}..{entry.id - 1} removed"
                if entry.id > expected_id
                else f"row id {entry.id} out of order (inserted)"
            )
            return checked, ChainBreak(entry.id, problem)
        if entry.prev_hash != expected_prev:
            return checked, ChainBreak(
                entry.id, "previous-hash link broken (a row before it was removed or inserted)"
            )
        if row_digest(entry) != entry.row_hash:
            return checked, ChainBreak(entry.id, "content does not match its hash (altered)")
        expected_prev = entry.row_hash
        expected_id += 1
        checked += 1
    return checked, None
