"""The periodic jobs (telemed.jobs): wiring on both backends, and a failover between two
`telemed scheduler` processes on PostgreSQL in which nothing is processed twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, col, select, update

from telemed.accounts.models import Role, User
from telemed.appointments.models import Appointment
from telemed.audit import service as audit
from telemed.consults.models import ConsultEvent
from telemed.db import utcnow
from telemed.jobs import APPLICATION_NAME, SCHEDULER_LOCK_KEY, build_runner
from telemed.jobs import repository as job_runs
from telemed.offers.models import ConsultOffer, OfferStatus
from telemed.settings import Settings
from tests.conftest import LoginFn
from tests.directory_helpers import Specialists, offers_of
from tests.helpers import Users, consult_payload
from tests.notification_helpers import SmtpServer

TIMEOUT = 60.0


def wait_for(condition: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def audit_report(engine: Engine) -> audit.ChainReport:
    with Session(engine) as session:
        return audit.verify(session)


def expiry_events(db: Session, consult_id: int) -> list[ConsultEvent]:
    db.rollback()
    return list(
        db.exec(
            select(ConsultEvent).where(
                ConsultEvent.consult_id == consult_id,
                col(ConsultEvent.reason).startswith("offer expired"),
            )
        )
    )


def consult_with_an_expired_offer(
    db: Session, settings: Settings, users: Users, login: LoginFn
) -> int:
    """A requested consult offered to one of two eligible specialists, the offer's time
    already past: the offers job must expire it and offer the other specialist, once."""
    specialists = Specialists(db, settings, users)
    specialists.count = 10  # e-mail addresses apart from other specialists of the test
    specialists.make()
    specialists.make()
    nurse = login(users.make(Role.clinician))
    consult_id = int(nurse.post("/api/v1/consults", consult_payload()).json()["id"])
    [offer] = offers_of(db, consult_id)
    assert offer.status == OfferStatus.open
    db.exec(
        update(ConsultOffer)
        .where(col(ConsultOffer.id) == offer.id)
        .values(expires_at=utcnow() - timedelta(minutes=1))
    )
    db.commit()
    return consult_id


def appointment_in_ten_minutes(
    db: Session, specialists: Specialists, users: Users, login: LoginFn
) -> tuple[User, User]:
    """A booked video consult moved to start in ten minutes: its 15-minute reminder is due.
    Returns the clinician and the specialist."""
    specialist = specialists.make(specialty="internal_medicine")
    nurse = login(users.make(Role.clinician))
    payload = consult_payload(mode="video", specialty="internal_medicine")
    consult_id = int(nurse.post("/api/v1/consults", payload).json()["id"])
    [offer] = offers_of(db, consult_id)
    doctor = login(specialist)
    assert doctor.post(f"/api/v1/offers/{offer.id}/accept").status_code == 200
    db.rollback()
    appointment = db.exec(select(Appointment).where(Appointment.consult_id == consult_id)).one()
    start = (utcnow() + timedelta(minutes=10)).replace(microsecond=0)
    moved = doctor.post(
        f"/api/v1/appointments/{appointment.id}/reschedule",
        {"starts_at": start.isoformat(), "reason": "earlier suits both"},
    )
    assert moved.status_code == 200, moved.text
    return nurse.user, specialist


def assert_processed_once(db: Session, consult_id: int) -> None:
    made = offers_of(db, consult_id)
    assert [o.status for o in made] == [OfferStatus.expired, OfferStatus.open]
    assert made[0].specialist_id != made[1].specialist_id
    assert len(expiry_events(db, consult_id)) == 1


def test_the_runner_runs_the_jobs_on_each_backend(
    engine: Engine, settings: Settings, db: Session, users: Users, login: LoginFn
) -> None:
    consult_id = consult_with_an_expired_offer(db, settings, users, login)
    roles: list[bool] = []
    runner = build_runner(engine, settings, on_change=roles.append)
    jobs = [
        "offers",
        "expire_uploads",
        "deliveries",
        "appointments",
        "care",
        "dhis2",
        "backup",
        "uptake_rollup",
        "audit_seal",
    ]
    assert runner.job_ids == jobs
    runner.start()
    try:
        assert runner.is_leader
        assert wait_for(lambda: all(runner.runs[job] >= 1 for job in jobs))
        assert runner.failures == dict.fromkeys(jobs, 0)
        # Every run is recorded for /metrics (telemed.jobs.runs), successful.
        with Session(engine) as session:
            health = {h.job: h for h in job_runs.health(session)}
        assert sorted(health) == sorted(jobs)
        assert all(h.last_ok and h.last_success is not None for h in health.values())
        # The audit rows of the requests and of the offers job get sealed into the chain.
        assert wait_for(lambda: audit_report(engine).unsealed == 0)
        sealed = audit_report(engine)
        assert sealed.broken is None
        assert sealed.sealed > 0
    finally:
        runner.stop()
    assert roles == [True]
    assert_processed_once(db, consult_id)


class Scheduler:
    """A `python -m telemed scheduler -v` process; its output goes to a file."""

    def __init__(
        self, name: str, tmp_path: Path, database_url: str, smtp: SmtpServer | None = None
    ) -> None:
        self.log = tmp_path / f"{name}.log"
        env = {
            **os.environ,
            "TELEMED_DATABASE_URL": database_url,
            "TELEMED_DATA_DIR": str(tmp_path / name),
            "TELEMED_ENV": "test",
            "TELEMED_PASSWORD_HASHING": "light",
            "TELEMED_SCHEDULER_STANDBY_POLL_SECONDS": "0.5",
            "PYTHONUNBUFFERED": "1",
        }
        if smtp is not None:
            env |= {
                "TELEMED_SMTP_HOST": smtp.host,
                "TELEMED_SMTP_PORT": str(smtp.port),
                "TELEMED_SMTP_STARTTLS": "false",
            }
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "telemed", "scheduler", "-v"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=Path(__file__).parent.parent,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def output(self) -> str:
        return self.log.read_text()

    def says(self, fragment: str) -> bool:
        return fragment in self.output

    def offers_runs(self) -> int:
        return self.output.count("job offers done")

    def runs_of(self, job: str) -> int:
        return self.output.count(f"job {job} done")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def schedulers() -> Iterator[list[Scheduler]]:
    started: list[Scheduler] = []
    yield started
    for scheduler in started:
        scheduler.kill()


def lock_holders(engine: Engine) -> list[str]:
    """application_name of each session holding the scheduler's advisory lock."""
    key = SCHEDULER_LOCK_KEY
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT a.application_name FROM pg_locks l"
                " JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
                " AND l.classid = :hi AND l.objid = :lo"
                " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            {"hi": key >> 32, "lo": key & 0xFFFFFFFF},
        ).all()
    return [str(r[0]) for r in rows]


def leader_pid(engine: Engine) -> int | None:
    holders = lock_holders(engine)
    if len(holders) != 1 or not holders[0].startswith(f"{APPLICATION_NAME} pid "):
        return None
    return int(holders[0].rsplit(" ", 1)[1])


# Leader election is a PostgreSQL matter (SQLite has one process): no SQLite variant.
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_the_standby_takes_over_and_nothing_is_processed_twice(
    backend: str,
    engine: Engine,
    settings: Settings,
    db: Session,
    users: Users,
    login: LoginFn,
    tmp_path: Path,
    schedulers: list[Scheduler],
    smtp_server: SmtpServer,
) -> None:
    """Also: the 15-minute reminders of an appointment reach the SMTP server once each."""
    consult_id = consult_with_an_expired_offer(db, settings, users, login)
    nurse, specialist = appointment_in_ten_minutes(
        db, Specialists(db, settings, users), users, login
    )
    url = engine.url.render_as_string(hide_password=False)
    schedulers.extend(Scheduler(name, tmp_path, url, smtp_server) for name in ("one", "two"))
    by_pid = {s.pid: s for s in schedulers}

    assert wait_for(lambda: leader_pid(engine) in by_pid), [s.output for s in schedulers]
    leader = by_pid[leader_pid(engine) or 0]
    [standby] = [s for s in schedulers if s is not leader]
    assert wait_for(lambda: leader.says("Scheduler is leader")), leader.output
    assert wait_for(lambda: standby.says("Scheduler on standby")), standby.output
    assert wait_for(lambda: leader.offers_runs() >= 1), leader.output
    assert_processed_once(db, consult_id)
    assert not standby.says("Scheduler is leader")

    def reminders() -> list[str]:
        return [str(m["To"]) for m in smtp_server.messages if "Reminder" in str(m["Subject"])]

    assert wait_for(lambda: len(reminders()) == 2), leader.output

    os.kill(leader.pid, signal.SIGKILL)
    leader.process.wait(timeout=10)
    assert wait_for(lambda: leader_pid(engine) == standby.pid), standby.output
    assert wait_for(lambda: standby.says("Scheduler is leader")), standby.output
    assert wait_for(lambda: standby.offers_runs() >= 1), standby.output
    for job in ("appointments", "deliveries"):
        runs = standby.runs_of(job)
        assert wait_for(lambda job=job, runs=runs: standby.runs_of(job) >= runs + 1)
    assert_processed_once(db, consult_id)  # the new leader found nothing left to do
    assert sorted(reminders()) == sorted([nurse.email, specialist.email])  # none twice
    assert "Traceback" not in standby.output

    standby.process.send_signal(signal.SIGTERM)
    assert standby.process.wait(timeout=30) == 0, standby.output
    assert standby.says("Scheduler stopped.")
    assert lock_holders(engine) == []


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("enabled", [True, False])
def test_serve_runs_the_scheduler_unless_disabled(enabled: bool, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    env = {
        **os.environ,
        "TELEMED_DATA_DIR": str(tmp_path / "data"),
        "TELEMED_SCHEDULER_ENABLED": str(enabled).lower(),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("TELEMED_DATABASE_URL", None)
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "telemed", "serve", "--no-demo", "--port", str(free_port())],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        assert wait_for(lambda: "Application startup complete" in log.read_text()), log.read_text()
        assert ("Scheduler is leader" in log.read_text()) is enabled
        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=30)  # uvicorn ends by re-raising SIGTERM: -15 or 143
        assert status in (0, -signal.SIGTERM, 128 + signal.SIGTERM), log.read_text()
        assert ("Scheduler stopped." in log.read_text()) is enabled
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
