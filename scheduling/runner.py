"""Periodic jobs with exactly one leader: an APScheduler 3 ``BackgroundScheduler`` that runs
only while its process holds a leader lock.

APScheduler 3 must never share a job store between processes, so every process keeps its
jobs in memory and only the leader schedules them. On PostgreSQL the leader holds a
session-level advisory lock (``pg_try_advisory_lock``) on a dedicated connection: the lock
lives exactly as long as that connection, so a leader that dies (even ``kill -9``) frees it,
and a standby polling every ``standby_poll_seconds`` takes over. The leader checks on each
poll that its connection still holds the lock and stops scheduling if it does not. Without a
lock (SQLite: one process) the runner is leader at once.

Jobs must be idempotent by database state: a leader that lost its lock may finish a run
while the next leader starts one. Each run catches and logs its exceptions; one failing run
never stops the runner.

This module imports no database library: ``AdvisoryLock`` talks to any DB-API connection
(e.g. psycopg) that the caller's factory opens.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger(__name__)

_UINT32 = 0xFFFFFFFF
_UINT64 = 0xFFFFFFFFFFFFFFFF


class LeaderLock(Protocol):
    """What the runner needs from a lock shared between processes."""

    def try_acquire(self) -> bool:
        """Take the lock without waiting; False if another process holds it (or no
        connection could be made)."""

    def still_held(self) -> bool:
        """True while this process still holds the lock (its connection is alive)."""

    def release(self) -> None:
        """Give the lock up (and close its connection); safe to call when not held."""


class AdvisoryLock:
    """A PostgreSQL session-level advisory lock on a connection of its own.

    ``connect`` opens a new DB-API connection that is used for nothing else (never one from
    the pool serving requests): closing it, or the process dying, releases the lock.
    """

    def __init__(self, connect: Callable[[], Any], key: int) -> None:
        if not -(2**63) <= key < 2**63:
            raise ValueError("an advisory lock key is a signed 64-bit integer")
        self._connect = connect
        self.key = key
        self._conn: Any = None
        self._held = False

    def _query(self, sql: str) -> Any:
        if self._conn is None:
            self._conn = self._connect()
        cursor = self._conn.cursor()
        try:
            cursor.execute(sql)
            row = cursor.fetchone()
        finally:
            cursor.close()
        self._conn.commit()  # never sit "idle in transaction" (the lock is session-level)
        return row[0] if row else None

    def _drop_connection(self) -> None:
        conn, self._conn, self._held = self._conn, None, False
        if conn is not None:
            try:
                conn.close()
            except Exception:  # already broken: nothing more to release
                log.debug("closing the lock connection failed", exc_info=True)

    def try_acquire(self) -> bool:
        try:
            self._held = bool(self._query(f"SELECT pg_try_advisory_lock({int(self.key)})"))
        except Exception as exc:
            log.warning("cannot try the scheduler lock: %s", exc)
            self._drop_connection()
        return self._held

    def still_held(self) -> bool:
        if not self._held:
            return False
        unsigned = self.key & _UINT64  # pg_locks shows a bigint key as two oid halves
        sql = (
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"  # noqa: S608 - integers only
            f" AND pid = pg_backend_pid() AND classid = {unsigned >> 32}"
            f" AND objid = {unsigned & _UINT32} AND objsubid = 1"
        )
        try:
            held = bool(self._query(sql))
        except Exception as exc:
            log.warning("lost the scheduler lock connection: %s", exc)
            self._drop_connection()
            return False
        if not held:
            self._drop_connection()
        return held

    def release(self) -> None:
        if self._held and self._conn is not None:
            try:
                self._query(f"SELECT pg_advisory_unlock({int(self.key)})")
            except Exception:  # closing the connection below releases it anyway
                log.debug("unlocking the scheduler lock failed", exc_info=True)
        self._drop_connection()


@dataclass(frozen=True)
class JobSpec:
    id: str
    func: Callable[[], object]
    trigger: Any  # an APScheduler 3 trigger
    run_at_start: bool


class LeaderRunner:
    """Registered jobs, scheduled only while this process is leader.

    ``lock=None`` means leader at once (SQLite: one process). ``on_change(is_leader)`` is
    called on every change of role, and once at start for the first role taken.
    """

    def __init__(
        self,
        lock: LeaderLock | None = None,
        *,
        standby_poll_seconds: float = 5.0,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        if standby_poll_seconds <= 0:
            raise ValueError("standby_poll_seconds must be positive")
        self._lock = lock
        self.standby_poll_seconds = standby_poll_seconds
        self._on_change = on_change
        self._jobs: dict[str, JobSpec] = {}
        self._scheduler: Any = None  # a running BackgroundScheduler while leader
        self._mutex = threading.RLock()
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None
        self._announced: bool | None = None
        self._started = False
        self.runs: dict[str, int] = {}  # completed runs per job id, failed or not
        self.failures: dict[str, int] = {}

    # -- registration ---------------------------------------------------------------------

    def add_job(
        self,
        job_id: str,
        func: Callable[[], object],
        *,
        seconds: float | timedelta | None = None,
        trigger: Any = None,
        run_at_start: bool = True,
    ) -> None:
        """Register ``func`` to run every ``seconds`` (or on an APScheduler ``trigger``);
        with ``run_at_start`` it also runs as soon as this process becomes leader."""
        if self._started:
            raise RuntimeError("register jobs before start()")
        if job_id in self._jobs:
            raise ValueError(f"job {job_id!r} already registered")
        if (seconds is None) == (trigger is None):
            raise ValueError("give exactly one of seconds and trigger")
        if seconds is not None:
            interval = seconds if isinstance(seconds, timedelta) else timedelta(seconds=seconds)
            if interval <= timedelta(0):
                raise ValueError("the interval must be positive")
            trigger = IntervalTrigger(seconds=interval.total_seconds(), timezone=UTC)
        self._jobs[job_id] = JobSpec(job_id, func, trigger, run_at_start)
        self.runs[job_id] = 0
        self.failures[job_id] = 0

    @property
    def job_ids(self) -> list[str]:
        return list(self._jobs)

    # -- life cycle -----------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        with self._mutex:
            return self._scheduler is not None

    def start(self) -> None:
        """Become leader at once without a lock; else try once now, then keep polling."""
        with self._mutex:
            if self._started:
                raise RuntimeError("the runner is already started")
            self._started = True
            self._stopping.clear()
        if self._lock is None:
            self._become_leader()
            return
        self._tick()
        self._monitor = threading.Thread(
            target=self._watch, name="scheduler-leader-watch", daemon=True
        )
        self._monitor.start()

    def stop(self, wait: bool = True) -> None:
        """Stop scheduling (waiting for running jobs if ``wait``) and release the lock."""
        self._stopping.set()
        monitor, self._monitor = self._monitor, None
        if monitor is not None:
            monitor.join()
        with self._mutex:
            scheduler, self._scheduler = self._scheduler, None
            if scheduler is not None:
                scheduler.shutdown(wait=wait)
            if self._lock is not None:
                self._lock.release()
            self._started = False

    # -- internals ------------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._stopping.wait(self.standby_poll_seconds):
            try:
                self._tick()
            except Exception:  # the watcher must outlive any surprise
                log.exception("scheduler leader check failed")

    def _tick(self) -> None:
        assert self._lock is not None
        with self._mutex:
            if self._stopping.is_set():
                return
            if self._scheduler is None:
                if self._lock.try_acquire():
                    self._become_leader()
                else:
                    self._announce(False)
            elif not self._lock.still_held():
                log.error("scheduler lock lost: stepping down to standby")
                self._step_down()

    def _become_leader(self) -> None:
        with self._mutex:
            scheduler = BackgroundScheduler(
                executors={"default": ThreadPoolExecutor(max(1, len(self._jobs)))},
                job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
                timezone=UTC,
                daemon=True,
            )
            now = datetime.now(UTC)
            for spec in self._jobs.values():
                extra = {"next_run_time": now} if spec.run_at_start else {}
                scheduler.add_job(
                    self._guarded(spec),
                    trigger=spec.trigger,
                    id=spec.id,
                    name=spec.id,
                    replace_existing=True,
                    **extra,
                )
            scheduler.start()
            self._scheduler = scheduler
            self._announce(True)

    def _step_down(self) -> None:
        with self._mutex:
            scheduler, self._scheduler = self._scheduler, None
            if scheduler is not None:
                scheduler.shutdown(wait=False)  # the lock is gone: schedule nothing more
            if self._lock is not None:
                self._lock.release()
            self._announce(False)

    def _announce(self, leader: bool) -> None:
        if self._announced is leader:
            return
        self._announced = leader
        log.info("scheduler is %s", "leader" if leader else "on standby")
        if self._on_change is not None:
            try:
                self._on_change(leader)
            except Exception:
                log.exception("scheduler on_change callback failed")

    def _guarded(self, spec: JobSpec) -> Callable[[], None]:
        def run() -> None:
            started = time.monotonic()
            try:
                spec.func()
            except Exception:  # one failing run never kills the runner
                self.failures[spec.id] += 1
                log.exception("job %s failed", spec.id)
            else:
                log.debug("job %s done in %.3f s", spec.id, time.monotonic() - started)
            finally:
                self.runs[spec.id] += 1

        run.__name__ = f"job_{spec.id}"
        return run
