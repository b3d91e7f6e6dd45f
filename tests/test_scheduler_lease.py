"""The scheduler's leader lease on SQLite (``telemed.jobs.lease``): ``telemed serve`` beside
``telemed scheduler`` once ran every job twice; now exactly one process is leader.

SQLite only: PostgreSQL's leader holds an advisory lock (tests/test_jobs.py)."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import Engine

from scheduling.runner import LeaderRunner
from telemed.db import make_engine
from telemed.jobs import build_runner
from telemed.jobs.lease import LEASE_POLLS, LeaseLock
from telemed.settings import Environment, Settings

T0 = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def sqlite_engine(sqlite_template: Path, tmp_path: Path) -> Iterator[Engine]:
    path = tmp_path / "telemed.sqlite3"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_one_holder_at_a_time_and_the_next_takes_over_once_released(
    sqlite_engine: Engine,
) -> None:
    first, second = LeaseLock(sqlite_engine, 5.0), LeaseLock(sqlite_engine, 5.0)
    assert first.try_acquire()
    assert not second.try_acquire()
    assert first.still_held()  # renewed
    assert not second.still_held()
    first.release()
    assert not first.still_held()
    assert second.try_acquire()
    assert not first.try_acquire()


def test_an_expired_lease_is_taken_over_and_its_old_holder_steps_down(
    sqlite_engine: Engine,
) -> None:
    clock = Clock()
    leader = LeaseLock(sqlite_engine, 5.0, now=clock)
    standby = LeaseLock(sqlite_engine, 5.0, now=clock)
    assert leader.try_acquire()
    clock.now = T0 + timedelta(seconds=5 * LEASE_POLLS - 1)  # not expired yet
    assert not standby.try_acquire()
    clock.now = T0 + timedelta(seconds=5 * LEASE_POLLS + 1)  # the leader stopped renewing
    assert standby.try_acquire()
    assert not leader.still_held()  # it finds the row taken, and stops scheduling
    assert standby.still_held()


def test_a_renewed_lease_does_not_expire(sqlite_engine: Engine) -> None:
    clock = Clock()
    leader = LeaseLock(sqlite_engine, 5.0, now=clock)
    standby = LeaseLock(sqlite_engine, 5.0, now=clock)
    assert leader.try_acquire()
    for _ in range(10):  # renewed at each of the runner's checks, every 5 s
        clock.now += timedelta(seconds=5)
        assert leader.still_held()
        assert not standby.try_acquire()


def test_two_runners_on_one_sqlite_database_run_each_job_once(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """What ``telemed serve`` and ``telemed scheduler`` side by side do: the second one is
    standby, and its jobs do not run."""
    ran: list[str] = []
    started = threading.Event()

    def job(name: str) -> None:
        ran.append(name)
        started.set()

    runners = []
    for name in ("serve", "scheduler"):
        runner = LeaderRunner(LeaseLock(sqlite_engine, 0.2), standby_poll_seconds=0.2)
        runner.add_job("tick", partial(job, name), seconds=3600)
        runners.append(runner)
    try:
        for runner in runners:
            runner.start()
        assert started.wait(30)
        assert [r.is_leader for r in runners] == [True, False]
    finally:
        for runner in runners:
            runner.stop()
    assert ran == ["serve"]


def test_build_runner_uses_the_lease_on_sqlite(sqlite_engine: Engine, tmp_path: Path) -> None:
    settings = Settings(
        env=Environment.test,
        data_dir=tmp_path / "data",
        database_url=sqlite_engine.url.render_as_string(hide_password=False),
    )
    first = build_runner(sqlite_engine, settings)
    second = build_runner(sqlite_engine, settings)
    assert isinstance(first._lock, LeaseLock)
    assert first._lock.try_acquire()
    assert not second._lock.try_acquire()  # type: ignore[union-attr]
    first._lock.release()
