"""The hash chain itself: pure functions over audit rows.

A row's place in the chain is its ``seq``, given by the sealer (``telemed.audit.sealer``),
not its ``id``, which the database gives at insert in whatever order writers happen to
insert. The digest covers the position, the content and the previous row's hash. Rows
chained before the sealer existed had their id as their position (``seq = id``), and the
digest puts the position where it used to put the id, so their hashes stay valid.

The request id (migration 0013) is hashed too, when a row has one: it is what links the row
to the request's log line, and a link an intruder could rewrite proves nothing. A row without
one (written outside a request, or before 0013) hashes exactly as before, so the rows chained
earlier stay valid.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from telemed.audit.models import AuditEntry

GENESIS_HASH = "0" * 64


def row_digest(entry: AuditEntry, seq: int, prev_hash: str) -> str:
    """SHA-256 over the row's position, its content and the previous row's hash."""
    content = [
        seq,
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
        prev_hash,
    ]
    if entry.request_id is not None:
        content.append(entry.request_id)
    canonical = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Link:
    """What the sealer writes into an unsealed row."""

    row_id: int
    seq: int
    prev_hash: str
    row_hash: str


def link(entries: Iterable[AuditEntry], head: tuple[int, str] | None) -> list[Link]:
    """Chain ``entries``, in the order given, after ``head`` (position, hash)."""
    last_seq, last_hash = head if head else (0, GENESIS_HASH)
    links = []
    for entry in entries:
        if entry.id is None:
            raise ValueError("only stored rows can be chained")
        last_seq += 1
        digest = row_digest(entry, last_seq, last_hash)
        links.append(Link(entry.id, last_seq, last_hash, digest))
        last_hash = digest
    return links


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    problem: str
    row_id: int | None = None  # the row's id, named when it differs from its position

    def __str__(self) -> str:
        where = f"audit row {self.seq}"
        if self.row_id is not None and self.row_id != self.seq:
            where += f" (id {self.row_id})"
        return f"{where}: {self.problem}"


def verify(entries: Iterable[AuditEntry]) -> tuple[int, ChainBreak | None]:
    """Walk sealed rows in ``seq`` order; return how many were checked and the first break."""
    expected_prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    for entry in entries:
        seq = entry.seq
        if seq is None:
            raise ValueError("verify walks sealed rows only")
        if seq != expected_seq:
            problem = (
                f"expected row {expected_seq} next, found row {seq}: "
                f"row(s) {expected_seq}..{seq - 1} removed"
                if seq > expected_seq
                else f"row {seq} out of order (inserted)"
            )
            return checked, ChainBreak(seq, problem, entry.id)
        if entry.prev_hash != expected_prev:
            return checked, ChainBreak(
                seq,
                "previous-hash link broken (a row before it was removed or inserted)",
                entry.id,
            )
        if row_digest(entry, seq, expected_prev) != entry.row_hash:
            return checked, ChainBreak(seq, "content does not match its hash (altered)", entry.id)
        expected_prev = entry.row_hash
        expected_seq += 1
        checked += 1
    return checked, None
