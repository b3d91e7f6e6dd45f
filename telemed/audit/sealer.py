"""The sealer: integrates committed, unsealed audit rows into the hash chain.

Writers insert their audit rows unsealed, in their own transaction and without any lock,
so no clinical write waits for another one's transaction (issue #9). The sealer alone
extends the chain: it takes the sealer's lock, reads the chain head and the committed
unsealed rows, and gives each its position (``seq``), the previous hash and its own hash.
A transaction that commits late simply has its rows sealed in a later batch: commit order
never matters, and nothing committed is ever left out.

It runs every ``SEAL_EVERY`` on the scheduler's leader (``telemed.jobs``; on SQLite, the one
process) and on demand (``telemed audit seal``). Were two sealers ever to run at once, the
second waits for the first's lock (PostgreSQL advisory lock; SQLite's write lock) and then
sees its rows sealed; and if the lock were bypassed, the database still refuses a second
sealing of a row (trigger) and a position given twice (unique ``seq``): a double sealing
fails, it never forks the chain.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from telemed.audit import chain, repository
from telemed.uow import Units

log = logging.getLogger(__name__)

SEAL_EVERY = timedelta(seconds=2)  # bounds how long a row stays unsealed (docs/architecture.md)
SEAL_BATCH = 2000
STALE_AFTER = timedelta(minutes=1)  # an unsealed row this old: the sealer is not running


def seal_batch(session: Session, limit: int = SEAL_BATCH) -> int:
    """Seal up to ``limit`` committed rows in this session's transaction; the caller
    commits (which also releases the sealer's lock). Returns how many were sealed."""
    repository.lock_sealer(session)
    rows = repository.unsealed(session, limit)
    if not rows:
        return 0
    links = chain.link(rows, repository.head(session))
    repository.seal(session, links)
    return len(links)


def seal_pending(engine: Engine, batch: int = SEAL_BATCH) -> int:
    """Seal every row committed before this call, one transaction per batch (so the lock
    is held briefly); returns how many were sealed."""
    units = Units(engine)
    total = 0
    while True:
        with units.one() as session:  # one unit of work per batch
            sealed = seal_batch(session, batch)
        total += sealed
        if sealed < batch:
            break
    if total:
        log.debug("audit: sealed %d rows", total)
    return total
