"""``job_runs``: every run of a periodic job recorded, idle runs folded, failures kept with
their reason; what ``/metrics`` reads as last success and lag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from telemed.jobs import repository, run_job
from telemed.jobs.models import JobRun
from telemed.jobs.runs import Outcome, outcome_of, recorded
from telemed.settings import Settings
from telemed.uow import Units
from tests.helpers import ManualClock

T0 = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)


def runs_of(db: Session, job: str) -> list[JobRun]:
    db.rollback()
    return list(db.exec(select(JobRun).where(JobRun.job == job).order_by(col(JobRun.id))))


def test_each_run_is_recorded_and_idle_runs_fold_into_one_row(
    engine: Engine, db: Session, clock: ManualClock
) -> None:
    results: list[object] = [0, 0, 0, 3, None, 0]
    job = recorded(engine, clock, "sealer", lambda: results.pop(0))
    for run in range(6):  # every 2 s, as the sealer
        clock.set(T0 + timedelta(seconds=2 * run))
        job()
    rows = runs_of(db, "sealer")
    # idle x3 -> one row; 3 items -> its own row; idle x2 -> one row
    assert [(r.ok, r.items, r.runs) for r in rows] == [(True, 0, 3), (True, 3, 1), (True, 0, 2)]
    assert (rows[0].started_at, rows[0].finished_at) == (T0, T0 + timedelta(seconds=4))
    assert rows[1].started_at == T0 + timedelta(seconds=6)
    assert (rows[2].started_at, rows[2].finished_at) == (
        T0 + timedelta(seconds=8),
        T0 + timedelta(seconds=10),
    )


def test_a_failing_job_is_recorded_with_its_reason_and_still_raises(
    engine: Engine, db: Session, clock: ManualClock
) -> None:
    clock.set(T0)

    def broken() -> int:
        raise RuntimeError("smtp relay unreachable")

    with pytest.raises(RuntimeError, match="unreachable"):  # the runner counts it too
        recorded(engine, clock, "mailer", broken)()
    [row] = runs_of(db, "mailer")
    assert (row.ok, row.items) == (False, 0)
    assert row.error == "RuntimeError: smtp relay unreachable"


def test_a_body_failing_inside_run_job_fails_the_run_but_not_the_next_body(
    engine: Engine, settings: Settings, db: Session, clock: ManualClock
) -> None:
    clock.set(T0)
    done: list[datetime] = []

    def first(units: Units, _settings: Settings, now: datetime) -> int:
        raise ValueError("bad row")

    def second(units: Units, _settings: Settings, now: datetime) -> list[int]:
        done.append(now)
        return [1, 2]

    job = recorded(
        engine, clock, "care", partial(run_job, engine, settings, clock, "care", first, second)
    )
    job()
    assert done == [T0]
    [row] = runs_of(db, "care")
    assert (row.ok, row.items) == (False, 2)
    assert row.error == "first: ValueError: bad row"


def test_health_gives_last_success_and_the_latest_run_per_job(
    engine: Engine, db: Session, clock: ManualClock
) -> None:
    answers: list[object] = [5, RuntimeError("down")]

    def flaky() -> object:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    job = recorded(engine, clock, "deliveries", flaky)
    clock.set(T0)
    job()
    clock.set(T0 + timedelta(minutes=1))
    with pytest.raises(RuntimeError):
        job()
    clock.set(T0 + timedelta(minutes=2))
    recorded(engine, clock, "offers", lambda: Outcome(2))()
    db.rollback()
    health = {h.job: h for h in repository.health(db)}
    assert set(health) == {"deliveries", "offers"}
    deliveries = health["deliveries"]
    assert deliveries.last_success == T0
    assert deliveries.last_finished == T0 + timedelta(minutes=1)
    assert (deliveries.last_ok, deliveries.failures) == (False, 1)
    assert (health["offers"].last_success, health["offers"].last_ok) == (
        T0 + timedelta(minutes=2),
        True,
    )


@pytest.mark.parametrize(
    ("result", "items"),
    [(None, 0), (True, 0), (7, 7), ([1, 2, 3], 3), ({"a": 1}, 1), (Outcome(4, ["x"]), 4)],
)
def test_what_a_job_returns_counts_as_its_items(result: object, items: int) -> None:
    assert outcome_of(result).items == items
