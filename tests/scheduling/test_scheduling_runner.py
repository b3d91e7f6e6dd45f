"""The leader runner: jobs run while leader, failures are contained, one leader on
PostgreSQL (session-level advisory lock), a standby takes over."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine

from scheduling.runner import AdvisoryLock, LeaderRunner

TIMEOUT = 15.0


def wait_for(condition: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


class Counter:
    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            self.value += 1


class WatchedLock:
    """A real advisory lock whose every ``try_acquire`` answer the test can read: each one is
    a poll at which a standby could have become leader."""

    def __init__(self, lock: AdvisoryLock) -> None:
        self.lock = lock
        self.key = lock.key
        self.answers: list[bool] = []

    def try_acquire(self) -> bool:
        got = self.lock.try_acquire()
        self.answers.append(got)
        return got

    def still_held(self) -> bool:
        return self.lock.still_held()

    def release(self) -> None:
        self.lock.release()


@pytest.fixture
def lock_factory(backend: str, engine: Engine) -> Callable[[], AdvisoryLock | None]:
    """SQLite: no lock (leader at once). PostgreSQL: advisory locks on one random key, each
    on a psycopg connection of its own."""
    key = random.randint(1, 2**62)
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def make() -> AdvisoryLock | None:
        if backend == "sqlite":
            return None
        return AdvisoryLock(lambda: psycopg.connect(url), key)

    return make


@pytest.fixture
def runners() -> Iterator[list[LeaderRunner]]:
    made: list[LeaderRunner] = []
    yield made
    for runner in made:
        runner.stop()


def admin_connection(engine: Engine) -> psycopg.Connection[Any]:
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(url, autocommit=True)


def holders(engine: Engine, key: int) -> list[int]:
    """Backend pids holding the advisory lock ``key``."""
    with admin_connection(engine) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = %s AND objid = %s AND objsubid = 1",
            (key >> 32, key & 0xFFFFFFFF),
        ).fetchall()
    return [r[0] for r in rows]


def test_jobs_run_while_leader_and_a_failing_run_never_stops_them(
    lock_factory: Callable[[], AdvisoryLock | None], runners: list[LeaderRunner]
) -> None:
    counter = Counter()

    def broken() -> None:
        raise RuntimeError("boom")

    roles: list[bool] = []
    runner = LeaderRunner(lock_factory(), standby_poll_seconds=0.1, on_change=roles.append)
    runners.append(runner)
    runner.add_job("count", counter, seconds=0.05)
    runner.add_job("broken", broken, seconds=0.05)
    assert not runner.is_leader
    runner.start()
    assert wait_for(lambda: runner.is_leader)  # alone: leader at once (or at the next poll)
    assert roles == [True]
    assert wait_for(
        lambda: (
            counter.value >= 3 and runner.failures["broken"] >= 3 and runner.runs["broken"] >= 3
        )  # a run is counted once it has finished
    )
    assert runner.failures["count"] == 0
    with pytest.raises(RuntimeError, match="before start"):
        runner.add_job("late", counter, seconds=1)
    with pytest.raises(RuntimeError, match="already started"):
        runner.start()
    runner.stop()
    assert not runner.is_leader


def test_a_slow_job_never_runs_twice_at_once(
    lock_factory: Callable[[], AdvisoryLock | None], runners: list[LeaderRunner]
) -> None:
    release = threading.Event()
    active = 0
    most = 0
    calls = 0
    guard = threading.Lock()

    def slow() -> None:
        nonlocal active, most, calls
        with guard:
            active += 1
            calls += 1
            most = max(most, active)
        release.wait(TIMEOUT)
        with guard:
            active -= 1

    runner = LeaderRunner(lock_factory(), standby_poll_seconds=0.1)
    runners.append(runner)
    runner.add_job("slow", slow, seconds=0.01)
    # Same interval, same start: every run of "tick" shows that the scheduler has reached
    # another due time of "slow" too (one pass handles every job due by then).
    ticks = Counter()
    runner.add_job("tick", ticks, seconds=0.01)
    runner.start()
    assert wait_for(lambda: calls >= 1)
    # Five more ticks while the first run blocks: its due times came, none started a run.
    seen = ticks.value
    assert wait_for(lambda: ticks.value >= seen + 5 or calls >= 2), "the scheduler stalled"
    assert calls == 1, "a second run started while the first was still running"
    release.set()
    assert wait_for(lambda: calls >= 3)  # and later runs go on (coalesced, one at a time)
    assert most == 1


def test_registration_is_checked() -> None:
    runner = LeaderRunner()
    with pytest.raises(ValueError, match="exactly one"):
        runner.add_job("x", Counter())
    with pytest.raises(ValueError, match="positive"):
        runner.add_job("x", Counter(), seconds=0)
    runner.add_job("x", Counter(), seconds=1)
    with pytest.raises(ValueError, match="already registered"):
        runner.add_job("x", Counter(), seconds=1)
    with pytest.raises(ValueError, match="positive"):
        LeaderRunner(standby_poll_seconds=0)
    with pytest.raises(ValueError, match="64-bit"):
        AdvisoryLock(lambda: None, 2**63)
    assert runner.job_ids == ["x"]


# Leader election is a PostgreSQL matter (SQLite has one process): no SQLite variant.
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_one_leader_then_the_standby_takes_over_when_it_goes(
    backend: str,
    engine: Engine,
    lock_factory: Callable[[], AdvisoryLock | None],
    runners: list[LeaderRunner],
) -> None:
    made = lock_factory(), lock_factory()
    assert made[0] is not None
    assert made[1] is not None
    first_lock, second_lock = WatchedLock(made[0]), WatchedLock(made[1])
    first_count, second_count = Counter(), Counter()
    first_roles: list[bool] = []
    second_roles: list[bool] = []
    first = LeaderRunner(first_lock, standby_poll_seconds=0.1, on_change=first_roles.append)
    second = LeaderRunner(second_lock, standby_poll_seconds=0.1, on_change=second_roles.append)
    runners.extend([first, second])
    first.add_job("count", first_count, seconds=0.05)
    second.add_job("count", second_count, seconds=0.05)
    first.start()
    second.start()
    assert first.is_leader
    assert not second.is_leader
    assert second_roles == [False]
    assert wait_for(lambda: first_count.value >= 3)
    assert second_count.value == 0
    assert len(holders(engine, first_lock.key)) == 1

    # The leader's lock connection dies (as when its server session is killed): it notices
    # on its next check and steps down; the standby takes the lock and runs the jobs.
    with admin_connection(engine) as conn:
        [pid] = holders(engine, first_lock.key)
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    assert wait_for(lambda: second.is_leader)
    assert wait_for(lambda: not first.is_leader)
    assert first_roles[:2] == [True, False]
    assert second_roles == [False, True]
    assert wait_for(lambda: second_count.value >= 3)
    stalled = first_count.value
    # The old leader polls the lock again and again, and each time it is refused.
    tried = len(first_lock.answers)
    assert wait_for(lambda: len(first_lock.answers) >= tried + 3)
    assert first_lock.answers[tried:] == [False] * (len(first_lock.answers) - tried)
    assert not first.is_leader
    assert first_count.value <= stalled + 1  # at most a run already under way
    assert len(holders(engine, first_lock.key)) == 1

    # A leader stopped cleanly releases the lock at once.
    second.stop()
    assert wait_for(lambda: first.is_leader)
    assert wait_for(lambda: first_count.value >= stalled + 3)
    first.stop()
    assert holders(engine, first_lock.key) == []
