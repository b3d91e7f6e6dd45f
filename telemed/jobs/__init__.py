"""The periodic jobs of the product, registered on a ``scheduling.runner.LeaderRunner``.

Only the registration lives here: each job's body is beside its domain
(``appointments.jobs``, ``sessions.jobs``, ``notes.jobs``, ``offers.jobs``,
``directory.jobs``, ...) and changes state through that domain's service.

Runs inside ``telemed serve`` (unless ``TELEMED_SCHEDULER_ENABLED=false``) and standalone
as ``telemed scheduler``. Exactly one process is leader: on PostgreSQL it holds a
session-level advisory lock on a connection opened for it alone (outside the request pool),
on SQLite a lease in the database (``telemed.jobs.lease``). Every job is idempotent by
database state, so a run repeated by the next leader after a failover changes nothing.

Every run is recorded in ``job_runs`` (``telemed.jobs.runs``), for ``/metrics``.

The runner owns the transactions: it hands each job body ``Units`` of work on the engine,
and the body does each item of its batch in a unit of its own (``units.item``), so one bad
item is rolled back and logged and the rest go on. Bodies never commit.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Engine

from scheduling.runner import AdvisoryLock, LeaderLock, LeaderRunner
from telemed.appointments.jobs import send_reminders
from telemed.attachments.uploads import expire_stale_uploads
from telemed.audit.sealer import SEAL_EVERY, seal_pending
from telemed.backup.jobs import daily_backup
from telemed.clock import SYSTEM_CLOCK, Clock
from telemed.directory.jobs import reverification_reminders
from telemed.interop.dhis2.jobs import monthly_push
from telemed.jobs.lease import LeaseLock
from telemed.jobs.runs import Outcome, outcome_of, recorded
from telemed.notes.jobs import follow_ups_due
from telemed.notifications.service import deliver_due
from telemed.offers.jobs import daily_digest
from telemed.offers.policy import OfferPolicy
from telemed.offers.service import DueReport, process_due_offers
from telemed.sessions.jobs import mark_no_shows
from telemed.settings import Settings
from telemed.uow import Units
from telemed.uptake.jobs import refresh_rollup
from telemed.uptake.rollup import REFRESH_EVERY as UPTAKE_EVERY

log = logging.getLogger(__name__)

# The advisory lock key of the scheduler leader: b"telemed" as a (positive) 64-bit integer.
SCHEDULER_LOCK_KEY = int.from_bytes(b"telemed", "big")
APPLICATION_NAME = "telemed-scheduler"  # pg_stat_activity.application_name of the lock
OFFERS_EVERY = timedelta(seconds=30)
UPLOADS_EVERY = timedelta(hours=1)
DELIVERIES_EVERY = timedelta(seconds=15)
APPOINTMENTS_EVERY = timedelta(minutes=1)  # 15-minute reminders and no-shows on time
CARE_EVERY = timedelta(minutes=15)  # follow-ups, the daily digest, re-verification
DHIS2_EVERY = timedelta(minutes=1)  # requested months, and last month from the 2nd
BACKUP_EVERY = timedelta(hours=1)  # one archive a day; a failed day is tried again

# A job body: its units of work at ``now``, idempotent by database state.
JobBody = Callable[[Units, Settings, datetime], object]


def run_due_offers(engine: Engine, policy: OfferPolicy, clock: Clock = SYSTEM_CLOCK) -> Outcome:
    """Expire overdue offers, move their consults on, offer waiting consults."""
    report = process_due_offers(Units(engine), clock.now(), policy)
    if report.expired or report.offered or report.escalated or report.failed:
        log.info(
            "offers: %d expired, %d consult(s) offered, %d escalated, %d failed",
            len(report.expired),
            len(report.offered),
            len(report.escalated),
            len(report.failed),
        )
    return _offers_outcome(report)


def _offers_outcome(report: DueReport) -> Outcome:
    done = len(report.expired) + len(report.offered) + len(report.escalated)
    return Outcome(done, [f"consult {c} failed" for c in report.failed])


def run_expire_uploads(engine: Engine, settings: Settings, clock: Clock = SYSTEM_CLOCK) -> int:
    """Mark abandoned uploads expired and delete their partial files (one unit of work)."""
    with Units(engine).one() as session:
        return expire_stale_uploads(session, settings, clock.now())


def run_job(
    engine: Engine, settings: Settings, clock: Clock, name: str, *bodies: JobBody
) -> Outcome:
    """Run each body with units of work on ``engine`` at the clock's time; one failing body
    never stops the next (it is named in the outcome's errors)."""
    units = Units(engine)
    outcome = Outcome()
    for body in bodies:
        try:
            result = body(units, settings, clock.now())
        except Exception as exc:  # what its units of work did not catch (e.g. its first read)
            log.exception("job %s: %s failed", name, body.__name__)
            outcome.errors.append(f"{body.__name__}: {type(exc).__name__}: {exc}")
            continue
        if result:
            log.info("job %s: %s -> %s", name, body.__name__, result)
        outcome.items += outcome_of(result).items
    return outcome


def lock_connection_factory(engine: Engine) -> Callable[[], Any]:
    """Opens a new DB-API connection to ``engine``'s database, bypassing its pool, named
    ``telemed-scheduler pid N`` in ``pg_stat_activity``."""

    def connect() -> Any:
        cargs, cparams = engine.dialect.create_connect_args(engine.url)
        cparams.setdefault("connect_timeout", 10)
        cparams["application_name"] = f"{APPLICATION_NAME} pid {os.getpid()}"
        # Notice a vanished server or a cut network within about a minute.
        cparams.update(keepalives=1, keepalives_idle=30, keepalives_interval=10)
        cparams["keepalives_count"] = 3
        return engine.dialect.connect(*cargs, **cparams)

    return connect


def build_runner(
    engine: Engine,
    settings: Settings,
    *,
    on_change: Callable[[bool], None] | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> LeaderRunner:
    """The runner with every job registered (not started); each run reads "now" from
    ``clock``."""
    poll = settings.scheduler_standby_poll_seconds
    lock: LeaderLock
    if engine.dialect.name == "postgresql":
        lock = AdvisoryLock(lock_connection_factory(engine), SCHEDULER_LOCK_KEY)
    else:  # SQLite: a lease in the database, so that two processes never both run the jobs
        lock = LeaseLock(engine, poll)
    runner = LeaderRunner(lock, standby_poll_seconds=poll, on_change=on_change)

    def add(name: str, func: Callable[[], object], every: timedelta) -> None:
        runner.add_job(name, recorded(engine, clock, name, func), seconds=every)

    policy = OfferPolicy.from_settings(settings)
    add("offers", partial(run_due_offers, engine, policy, clock), OFFERS_EVERY)
    add("expire_uploads", partial(run_expire_uploads, engine, settings, clock), UPLOADS_EVERY)
    jobs: list[tuple[str, timedelta, tuple[JobBody, ...]]] = [
        ("deliveries", DELIVERIES_EVERY, (deliver_due,)),
        ("appointments", APPOINTMENTS_EVERY, (send_reminders, mark_no_shows)),
        ("care", CARE_EVERY, (follow_ups_due, daily_digest, reverification_reminders)),
        ("dhis2", DHIS2_EVERY, (monthly_push,)),
        ("backup", BACKUP_EVERY, (daily_backup,)),  # off without TELEMED_BACKUP_DIR
        ("uptake_rollup", UPTAKE_EVERY, (refresh_rollup,)),  # the dashboard's sums
    ]
    for name, every, bodies in jobs:
        add(name, partial(run_job, engine, settings, clock, name, *bodies), every)
    # Chains the audit rows writers inserted unsealed; its interval bounds how long a row
    # stays outside the chain (docs/architecture.md, "Audit trail").
    add("audit_seal", partial(seal_pending, engine), SEAL_EVERY)
    return runner
