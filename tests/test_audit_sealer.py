"""The audit sealer: writers insert unsealed rows without any lock, one sealer chains them.

What must hold (docs/architecture.md, "Audit trail"): no writer waits for another's
transaction; the chain does not depend on the order transactions commit in; a crash
loses nothing that was committed; two sealers at once still make one chain (and a sealing
that skipped the lock fails rather than forking it)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, bindparam, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select

from telemed.audit import chain, repository, service
from telemed.audit.models import AuditAction, AuditEntry
from telemed.audit.sealer import seal_batch, seal_pending
from telemed.db import UTCDateTime, utcnow
from tests.process_helpers import join_all, read_line

ROOT = Path(__file__).resolve().parents[1]


def write(session: Session, detail: str, object_id: int = 1) -> None:
    """An audit row as every clinical write records it (unsealed, in its transaction)."""
    service.record(session, None, AuditAction.create, "consult", object_id, detail=detail)


def rows(engine: Engine) -> list[AuditEntry]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEntry).order_by(col(AuditEntry.id))))


def report(engine: Engine) -> service.ChainReport:
    with Session(engine) as session:
        return service.verify(session)


def advisory_locks(engine: Engine, pids: list[int]) -> int:
    """Advisory locks held by these backends (seen from another connection)."""
    with engine.connect() as watcher:
        found = watcher.execute(
            text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = ANY(:p)"),
            {"p": pids},
        ).scalar_one()
    return int(found)


# Two writers at once in one database: SQLite has a single writer, so PostgreSQL only.
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_writers_hold_no_chain_lock_and_commit_order_does_not_matter(
    backend: str, engine: Engine
) -> None:
    """Two transactions each hold an audit row uncommitted; neither holds an advisory
    lock, neither waits for the other (the old chain lock made the second wait for the
    first's commit, and with this lock_timeout fail), and they commit in the opposite order
    to their inserts: each row is chained when it becomes visible, in one valid chain."""
    with Session(engine) as first, Session(engine) as second:
        for session in (first, second):
            session.execute(text("SET LOCAL lock_timeout = '5s'"))
        write(first, "inserted first, committed second")
        write(second, "inserted second, committed first")
        pids = [s.execute(text("SELECT pg_backend_pid()")).scalar_one() for s in (first, second)]
        assert advisory_locks(engine, pids) == 0
        second.commit()
        # The sealer does not wait for the open transaction either: it seals what is
        # committed, and the open transaction's row later.
        assert seal_pending(engine) == 1
        write(first, "written while the sealer holds its lock")
        with Session(engine) as sealer:
            assert seal_batch(sealer) == 0  # holds the sealer's lock until it ends
            sealer_pid = sealer.execute(text("SELECT pg_backend_pid()")).scalar_one()
            assert advisory_locks(engine, [sealer_pid]) == 1
            with Session(engine) as writer:
                writer.execute(text("SET LOCAL lock_timeout = '5s'"))
                write(writer, "committed while the sealer holds its lock")
                writer.commit()
            sealer.commit()
        assert seal_pending(engine) == 1
        first.commit()
    assert seal_pending(engine) == 2
    found = rows(engine)
    assert [(e.detail, e.seq) for e in found] == [
        ("inserted first, committed second", 3),
        ("inserted second, committed first", 1),
        ("written while the sealer holds its lock", 4),
        ("committed while the sealer holds its lock", 2),
    ]
    assert report(engine) == service.ChainReport(4, None, 0, None)


def test_rows_are_chained_in_the_order_they_become_visible(engine: Engine) -> None:
    """What PostgreSQL does with a late commit, on both databases: a row with a lower id
    committed after a higher one was sealed takes the next position."""
    with Session(engine) as session:
        for row_id in (10, 5):
            session.execute(
                text(
                    "INSERT INTO audit_log (id, at, actor_role, action, object_type, object_id,"
                    " client_address, detail) VALUES (:id, :at, 'system', 'read', 'consult',"
                    " '1', '', '')"
                ).bindparams(bindparam("at", utcnow(), type_=UTCDateTime())),
                {"id": row_id},
            )
            session.commit()
            assert seal_pending(engine) == 1
    assert [(e.id, e.seq) for e in rows(engine)] == [(5, 2), (10, 1)]
    assert report(engine) == service.ChainReport(2, None, 0, None)


WRITER_THEN_CRASH = """
import sys, time
from sqlmodel import Session
from telemed.audit import service
from telemed.audit.models import AuditAction
from telemed.audit.sealer import seal_batch
from telemed.db import make_engine

engine = make_engine(sys.argv[1])
with Session(engine) as session:
    for n in range(3):
        service.record(session, None, AuditAction.create, "consult", n, detail="acknowledged")
    session.commit()
print("committed", flush=True)
session = Session(engine)
if sys.argv[2] == "writer":
    service.record(session, None, AuditAction.create, "consult", 9, detail="never committed")
    session.flush()
else:
    print("sealed", seal_batch(session), "uncommitted", flush=True)
print("open", flush=True)
time.sleep(600)
"""


@pytest.fixture
def crashing(engine: Engine) -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


@pytest.mark.parametrize("who", ["writer", "sealer"])
def test_a_crash_before_sealing_loses_nothing_committed(
    engine: Engine, crashing: list[subprocess.Popen[str]], who: str
) -> None:
    """A process commits three rows, then is killed (SIGKILL) in the middle of a write or
    of a sealing: the three committed rows stay, unsealed, and the next sealer chains them;
    the row of the write that never committed was never acknowledged, and is gone."""
    url = engine.url.render_as_string(hide_password=False)
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER_THEN_CRASH, url, who],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    crashing.append(process)
    assert read_line(process, 60, "the commit") == "committed\n"
    if who == "sealer":
        assert read_line(process, 60, "the sealing") == "sealed 3 uncommitted\n"
    assert read_line(process, 60, "the open transaction") == "open\n"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)

    before = report(engine)
    assert (before.sealed, before.broken, before.unsealed) == (0, None, 3)
    assert seal_pending(engine) == 3
    assert report(engine) == service.ChainReport(3, None, 0, None)
    assert [e.detail for e in rows(engine)] == ["acknowledged"] * 3


def test_two_sealers_at_once_make_one_chain(engine: Engine) -> None:
    """Two sealers start together (a barrier) while a writer keeps committing rows; they
    take turns through the sealer's lock, in small batches: every row is sealed exactly
    once, at positions 1..n, in one valid chain."""
    with Session(engine) as session:
        for n in range(60):
            write(session, f"before {n}")
        session.commit()
    barrier = threading.Barrier(3)
    finished = threading.Event()
    sealed: list[int] = []
    errors: list[BaseException] = []

    def sealer() -> None:
        try:
            barrier.wait(timeout=30)
            while not finished.is_set():
                sealed.append(seal_pending(engine, batch=7))
                finished.wait(0.005)  # pacing only: the writer gets the database too
            sealed.append(seal_pending(engine, batch=7))
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    def writer() -> None:
        try:
            barrier.wait(timeout=30)
            for n in range(40):
                with Session(engine) as session:
                    write(session, f"during {n}")
                    session.commit()
        except BaseException as exc:  # reported by the test below
            errors.append(exc)
        finally:
            finished.set()

    threads = [threading.Thread(target=f, name=f.__name__) for f in (sealer, sealer, writer)]
    for thread in threads:
        thread.start()
    join_all(threads, 120, "two sealers and a writer")
    assert errors == []
    sealed.append(seal_pending(engine))  # anything committed after the sealers' last look
    assert sum(sealed) == 100
    found = rows(engine)
    assert sorted(e.seq or 0 for e in found) == list(range(1, 101))
    assert report(engine) == service.ChainReport(100, None, 0, None)


def test_a_sealing_that_skips_the_lock_fails_rather_than_forks(engine: Engine) -> None:
    """A second sealer that read the head and the rows before the first committed (as it
    would without the lock) cannot write its links: the rows are sealed already (trigger),
    and a position already given cannot be given again (unique ``seq``)."""
    with Session(engine) as session:
        for n in range(3):
            write(session, f"row {n}")
        session.commit()
    with Session(engine) as stale:
        late_links = chain.link(repository.unsealed(stale, 10), repository.head(stale))
    assert seal_pending(engine) == 3

    with Session(engine) as session, pytest.raises(DBAPIError, match="append-only"):
        repository.seal(session, late_links)
    with Session(engine) as session:
        write(session, "a new row")
        session.commit()
    with Session(engine) as session:
        [new] = repository.unsealed(session, 10)
        forked = chain.link([new], None)  # position 1 again, after the genesis hash
        with pytest.raises(DBAPIError, match=r"(?i)unique"):
            repository.seal(session, forked)
    assert seal_pending(engine) == 1
    assert report(engine) == service.ChainReport(4, None, 0, None)
