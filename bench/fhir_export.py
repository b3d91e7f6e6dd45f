"""Benchmark: the FHIR bulk export (``telemed fhir export``) of N consults.

Run from the repository root::

    python -m bench.fhir_export [--consults 1000] [--database-url URL] [--batch 200] [--check]

It seeds a fresh database (SQLite in a temporary directory by default; ``--database-url``
for an empty PostgreSQL database) through the real services: N consults of one clinic, each
with vitals, an assigned specialist, a message and a signed note with two ICD-10
diagnoses. Then a child process runs the export exactly as the command does
(``bulk.export``: staging directory, one read transaction, the audit rows in one unit of
work, rename) and reports its time, its CPU time and its peak resident memory
(``VmHWM``), so seeding does not count; ``rss_at_start_mb`` is the
same process before the export (the interpreter, the application and fhir.resources).

It prints readable lines, then one JSON line last with ``consults``, ``seconds``,
``per_s``, ``per_cpu_s``, ``peak_rss_mb``, ``resources`` and the goals (``GOALS``, judged by
:mod:`bench._goals`; ``--check`` makes a miss the exit status). ``peak_rss_mb`` should not
grow with N: the export pages through the consults (``--batch``) and keeps only the ids of
the shared resources it has written.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench._goals import Goal, add_arguments, finish, tightened_goals

#: ``per_cpu_s``: consults per second of the export process's CPU time (its start-up
#: included), which other load on a shared machine barely moves (``per_s``, on the wall
#: clock, is reported beside it).
GOALS = (Goal("per_cpu_s", ">=", 50.0), Goal("peak_rss_mb", "<=", 200.0))
#: The run the throughput goal is about: fewer consults say little about a steady rate.
GOAL_CONSULTS = 1000
SINCE = datetime(2020, 1, 1, tzinfo=UTC)
PASSWORD = secrets.token_urlsafe(16)  # nobody logs in to the benchmark's database


def seed(url: str, n: int, data_dir: Path) -> None:
    """N consults through the services, committed every 200 (as a command would)."""
    from telemed.accounts import service as accounts
    from telemed.accounts.models import Role
    from telemed.cases.models import Sex
    from telemed.cases.schemas import CaseIn
    from telemed.consults import service as consults
    from telemed.consults.models import ConsultMode, Language, ParticipantRelation, Urgency
    from telemed.consults.schemas import ConsultCreate, Vitals
    from telemed.db import make_engine
    from telemed.demo.seed import seed_facilities
    from telemed.messages import service as messages
    from telemed.migrate import upgrade
    from telemed.notes import service as notes
    from telemed.notes.schemas import NoteCreate
    from telemed.settings import Environment, Settings
    from telemed.uow import Units

    settings = Settings(env=Environment.test, data_dir=data_dir, database_url=url)
    engine = make_engine(url)
    upgrade(engine)
    units = Units(engine)
    with units.one() as session:
        seed_facilities(session)
        nurse = accounts.create_user(
            session,
            settings,
            email="nurse@bench.example",
            full_name="Bench Nurse",
            role=Role.clinician,
            password=PASSWORD,
            facility_code="MOTEBANG",
        )
        doctor = accounts.create_user(
            session,
            settings,
            email="doctor@bench.example",
            full_name="Bench Specialist",
            role=Role.specialist,
            password=PASSWORD,
        )
    now = datetime.now(UTC)
    for first in range(0, n, 200):
        with units.one() as session:
            session.add(nurse)
            session.add(doctor)
            for i in range(first, min(n, first + 200)):
                consult = consults.create_consult(
                    session,
                    nurse,
                    ConsultCreate(
                        case=CaseIn(patient_ref=f"B-{i}", age_years=1 + i % 80, sex=Sex.female),
                        specialty="paediatrics",
                        urgency=Urgency.urgent,
                        mode=ConsultMode.asynchronous,
                        language=Language.english,
                        question=f"Consult {i}: fever and rash for five days.",
                        history="Fever 39 °C since Monday.",
                        vitals=Vitals(
                            pulse_bpm=120,
                            temperature_c=39.1,
                            spo2_percent=97,
                            bp_systolic=100,
                            bp_diastolic=60,
                        ),
                    ),
                    now - timedelta(minutes=n - i),
                )
                consults.add_participant(session, consult, doctor, ParticipantRelation.assigned)
                messages.post(session, nurse, consult, "Photos will follow.")
                note = notes.create(
                    session,
                    doctor,
                    consult,
                    NoteCreate(
                        assessment="Kawasaki disease likely.",
                        plan="IVIG; aspirin; echocardiogram.",
                        diagnoses=["M30.3", "R50.9"],
                    ),
                )
                session.flush()
                notes.sign(session, doctor, consult, note)
    engine.dispose()


def peak_rss_mb() -> float:
    """This process's peak resident memory since its ``exec`` (``VmHWM``). Not
    ``getrusage``: its figure survives ``exec`` and would count the pages a forked child
    shared with the parent that seeded the database."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def export_child(url: str, out: Path, batch: int) -> None:
    """The export as `telemed fhir export` composes it; prints its figures as JSON."""
    from telemed.db import make_engine
    from telemed.interop.fhir import bulk
    from telemed.uow import Units

    engine = make_engine(url)
    rss_before = peak_rss_mb()
    started = time.perf_counter()
    report = bulk.export(
        bulk.reading_engine(url),
        Units(engine),
        out,
        SINCE,
        datetime.now(UTC),
        "http://bench.example",
        batch=batch,
    )
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": usage.ru_utime + usage.ru_stime,
                "rss_before_mb": rss_before,
                "peak_rss_mb": peak_rss_mb(),
                "consults": report.consults,
                "counts": report.counts,
            }
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fhir_export", description=__doc__)
    parser.add_argument("--consults", type=int, default=GOAL_CONSULTS)
    parser.add_argument("--database-url", help="an empty database (default: SQLite, temporary)")
    parser.add_argument("--batch", type=int, default=200, help="consults per page")
    parser.add_argument("--child", nargs=2, metavar=("URL", "OUT"), help=argparse.SUPPRESS)
    add_arguments(parser, GOALS)
    args = parser.parse_args(argv)
    if args.child:
        export_child(args.child[0], Path(args.child[1]), args.batch)
        return 0
    if args.consults < 1 or args.batch < 1:
        parser.error("--consults and --batch must be at least 1")
    goals = tightened_goals(parser, GOALS, args.goal)

    with tempfile.TemporaryDirectory(prefix="bench-fhir-") as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.sqlite3"
        loadavg_start = os.getloadavg()[0]
        t0 = time.perf_counter()
        seed(url, args.consults, Path(tmp) / "data")
        print(f"seeded {args.consults} consults in {time.perf_counter() - t0:.1f} s")
        child = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.fhir_export",
                "--child",
                url,
                f"{tmp}/out",
                "--batch",
                str(args.batch),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode != 0:
            print(child.stderr, file=sys.stderr)
            return 3
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        peak = figures["peak_rss_mb"]
    seconds = figures["seconds"]
    per_s = figures["consults"] / seconds if seconds else float("nan")
    cpu = figures["cpu_seconds"]
    per_cpu_s = figures["consults"] / cpu if cpu else float("nan")
    resources = sum(figures["counts"].values())
    print(
        f"exported {figures['consults']} consults ({resources} resources) in {seconds:.2f} s: "
        f"{per_s:.0f} consults/s ({per_cpu_s:.0f} per CPU second), peak RSS {peak:.0f} MB"
    )
    if args.consults < GOAL_CONSULTS:
        goals.not_measured(
            "per_cpu_s", f"the goal is for {GOAL_CONSULTS} consults; this run had {args.consults}"
        )
    else:
        goals.judge("per_cpu_s", per_cpu_s)
    goals.judge("peak_rss_mb", peak)
    summary = {
        "benchmark": "fhir_export",
        "database": "postgresql" if url.startswith("postgresql") else "sqlite",
        "consults": figures["consults"],
        "resources": resources,
        "seconds": round(seconds, 3),
        "per_s": round(per_s, 1),
        "per_cpu_s": round(per_cpu_s, 1),
        "cpu_seconds": round(figures["cpu_seconds"], 3),
        "peak_rss_mb": round(peak, 1),
        "rss_at_start_mb": round(figures["rss_before_mb"], 1),
        "batch": args.batch,
        "loadavg_start": round(loadavg_start, 2),
        "loadavg_end": round(os.getloadavg()[0], 2),
    }
    return finish(summary, goals, check=args.check)


if __name__ == "__main__":
    sys.exit(main())
