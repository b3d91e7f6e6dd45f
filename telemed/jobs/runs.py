"""Recording each run of a periodic job in ``job_runs`` (``telemed.jobs.models``).

The runner (``scheduling.runner``) only logs and counts in memory; the row written here is
what ``/metrics`` turns into "last success" and "lag" per job, whichever process scrapes.
A run is recorded in a unit of work of its own, after the job's own units have committed:
a job that failed is recorded as failed, and a database too broken to record the run only
costs a log line (the job itself already did what it could).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sized
from dataclasses import dataclass, field

from sqlalchemy import Engine

from telemed.clock import Clock
from telemed.jobs import repository
from telemed.uow import Units

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What a job run did (``items``) and what went wrong without raising (``errors``: the
    bodies or items that failed while the rest went on)."""

    items: int = 0
    errors: list[str] = field(default_factory=list)


def outcome_of(result: object) -> Outcome:
    """A job's return value as an ``Outcome``: a count, something sized, or nothing."""
    if isinstance(result, Outcome):
        return result
    if isinstance(result, bool) or result is None:
        return Outcome()
    if isinstance(result, int):
        return Outcome(items=result)
    if isinstance(result, Sized):
        return Outcome(items=len(result))
    return Outcome(items=1)


def recorded(
    engine: Engine, clock: Clock, job: str, func: Callable[[], object]
) -> Callable[[], None]:
    """``func`` as the runner's job, with each run written to ``job_runs``. An exception is
    recorded and then re-raised, so the runner still logs and counts the failure."""
    units = Units(engine)

    def run() -> None:
        started = clock.now()
        failure: Exception | None = None
        try:
            outcome = outcome_of(func())
        except Exception as exc:
            failure = exc
            outcome = Outcome(errors=[f"{type(exc).__name__}: {exc}"])
        try:
            with units.one() as session:
                repository.record(
                    session,
                    job,
                    started_at=started,
                    finished_at=clock.now(),
                    ok=not outcome.errors,
                    items=outcome.items,
                    error="; ".join(outcome.errors),
                )
        except Exception:  # the job ran; only its record is lost
            log.exception("job %s: could not record the run", job)
        if failure is not None:
            raise failure

    run.__name__ = f"recorded_{job}"
    return run
