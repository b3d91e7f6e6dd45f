"""The scheduler's leader lock on SQLite: a lease in the database.

On PostgreSQL the leader holds a session-level advisory lock (``scheduling.runner``). SQLite
has none, and ``telemed serve`` beside ``telemed scheduler`` (or two of either) once ran
every job twice. Here the leader holds the row ``scheduler_leases('scheduler')`` until
``expires_at``, and renews it at each of the runner's checks (every
``standby_poll_seconds``); the lease lasts ``LEASE_POLLS`` checks, so a leader that misses one
renewal (a busy disk) keeps it, and one that died (even ``kill -9``) frees it at most that
long after its last renewal. A standby takes an expired lease in one conditional
``UPDATE``, in a transaction that holds SQLite's write lock, so two standbys never both
succeed. A leader that finds the row held by another (it was too slow to renew) steps down.

Jobs stay idempotent by database state: a leader that lost its lease may finish the run it
is in while the next leader starts.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine, insert, update
from sqlalchemy.exc import SQLAlchemyError

from telemed.db import sqlite_begin, utcnow
from telemed.jobs.models import SchedulerLease

log = logging.getLogger(__name__)

LEASE_NAME = "scheduler"
LEASE_POLLS = 3  # a lease lasts this many of the runner's checks


class LeaseLock:
    """A ``scheduling.runner.LeaderLock`` kept as a row of ``scheduler_leases``."""

    def __init__(
        self,
        engine: Engine,
        poll_seconds: float,
        *,
        name: str = LEASE_NAME,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._engine = sqlite_begin(engine, immediate=True)
        self.name = name
        self.duration = timedelta(seconds=poll_seconds * LEASE_POLLS)
        self.holder = f"{socket.gethostname()} pid {os.getpid()} {secrets.token_hex(4)}"
        self._now = now
        self._held = False

    def _claim(self, *, take_expired: bool) -> bool:
        """Extend the lease if this runner holds it (or take it, expired, from another)."""
        now = self._now()
        table = SchedulerLease.__table__  # type: ignore[attr-defined]
        mine = table.c.holder == self.holder
        condition = (mine | (table.c.expires_at < now)) if take_expired else mine
        with self._engine.begin() as connection:  # BEGIN IMMEDIATE: one claimant at a time
            claimed = connection.execute(
                update(table)
                .where(table.c.name == self.name, condition)
                .values(holder=self.holder, expires_at=now + self.duration)
            ).rowcount
            if not claimed and take_expired:
                claimed = connection.execute(
                    insert(table)
                    .prefix_with("OR IGNORE")
                    .values(name=self.name, holder=self.holder, expires_at=now + self.duration)
                ).rowcount
        return bool(claimed)

    def try_acquire(self) -> bool:
        self._held = self._attempt(take_expired=True)
        return self._held

    def still_held(self) -> bool:
        self._held = self._held and self._attempt(take_expired=False)
        return self._held

    def _attempt(self, *, take_expired: bool) -> bool:
        """``_claim``; a database error is logged and means "not held"."""
        try:
            return self._claim(take_expired=take_expired)
        except SQLAlchemyError as exc:
            log.warning(
                "cannot %s the scheduler lease: %s", "take" if take_expired else "renew", exc
            )
            return False

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        table = SchedulerLease.__table__  # type: ignore[attr-defined]
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    update(table)
                    .where(table.c.name == self.name, table.c.holder == self.holder)
                    .values(expires_at=self._now())
                )
        except SQLAlchemyError:  # it expires on its own
            log.debug("releasing the scheduler lease failed", exc_info=True)
