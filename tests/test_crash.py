"""SIGKILL during concurrent writes, on both databases: nothing acknowledged is lost, and
the audit chain verifies afterwards (issue 13, reliability tests kept in the suite).

A real ``telemed serve`` takes consults and messages from several clinicians at once and
is killed with SIGKILL (no shutdown, no flush) while they write. A 2xx is the server's
promise that the write is durable (``telemed.deps.get_db`` commits before the response is
sent), so every consult and message acknowledged before the kill must be in the database
afterwards, exactly once, and ``telemed audit verify --seal`` must find the chain intact
(``--seal`` seals the rows the dead process had committed but not sealed yet). The server
is then started again on the same data and killed a second time: recovery (SQLite's WAL,
PostgreSQL's own) must leave a database that serves and verifies again.

What was sent but not acknowledged may or may not be there: the kill can land between the
commit and the response. Only the acknowledged writes are checked.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from telemed.cases.models import Case
from telemed.db import make_engine
from telemed.messages.models import Message
from telemed.settings import Settings
from tests.browser.conftest import free_port
from tests.helpers import PASSWORD, consult_payload
from tests.process_helpers import stop, wait_healthy
from tests.serve_helpers import make_clinicians, serve_env

WRITERS = 6
ACKNOWLEDGED_BEFORE_KILL = 30  # writes acknowledged, all writers together, before the kill
KILLS = 2


@dataclass
class Acks:
    """What the server acknowledged: patient references of consults, message bodies."""

    consults: dict[str, int] = field(default_factory=dict)  # patient_ref -> consult id
    messages: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    enough: threading.Event = field(default_factory=threading.Event)

    def count(self) -> int:
        return len(self.consults) + len(self.messages)


def _writer(base: str, email: str, acks: Acks, stop_writing: threading.Event) -> None:
    """Log in, then request consults and write on them until the server dies."""
    with httpx.Client(base_url=base, timeout=60, trust_env=False) as client:
        try:
            logged_in = client.post(
                "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
            )
        except httpx.HTTPError:
            return
        if logged_in.status_code != 200:
            return
        headers = {"X-CSRF-Token": logged_in.json()["csrf_token"]}
        while not stop_writing.is_set():
            ref = f"KILL-{uuid.uuid4().hex[:10]}"
            payload = consult_payload(case={"patient_ref": ref, "age_years": 3, "sex": "male"})
            try:
                created = client.post("/api/v1/consults", json=payload, headers=headers)
                if created.status_code != 201:
                    continue
                consult_id = created.json()["id"]
                with acks.lock:
                    acks.consults[ref] = consult_id
                body = f"note {uuid.uuid4().hex}"
                said = client.post(
                    f"/api/v1/consults/{consult_id}/messages", json={"body": body}, headers=headers
                )
                if said.status_code == 201:
                    with acks.lock:
                        acks.messages.add(body)
            except httpx.HTTPError:
                return  # the server is gone
            if acks.count() >= ACKNOWLEDGED_BEFORE_KILL:
                acks.enough.set()


@dataclass
class Deployment:
    env: dict[str, str]
    url: str
    emails: list[str]
    log: Path


@pytest.fixture
def deployment(backend: str, settings: Settings, db: Session, tmp_path: Path) -> Deployment:
    emails = make_clinicians(db, settings, "crash", WRITERS)
    env = serve_env(settings, tmp_path)
    return Deployment(env, settings.sqlalchemy_url, emails, tmp_path / "serve.log")


def _serve(deployment: Deployment) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-m", "telemed", "serve", "--no-demo", "--port", str(port)]
    with deployment.log.open("ab") as out:
        process = subprocess.Popen(
            command, env=deployment.env, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    wait_healthy(process, base, deployment.log, 300)
    return process, base


def _write_and_kill(deployment: Deployment) -> Acks:
    process, base = _serve(deployment)
    acks = Acks()
    stop_writing = threading.Event()
    writers = [
        threading.Thread(target=_writer, args=(base, email, acks, stop_writing))
        for email in deployment.emails
    ]
    try:
        for writer in writers:
            writer.start()
        assert acks.enough.wait(timeout=240), f"only {acks.count()} writes acknowledged"
        os.kill(process.pid, signal.SIGKILL)  # mid-write: the writers are still sending
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        stop_writing.set()
        for writer in writers:
            writer.join(timeout=90)
        if process.poll() is None:
            stop(process)
    return acks


def _missing(url: str, acks: Acks) -> list[str]:
    """The acknowledged writes that are not in the database, or are there twice."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            refs = list(acks.consults)
            found = dict(
                session.exec(  # type: ignore[call-overload]
                    select(Case.patient_ref, func.count())
                    .where(Case.patient_ref.in_(refs))  # type: ignore[attr-defined]
                    .group_by(Case.patient_ref)
                ).all()
            )
            bodies = list(acks.messages)
            said = dict(
                session.exec(  # type: ignore[call-overload]
                    select(Message.body, func.count())
                    .where(Message.body.in_(bodies))  # type: ignore[attr-defined]
                    .group_by(Message.body)
                ).all()
            )
    finally:
        engine.dispose()
    return [f"consult for {r}: {found.get(r, 0)}" for r in refs if found.get(r) != 1] + [
        f"message {b!r}: {said.get(b, 0)}" for b in bodies if said.get(b) != 1
    ]


def _audit_verify(deployment: Deployment) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "telemed", "audit", "verify", "--seal"],
        env=deployment.env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.timeout(900)
def test_sigkill_during_concurrent_writes_loses_nothing_acknowledged(
    deployment: Deployment,
) -> None:
    for kill in range(1, KILLS + 1):
        acks = _write_and_kill(deployment)
        assert acks.count() >= ACKNOWLEDGED_BEFORE_KILL
        assert _missing(deployment.url, acks) == [], f"after kill {kill}"
        verified = _audit_verify(deployment)
        assert verified.returncode == 0, (kill, verified.stdout, verified.stderr)
        assert "Audit chain intact" in verified.stdout
