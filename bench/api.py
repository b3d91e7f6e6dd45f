"""Benchmark: the consults API over real HTTP (uvicorn) on PostgreSQL, beside a bare endpoint.

Run from the repository root::

    python -m bench.api [--consults N] [--duration S] [--concurrency C] [--keep] [--check]

It (re)creates the database ``telemed_bench`` on PostgreSQL (``TELEMED_BENCH_POSTGRES_URL``,
default ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres`` names the server), builds
the schema with the migrations, seeds Lesotho's districts and facilities (50 of them), one
clinician per facility and a few specialists through the accounts service, then bulk-loads
``N`` consults (created over the past year, with their cases, lifecycle events and
participants) with COPY. ``--keep`` reuses the database if it already holds exactly those
``N`` seeded consults.

Then it starts two uvicorn servers (one worker each, no access log): the real application,
and a bare FastAPI app with one endpoint that runs the same query (a facility's consults,
newest first, first page of 25: the application's own ``repository.list_consults``) through
SQLAlchemy with a pooled engine and returns the same JSON, without authentication or anything
else the application does per request. One lean asyncio client (raw HTTP/1.1 keep-alive connections,
so that it takes little of the 2 cores from the server) runs ``C`` virtual users; each logs
in through ``POST /api/v1/auth/login`` as the clinician of a random facility and keeps its
cookie. Measured, each after a warm-up: the app's list (``GET /api/v1/consults``) and the
bare list, alternated over ``--rounds`` rounds so that both see the same machine, then
creating consults for new patients (``POST /api/v1/consults`` with the CSRF header).

The application's server process also runs the audit sealer every 2 s, as ``telemed serve``
does on the scheduler's leader. After the load the benchmark reports how many audit rows
still waited for it, seals the rest and verifies the whole chain (``audit_unsealed_at_end``,
``audit_rows``, ``audit_chain_intact``).

It prints human-readable lines (including where the time goes: the CPU the server, its
PostgreSQL backends and the client spent per request, the load of other processes on a
shared machine, and the in-process cost of the auth query, the list query, the whole list
service and serialisation), then one JSON line last. ``ratio`` is list_rps / bare_list_rps;
``cpu_ratio`` is the same from the server's CPU per request, which other load disturbs less.

Only 2xx responses count as served: throughput, latency percentiles and CPU per request are
computed from them alone, because a server that answers 500 (or 401, or 429) quickly would
otherwise look fast. Every other answer, and every request that failed outright (connection
reset, a malformed response), is an error: counted per phase (``list_errors``,
``bare_list_errors``, ``create_errors``, ``errors`` in all), its statuses printed with an
example.

Goals (``GOALS``, judged by :mod:`bench._goals`; ``--check`` makes a miss the exit status):
``list_p99_ms <= 100``, ``ratio >= 0.6`` and ``errors <= 0``: a run with any error has not
met its goals, whatever its figures. The first two are about 100,000 consults at concurrency
32 (the defaults): a smaller run leaves them *not measured* rather than passing them on an
easier load, and ``ratio`` is not measured either when the two servers' JSON differ (they
would not be doing the same work).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import secrets
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from bench._goals import Goal, Goals, add_arguments, finish, tightened_goals
from bench._http import (
    CLOCK_TICKS,
    Connection,
    Response,
    ServerProcess,
    cpu_seconds_of,
    free_port,
    machine_cpu_ticks,
    own_cpu_seconds,
)
from telemed.accounts import service as accounts
from telemed.accounts.models import Role, User
from telemed.audit import sealer
from telemed.audit import service as audit
from telemed.consults import repository
from telemed.consults import service as consults
from telemed.consults.lifecycle import check_transition
from telemed.consults.models import Consult, ConsultState
from telemed.consults.schemas import ConsultPage, ConsultSummary
from telemed.db import make_engine
from telemed.demo.seed import seed_facilities
from telemed.facilities.models import District, Facility
from telemed.migrate import upgrade
from telemed.settings import Environment, Settings

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
ADMIN_URL = os.environ.get(
    "TELEMED_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PAGE_SIZE = 25  # the application's default page size (Settings.page_size)
FACILITIES = 50
PASSWORD = "bench-password-2026"  # noqa: S105 - the bench users' only secret
EMAIL_DOMAIN = "bench.telemed.org.ls"
BENCH_REF_PREFIX = "BENCH-"  # patients created by the create phase, not by the seed
GOALS = (
    Goal("list_p99_ms", "<=", 100.0),
    Goal("ratio", ">=", 0.7),
    Goal("list_p99_ms_at_150rps", "<=", 100.0),
    Goal("create_p99_ms_at_30rps", "<=", 150.0),
    Goal("errors", "<=", 0),
)
LIST_RATE = 150.0  # requests per second of the open-loop phases
CREATE_RATE = 30.0
SERVE_ENV = "TELEMED_BENCH_SERVE"  # url, data dir, secret: for each worker's factory
# The load the latency and ratio goals are about (the defaults); a lighter one proves nothing.
GOAL_CONSULTS = 100_000
GOAL_CONCURRENCY = 32
GOAL_WORKERS = 2

S = ConsultState


# --------------------------------------------------------------------------------------
# Realistic data
# --------------------------------------------------------------------------------------

# (code, name, district code): health centres and hospitals beyond the demo's 15.
EXTRA_FACILITIES: list[tuple[str, str, str]] = [
    ("MAPOTENG", "Mapoteng Health Centre", "BE"),
    ("NAZARETH", "Nazareth Health Centre", "MS"),
    ("RAMABANTA", "Ramabanta Health Centre", "MS"),
    ("TSAKHOLO", "Tsakholo Health Centre", "MF"),
    ("MATELILE", "Matelile Health Centre", "MF"),
    ("MTTABOR", "Mount Tabor Health Centre", "MS"),
    ("KOLO", "Kolo Health Centre", "MF"),
    ("MALEALEA", "Malealea Health Centre", "MF"),
    ("MPHAKI", "Mphaki Health Centre", "QT"),
    ("TEBELLONG", "Tebellong Hospital", "QN"),
    ("SEHLABATHEBE", "Sehlabathebe Health Centre", "QN"),
    ("LINAKENG", "Linakeng Health Centre", "MK"),
    ("MASHAI", "Mashai Health Centre", "TT"),
    ("MANTSONYANE", "Mantsonyane Health Centre", "TT"),
    ("MARAKABEI", "Marakabei Health Centre", "MS"),
    ("LETSENG", "Letseng Health Centre", "MK"),
    ("MAPHOLANENG", "Mapholaneng Health Centre", "MK"),
    ("LIBIBING", "Libibing Health Centre", "MK"),
    ("PEKA", "Peka Health Centre", "LE"),
    ("PITSENG", "Pitseng Health Centre", "LE"),
    ("MAPUTSOE", "Maputsoe Filter Clinic", "LE"),
    ("KHANYANE", "Khanyane Health Centre", "LE"),
    ("KUENENG", "Kueneng Health Centre", "BE"),
    ("TYHC", "Teyateyaneng Health Centre", "BE"),
    ("MAMOHAU", "Mamohau Hospital", "LE"),
    ("STMONICAS", "St Monica's Health Centre", "LE"),
    ("TLALI", "Tlali Health Centre", "MS"),
    ("STROSE", "St Rose Health Centre", "MS"),
    ("HOLYCROSS", "Holy Cross Health Centre", "MH"),
    ("KETANE", "Ketane Health Centre", "MH"),
    ("MOUNTAIN", "Mount Moorosi Health Centre", "QT"),
    ("TSOELIKE", "Tsoelike Health Centre", "QN"),
    ("BOBETE", "Bobete Health Centre", "TT"),
    ("SEMENANYANE", "Semenanyane Health Centre", "TT"),
    ("HLOTSE", "Hlotse Filter Clinic", "LE"),
    ("LIKHOELE", "Likhoele Health Centre", "MF"),
    ("HAMOKHALI", "Ha Mokhalinyane Health Centre", "MS"),
    ("OXBOW", "Oxbow Health Centre", "BB"),
]

FIRST_NAMES = [
    "Palesa", "Thabo", "Lerato", "Mpho", "Teboho", "Nthabiseng", "Limpho", "Tumelo",
    "Relebohile", "Lineo", "Katleho", "Reitumetse", "Tsepo", "Puleng", "Motlatsi", "Bokang",
]  # fmt: skip
SURNAMES = [
    "Mokoena", "Letsie", "Nthane", "Phiri", "Mohapi", "Mofokeng", "Ramakoae", "Sekhesa",
    "Lebona", "Moshoeshoe", "Makara", "Thamae", "Khoabane", "Seeiso", "Mokhothu", "Lerotholi",
]  # fmt: skip


@dataclass(frozen=True)
class Template:
    """A kind of consult a district clinician asks about, with plausible details."""

    specialty: str
    question: str
    history: str
    examination: str
    treatment: str
    ages: tuple[int, int]
    female_share: float = 0.5


TEMPLATES: list[Template] = [
    Template("paediatrics", "Child with fever and rash for {n} days; Kawasaki disease?",
             "Fever 39-40 C for {n} days despite paracetamol. Red eyes, cracked lips, "
             "swollen hands. Immunisations up to date.",
             "Irritable, bilateral conjunctival injection, strawberry tongue, cervical node.",
             "Paracetamol 15 mg/kg 6-hourly.", (1, 6)),
    Template("paediatrics", "Severe acute malnutrition with oedema, not improving on F-75.",
             "Weight loss over {n} weeks, poor appetite, diarrhoea on and off. Mother HIV "
             "positive on ART.", "Bilateral pitting oedema, flaky paint dermatosis, MUAC 10.8 cm.",
             "F-75 feeds, amoxicillin, vitamin A.", (1, 4)),
    Template("internal_medicine", "Poorly controlled hypertension on three agents; next step?",
             "Known hypertensive for {n} years, adherent by pill count. Headaches, no chest pain.",
             "No oedema, fundi not seen, no bruits.",
             "Amlodipine 10 mg, hydrochlorothiazide 25 mg, enalapril 20 mg.", (40, 80)),
    Template("obstetrics_gynaecology", "{n} weeks pregnant, fundal height small for dates.",
             "G3P2, booked at 16 weeks, two previous normal deliveries. Reduced fetal movements "
             "reported this week.", "Fundal height 24 cm, fetal heart 140/min, no oedema.",
             "Ferrous sulphate, folic acid.", (18, 42), 1.0),
    Template("infectious_diseases",
             "Viral load {n}00 copies/ml on TLD after adherence counselling.",
             "On ART for 6 years, switched to TLD two years ago. Three adherence sessions done. "
             "Weight stable.", "Well, oral thrush, no lymphadenopathy.",
             "Tenofovir/lamivudine/dolutegravir once daily, cotrimoxazole.", (20, 65)),
    Template("infectious_diseases", "Suspected TB meningitis; start steroids before transfer?",
             "Headache for {n} days, confusion since yesterday. Close contact with a TB patient.",
             "GCS 13/15, neck stiffness, no focal signs.",
             "Ceftriaxone 2 g started; no TB treatment yet.", (16, 60)),
    Template("endocrinology", "Type 2 diabetes, HbA1c {n}.5% on metformin and gliclazide; insulin?",
             "Diabetic for 8 years, polyuria again, lost 4 kg. Lives far from the clinic.",
             "Foot sensation reduced, no ulcers.",
             "Metformin 1 g twice daily, gliclazide 80 mg twice daily.", (35, 75)),
    Template("cardiology", "New murmur and breathlessness; rheumatic heart disease?",
             "Breathless on climbing for {n} months, now at rest. Sore throats as a child.",
             "Pansystolic murmur at the apex, bibasal crackles, raised JVP.",
             "Furosemide 40 mg daily.", (12, 45)),
    Template("dermatology", "Spreading itchy rash for {n} weeks despite antifungal cream.",
             "Started on the trunk, now on arms. Family members itchy as well.",
             "Excoriated papules, burrows in the finger webs.",
             "Clotrimazole cream twice daily.", (5, 70)),
    Template("psychiatry", "First episode psychosis; safe to start haloperidol here?",
             "Hearing voices for {n} weeks, not sleeping, stopped going to work. No substance use "
             "reported.", "Calm, thought disorder, no insight, physically well.",
             "None so far.", (18, 40)),
    Template("orthopaedics", "Supracondylar fracture; is closed reduction here safe?",
             "Fell from a tree {n} hours ago. Pain and swelling of the right elbow.",
             "Swollen elbow, radial pulse present, hand warm, sensation intact.",
             "Backslab, analgesia.", (3, 12)),
    Template("emergency_medicine", "Postpartum haemorrhage not responding to oxytocin; transfer "
             "takes {n} hours.", "Delivered one hour ago, estimated blood loss 1.2 L.",
             "Pale, uterus boggy, no tears seen.",
             "Oxytocin infusion, misoprostol 800 mcg, two IV lines.", (18, 42), 1.0),
    Template("nephrology", "Creatinine {n}00 umol/L and little urine; is dialysis needed?",
             "Vomiting for three days, took traditional medicine. Little urine since yesterday.",
             "Dry, BP low, no oedema.", "IV normal saline.", (20, 70)),
    Template("pulmonology", "COPD exacerbation, SpO2 {n}% on 2 L oxygen.",
             "Smoker, cooks over an open fire. Worse cough and sputum for a week.",
             "Wheeze throughout, using accessory muscles.",
             "Salbutamol nebulisers, prednisolone 40 mg, amoxicillin.", (45, 85)),
    Template("ophthalmology", "Sudden painless loss of vision in the left eye.",
             "Noticed {n} days ago on waking. Diabetic and hypertensive.",
             "Left acuity hand movements, right 6/12, relative afferent defect on the left.",
             "None.", (45, 80)),
    Template("neurology", "New-onset seizures in an adult; what work-up can we do here?",
             "Three generalised seizures in {n} weeks. No head injury, no alcohol.",
             "Post-ictal on arrival, now normal examination.", "Phenobarbital 60 mg at night.",
             (18, 60)),
]  # fmt: skip

CANCEL_REASONS = [
    "Transferred to Queen 'Mamohato Memorial Hospital",
    "Patient improved on first-line treatment",
    "Patient left against medical advice",
    "Duplicate request",
]

# Final state -> the moves from draft that lead there (checked against the lifecycle).
PATHS: dict[ConsultState, list[ConsultState]] = {
    S.draft: [],
    S.requested: [S.requested],
    S.offered: [S.requested, S.offered],
    S.escalated: [S.requested, S.escalated],
    S.accepted: [S.requested, S.offered, S.accepted],
    S.scheduled: [S.requested, S.offered, S.accepted, S.scheduled],
    S.no_show: [S.requested, S.offered, S.accepted, S.scheduled, S.no_show],
    S.completed: [S.requested, S.offered, S.accepted, S.scheduled, S.in_session, S.completed],
    S.follow_up_due: [
        S.requested, S.offered, S.accepted, S.scheduled, S.in_session, S.completed,
        S.follow_up_due,
    ],
    S.closed: [
        S.requested, S.offered, S.accepted, S.scheduled, S.in_session, S.completed, S.closed,
    ],
    S.answered_async: [S.requested, S.offered, S.accepted, S.answered_async],
    S.cancelled: [S.requested, S.cancelled],
}  # fmt: skip
ASYNC_CLOSED = [S.requested, S.offered, S.accepted, S.answered_async, S.closed]

# Consults older than two weeks are mostly finished; recent ones are mostly still open.
OLD_STATES = {
    S.closed: 60, S.completed: 14, S.follow_up_due: 3, S.answered_async: 4, S.cancelled: 7,
    S.no_show: 2, S.requested: 5, S.escalated: 1, S.accepted: 1, S.scheduled: 1, S.draft: 2,
}  # fmt: skip
RECENT_STATES = {
    S.requested: 30, S.offered: 8, S.escalated: 2, S.accepted: 10, S.scheduled: 15,
    S.completed: 15, S.closed: 8, S.cancelled: 5, S.draft: 7,
}  # fmt: skip

# Time from the previous lifecycle step to this one: (min, max) in minutes.
STEP_MINUTES: dict[ConsultState, tuple[int, int]] = {
    S.requested: (1, 30), S.offered: (2, 180), S.escalated: (720, 2880), S.accepted: (5, 600),
    S.scheduled: (10, 240), S.in_session: (60, 4320), S.completed: (15, 60),
    S.answered_async: (60, 2880), S.follow_up_due: (1440, 20160), S.closed: (60, 10080),
    S.no_show: (60, 4320), S.cancelled: (30, 2880),
}  # fmt: skip
SYSTEM_STEPS = {S.offered, S.escalated, S.scheduled, S.in_session, S.no_show, S.follow_up_due}
SPECIALIST_STEPS = {S.accepted, S.completed, S.answered_async}


def _check_paths() -> None:
    for path in [*PATHS.values(), ASYNC_CLOSED]:
        current = S.draft
        for target in path:
            check_transition(current, target)
            current = target


# --------------------------------------------------------------------------------------
# Database: create, migrate, seed
# --------------------------------------------------------------------------------------


class BenchError(Exception):
    """A problem the user can fix; printed without a traceback."""


@dataclass(frozen=True)
class Fixture:
    """What the load needs to know about the seeded database."""

    url: str
    consults: int
    facilities: list[tuple[int, str]]  # (id, code)
    users: int
    seconds: float
    reused: bool


def database_url(name: str) -> str:
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def psycopg_conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def admin_engine() -> Engine:
    engine = create_engine(
        ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        engine.dispose()
        shown = make_url(ADMIN_URL).render_as_string(hide_password=True)
        raise BenchError(
            f"PostgreSQL is not reachable at {shown}: {str(exc.orig).strip()}\n"
            "Start it (the benchmark needs a server at 127.0.0.1:5432 that user postgres can "
            "log in to), or point TELEMED_BENCH_POSTGRES_URL at one."
        ) from exc
    return engine


def prepare_database(name: str, n_consults: int, keep: bool, seed: int) -> Fixture:
    started = time.perf_counter()
    url = database_url(name)
    admin = admin_engine()
    try:
        with admin.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
        if keep and exists:
            fixture = _reuse(url, n_consults, started)
            if fixture is not None:
                return fixture
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    engine = make_engine(url, pool_size=2)
    steps: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        _migrate(engine)
        steps["migrations"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        facilities, clinicians, specialists = _seed_people(engine, url)
        steps["facilities and users"] = time.perf_counter() - t0
    finally:
        engine.dispose()
    rng = random.Random(seed)
    steps |= _bulk_load(url, n_consults, facilities, clinicians, specialists, rng)
    print("seeding: " + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items()))
    return Fixture(
        url=url,
        consults=n_consults,
        facilities=facilities,
        users=len(clinicians) + len(specialists),
        seconds=time.perf_counter() - started,
        reused=False,
    )


def _migrate(engine: Engine) -> None:
    try:
        upgrade(engine)
    except Exception as exc:  # a broken or half-written migration in the working tree
        raise BenchError(f"the migrations failed: {type(exc).__name__}: {exc}") from exc


def _reuse(url: str, n_consults: int, started: float) -> Fixture | None:
    """The database as it is, if it holds exactly ``n_consults`` seeded consults."""
    engine = make_engine(url, pool_size=1)
    try:
        upgrade(engine)  # idempotent; a newer migration still applies
        with engine.connect() as connection:
            seeded = connection.execute(
                text(
                    "SELECT count(*) FROM consults c JOIN cases k ON k.id = c.case_id "
                    "WHERE k.patient_ref NOT LIKE :prefix"
                ),
                {"prefix": f"{BENCH_REF_PREFIX}%"},
            ).scalar_one()
            facilities = _bench_facilities(connection)
            users = connection.execute(
                text("SELECT count(*) FROM users WHERE email LIKE :domain"),
                {"domain": f"%@{EMAIL_DOMAIN}"},
            ).scalar_one()
    except Exception as exc:  # any schema or data mismatch: reseed
        print(f"--keep: cannot reuse the database ({type(exc).__name__}); reseeding")
        return None
    finally:
        engine.dispose()
    if seeded != n_consults or len(facilities) < FACILITIES:
        print(f"--keep: the database holds {seeded} seeded consults, not {n_consults}; reseeding")
        return None
    return Fixture(
        url=url,
        consults=n_consults,
        facilities=facilities,
        users=int(users),
        seconds=time.perf_counter() - started,
        reused=True,
    )


def _bench_facilities(connection: Any) -> list[tuple[int, str]]:
    """The first 50 facilities that have a bench clinician."""
    rows = connection.execute(
        text(
            "SELECT f.id, f.code FROM facilities f JOIN users u ON u.facility_id = f.id "
            "WHERE u.email LIKE :domain AND u.role = 'clinician' ORDER BY f.id LIMIT :n"
        ),
        {"domain": f"%@{EMAIL_DOMAIN}", "n": FACILITIES},
    ).all()
    return [(int(r[0]), str(r[1])) for r in rows]


def _clinician_email(code: str) -> str:
    return f"clinician.{code.lower()}@{EMAIL_DOMAIN}"


def _seed_people(
    engine: Engine, url: str
) -> tuple[list[tuple[int, str]], dict[int, int], list[int]]:
    """Districts, 50 facilities, a clinician for each, six specialists (Argon2, as in use)."""
    settings = Settings(
        env=Environment.test, database_url=url, data_dir=Path(tempfile.gettempdir()),
        seed_demo=False,
    )  # fmt: skip
    rng = random.Random(7)
    with Session(engine, expire_on_commit=False) as session:
        seed_facilities(session)
        districts = {d.code: d.id or 0 for d in session.exec(select(District))}
        existing = list(session.exec(select(Facility).order_by(col(Facility.id))))
        known = {f.code for f in existing}
        extra = [f for f in EXTRA_FACILITIES if f[0] not in known]
        for code, name, district in extra[: max(0, FACILITIES - len(existing))]:
            session.add(
                Facility(
                    code=code, name=name, kind="health centre", district_id=districts[district]
                )
            )
        session.commit()
        chosen = list(session.exec(select(Facility).order_by(col(Facility.id)).limit(FACILITIES)))
        if len(chosen) < FACILITIES:
            raise BenchError(f"only {len(chosen)} facilities; add more to EXTRA_FACILITIES")
        clinicians: dict[int, int] = {}
        for facility in chosen:
            user = accounts.create_user(
                session,
                settings,
                email=_clinician_email(facility.code),
                full_name=f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)} (clinician)",
                role=Role.clinician,
                password=PASSWORD,
                facility_code=facility.code,
            )
            clinicians[facility.id or 0] = user.id or 0
        specialists = [
            accounts.create_user(
                session,
                settings,
                email=f"specialist{i}@{EMAIL_DOMAIN}",
                full_name=f"Dr {rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}",
                role=Role.specialist,
                password=PASSWORD,
                timezone=rng.choice(["Europe/London", "Africa/Johannesburg", "America/Toronto"]),
            ).id
            or 0
            for i in range(6)
        ]
        session.commit()  # this script owns the unit of work: services only flush
        return [(f.id or 0, f.code) for f in chosen], clinicians, specialists


CASE_COLUMNS = (
    "id", "patient_ref", "age_years", "birth_year", "sex", "facility_id", "created_by_id",
    "created_at",
)  # fmt: skip
CONSULT_COLUMNS = (
    "id", "case_id", "facility_id", "specialty", "urgency", "mode", "language", "question",
    "history", "examination", "current_treatment", "bp_systolic", "bp_diastolic", "pulse_bpm",
    "respiratory_rate", "temperature_c", "spo2_percent", "weight_kg", "state", "created_by_id",
    "created_at", "requested_at", "state_changed_at",
)  # fmt: skip
EVENT_COLUMNS = ("id", "consult_id", "actor_id", "at", "from_state", "to_state", "reason")
PARTICIPANT_COLUMNS = ("id", "consult_id", "user_id", "relation", "created_at")
CHUNK = 10_000


@dataclass
class _Rows:
    cases: list[tuple[Any, ...]] = field(default_factory=list)
    consults: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    participants: list[tuple[Any, ...]] = field(default_factory=list)


class _Generator:
    """Consults in the order they were created, with their cases and lifecycle."""

    def __init__(
        self,
        rng: random.Random,
        facilities: list[tuple[int, str]],
        clinicians: dict[int, int],
        specialists: list[int],
        now: datetime,
    ) -> None:
        self.rng = rng
        self.now = now
        self.facilities = facilities
        self.clinicians = clinicians
        self.specialists = specialists
        # Busy referral hospitals ask more than small health centres.
        self.weights = [rng.uniform(0.4, 2.5) for _ in facilities]
        self.cases_of: dict[int, list[tuple[int, int]]] = {f: [] for f, _ in facilities}
        self.refs: dict[int, int] = dict.fromkeys(self.cases_of, 0)
        self.next_case = self.next_event = self.next_participant = 1

    def chunk(self, first_id: int, times: list[datetime]) -> _Rows:
        rows = _Rows()
        for offset, created in enumerate(times):
            self._consult(rows, first_id + offset, created)
        return rows

    def _case(self, rows: _Rows, facility: tuple[int, str], t: Template, at: datetime) -> int:
        facility_id, code = facility
        known = self.cases_of[facility_id]
        if known and self.rng.random() < 0.3:  # a patient seen before
            return self.rng.choice(known)[0]
        case_id, self.next_case = self.next_case, self.next_case + 1
        self.refs[facility_id] += 1
        ref = f"{code[:6]}-{at.year}-{self.refs[facility_id]:05d}"
        age = self.rng.randint(*t.ages)
        female = self.rng.random() < t.female_share
        sex = "female" if female else ("male" if self.rng.random() < 0.97 else "unknown")
        by_birth_year = self.rng.random() < 0.3
        rows.cases.append((
            case_id, ref, None if by_birth_year else age, at.year - age if by_birth_year else None,
            sex, facility_id, self.clinicians[facility_id], at,
        ))  # fmt: skip
        known.append((case_id, age))
        return case_id

    def _consult(self, rows: _Rows, consult_id: int, created: datetime) -> None:
        rng = self.rng
        facility = rng.choices(self.facilities, self.weights)[0]
        facility_id = facility[0]
        clinician = self.clinicians[facility_id]
        t = rng.choice(TEMPLATES)
        case_id = self._case(rows, facility, t, created)
        mode = rng.choices(["video", "audio", "asynchronous"], [45, 25, 30])[0]
        recent = self.now - created < timedelta(days=14)
        states = RECENT_STATES if recent else OLD_STATES
        final = rng.choices(list(states), list(states.values()))[0]
        if final is S.answered_async and mode != "asynchronous":
            final = S.closed
        path = ASYNC_CLOSED if final is S.closed and mode == "asynchronous" else PATHS[final]
        specialist = rng.choice(self.specialists)
        n = rng.randint(2, 9)
        events: list[tuple[ConsultState | None, ConsultState, datetime, int | None, str]] = [
            (None, S.draft, created, clinician, "created")
        ]
        at, current, requested_at = created, S.draft, None
        for target in path:
            low, high = STEP_MINUTES[target]
            at = min(at + timedelta(minutes=rng.uniform(low, high)), self.now)
            if target is S.requested and requested_at is None:
                requested_at = at
            if target in SYSTEM_STEPS:
                actor: int | None = None
            elif target in SPECIALIST_STEPS:
                actor = specialist
            else:
                actor = clinician
            reason = {
                S.offered: "offered to the on-call specialist",
                S.escalated: "no specialist accepted within 24 hours",
                S.cancelled: rng.choice(CANCEL_REASONS),
                S.no_show: "the clinic's connection failed",
            }.get(target, "")
            events.append((current, target, at, actor, reason))
            current = target
        vitals = self._vitals(t)
        rows.consults.append((
            consult_id, case_id, facility_id, t.specialty,
            rng.choices(["routine", "urgent", "emergency"], [60, 30, 10])[0]
            if t.specialty != "emergency_medicine" else "emergency",
            mode, rng.choices(["st", "en"], [65, 35])[0], t.question.format(n=n),
            t.history.format(n=n), t.examination, t.treatment, *vitals, final.value, clinician,
            created, requested_at, at,
        ))  # fmt: skip
        for from_state, to_state, when, actor, reason in events:
            rows.events.append((
                self.next_event, consult_id, actor, when,
                from_state.value if from_state else None, to_state.value, reason,
            ))  # fmt: skip
            self.next_event += 1
        if S.accepted in path:
            offered_at = next(e[2] for e in events if e[1] is S.offered)
            for relation in ("offered", "assigned"):
                rows.participants.append(
                    (self.next_participant, consult_id, specialist, relation, offered_at)
                )
                self.next_participant += 1

    def _vitals(self, t: Template) -> tuple[Any, ...]:
        rng = self.rng
        if rng.random() < 0.15:
            return (None,) * 7
        adult = t.ages[0] >= 12
        systolic = rng.randint(95, 190) if adult else None
        diastolic = rng.randint(55, min(115, systolic - 20)) if systolic else None
        return (
            systolic,
            diastolic,
            rng.randint(60, 130) if adult else rng.randint(90, 170),
            rng.randint(12, 30) if adult else rng.randint(20, 50),
            round(rng.uniform(36.0, 39.8), 1),
            rng.randint(86, 100),
            round(rng.uniform(45, 110), 1) if adult else round(rng.uniform(8, 30), 1),
        )


ORPHANS = """
SELECT
  (SELECT count(*) FROM consults c WHERE NOT EXISTS (SELECT 1 FROM cases k WHERE k.id = c.case_id)),
  (SELECT count(*) FROM consult_events e
     WHERE NOT EXISTS (SELECT 1 FROM consults c WHERE c.id = e.consult_id)),
  (SELECT count(*) FROM consult_participants p
     WHERE NOT EXISTS (SELECT 1 FROM consults c WHERE c.id = p.consult_id))
"""


def _try(cursor: psycopg.Cursor[Any], statement: str) -> bool:
    """Run ``statement`` in a savepoint; False (and nothing changed) if it is refused."""
    try:
        with cursor.connection.transaction():
            cursor.execute(statement)
    except psycopg.Error:
        return False
    return True


def _bulk_load(
    url: str,
    n_consults: int,
    facilities: list[tuple[int, str]],
    clinicians: dict[int, int],
    specialists: list[int],
    rng: random.Random,
) -> dict[str, float]:
    """COPY the consults, their cases, events and participants, in the order of creation."""
    _check_paths()
    now = datetime.now(UTC)
    year = 365 * 24 * 3600
    times = sorted(now - timedelta(seconds=rng.uniform(0, year)) for _ in range(n_consults))
    generator = _Generator(rng, facilities, clinicians, specialists, now)
    started = time.perf_counter()
    counts: Counter[str] = Counter()
    with psycopg.connect(psycopg_conninfo(url)) as connection, connection.cursor() as cursor:
        # Skip the per-row foreign-key triggers while loading (a superuser may; ~40% faster).
        # The generator only refers to rows it wrote before; checked after the load.
        replica = _try(cursor, "SET session_replication_role = replica")
        for start in range(0, n_consults, CHUNK):
            rows = generator.chunk(start + 1, times[start : start + CHUNK])
            for table, columns, data in (
                ("cases", CASE_COLUMNS, rows.cases),
                ("consults", CONSULT_COLUMNS, rows.consults),
                ("consult_events", EVENT_COLUMNS, rows.events),
                ("consult_participants", PARTICIPANT_COLUMNS, rows.participants),
            ):
                counts[table] += len(data)
                with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in data:
                        copy.write_row(row)
        for table in ("cases", "consults", "consult_events", "consult_participants"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            )
        if replica:
            cursor.execute("SET session_replication_role = DEFAULT")
            cursor.execute(ORPHANS)
            orphans = cursor.fetchone()
            if orphans and any(orphans):
                raise BenchError(f"the generated data has dangling references: {orphans}")
        connection.commit()
    copied = time.perf_counter() - started
    print("rows: " + ", ".join(f"{n:,} {table}" for table, n in counts.items()))
    started = time.perf_counter()
    with psycopg.connect(psycopg_conninfo(url), autocommit=True) as connection:
        connection.execute("VACUUM (ANALYZE)")
    return {"generate and COPY": copied, "vacuum analyze": time.perf_counter() - started}


# --------------------------------------------------------------------------------------
# The servers
# --------------------------------------------------------------------------------------


def bare_app(url: str) -> Any:
    """One endpoint, no authentication: the application's list query and JSON, nothing else."""
    from fastapi import FastAPI

    engine = make_engine(url)  # pooled like the application's
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/consults")
    def list_consults(facility_id: int, page: int = 1) -> ConsultPage:
        # The application's own SELECT (repository.list_consults with a clinician's visibility
        # clause), so that the two servers keep running the same query if it changes.
        with Session(engine) as session:
            rows = repository.list_consults(
                session,
                col(Consult.facility_id) == facility_id,
                limit=PAGE_SIZE + 1,
                offset=(page - 1) * PAGE_SIZE,
            )
        return ConsultPage(
            items=[ConsultSummary.model_validate(c) for c in rows[:PAGE_SIZE]],
            page=page,
            page_size=PAGE_SIZE,
            has_next=len(rows) > PAGE_SIZE,
        )

    return app


def _watch_parent(parent: int) -> None:
    """Stop this server if the benchmark that started it died without stopping it."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)


def app_factory() -> Any:
    """The application as one worker builds it (``--workers``; settings from ``SERVE_ENV``)."""
    from telemed.app import create_app

    url, data_dir, secret = json.loads(os.environ[SERVE_ENV])
    settings = Settings(
        env=Environment.test,
        database_url=url,
        data_dir=Path(data_dir),
        secret_key=secret,  # the same in every worker
        seed_demo=False,
        page_size=PAGE_SIZE,
    )
    return create_app(settings)


def bare_factory() -> Any:
    return bare_app(json.loads(os.environ[SERVE_ENV])[0])


def serve(kind: str, port: int, url: str, data_dir: str, parent: int, workers: int) -> None:
    """One server, ``workers`` uvicorn worker processes (as ``telemed serve --workers``);
    the app's audit sealer runs in the parent, as on the scheduler's leader."""
    import uvicorn

    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    os.environ[SERVE_ENV] = json.dumps([url, data_dir, secrets.token_urlsafe(48)])
    if kind == "app":
        _start_sealer(url)
    factory = app_factory if kind == "app" else bare_factory
    uvicorn.run(
        f"bench.api:{factory.__name__}" if workers > 1 else factory(),
        factory=workers > 1,
        host=HOST,
        port=port,
        workers=workers,
        timeout_worker_healthcheck=60,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=60,
    )


def _start_sealer(url: str) -> None:
    """The audit sealer, as ``telemed serve`` runs it on the scheduler's leader: in the
    server's process (its CPU counts in the server's), every ``SEAL_EVERY``. The other
    jobs are left out: they would add work the benchmark does not measure."""
    from scheduling.runner import LeaderRunner

    runner = LeaderRunner(None)
    runner.add_job(
        "audit_seal", partial(sealer.seal_pending, make_engine(url)), seconds=sealer.SEAL_EVERY
    )
    runner.start()


def audit_state(url: str) -> dict[str, Any]:
    """Right after the load: how many audit rows still waited for the sealer; then, all
    sealed, whether the whole chain verifies."""
    engine = make_engine(url, pool_size=1)
    try:
        with Session(engine) as session:
            waiting = audit.verify(session).unsealed
        sealer.seal_pending(engine)
        with Session(engine) as session:
            chain = audit.verify(session)
    finally:
        engine.dispose()
    verdict = "intact" if chain.broken is None else f"BROKEN: {chain.broken}"
    print(f"audit: {waiting} rows waited for the sealer when the load stopped; chain of "
          f"{chain.sealed} rows {verdict}")  # fmt: skip
    return {
        "audit_unsealed_at_end": waiting,
        "audit_rows": chain.sealed,
        "audit_chain_intact": chain.broken is None and chain.unsealed == 0,
    }


def start_server(
    kind: str, url: str, data_dir: Path, workers: int, stack: contextlib.ExitStack
) -> ServerProcess:
    port = free_port(HOST)
    server = ServerProcess(
        kind,
        [
            sys.executable, "-m", "bench.api", "--serve", kind, "--port", str(port),
            "--database-url", url, "--data-dir", str(data_dir), "--parent", str(os.getpid()),
            "--workers", str(workers),
        ],
        host=HOST,
        port=port,
        log_path=data_dir / f"{kind}.log",
        cwd=ROOT,
    )  # fmt: skip
    stack.enter_context(server)
    return server


# --------------------------------------------------------------------------------------
# The load
# --------------------------------------------------------------------------------------


@dataclass
class VirtualUser:
    index: int
    facility_id: int
    email: str
    app: Connection
    bare: Connection
    csrf: str = ""
    cookie: str = ""
    list_request: bytes = b""
    bare_request: bytes = b""
    created: int = 0


@dataclass
class Phase:
    """What one measured phase saw; phases of several rounds add up."""

    name: str
    latencies: list[float] = field(default_factory=list)  # seconds, 2xx responses only
    completed: int = 0  # 2xx responses completed in the measured window
    window: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)  # every answer, warm-up included
    failures: Counter[str] = field(default_factory=Counter)
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    postgres_cpu: float = 0.0
    machine_busy: int = 0
    machine_total: int = 0
    sample_error: str = ""

    @property
    def rps(self) -> float:
        return self.completed / self.window if self.window else 0.0

    def percentile_ms(self, p: float) -> float:
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        return 1000 * ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    @property
    def errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if not 200 <= s < 300) + sum(
            self.failures.values()
        )

    def per_request_ms(self, seconds: float) -> float:
        return 1000 * seconds / self.completed if self.completed else math.nan

    def line(self) -> str:
        busy = 100 * self.machine_busy / self.machine_total if self.machine_total else math.nan
        return (
            f"{self.name:<12} {self.rps:8.1f} req/s  p50 {self.percentile_ms(50):6.1f} ms  "
            f"p99 {self.percentile_ms(99):6.1f} ms  max {self.percentile_ms(100):6.1f} ms  "
            f"errors {self.errors}\n{'':<12} CPU per request: server "
            f"{self.per_request_ms(self.server_cpu):.2f} ms, postgres "
            f"{self.per_request_ms(self.postgres_cpu):.2f} ms, client "
            f"{self.per_request_ms(self.client_cpu):.2f} ms; machine busy {busy:.0f}%, of which "
            f"other processes {self.other_cores:.2f} cores"
        )

    @property
    def other_cores(self) -> float:
        """Cores busy with processes that are neither ours nor PostgreSQL (a shared machine)."""
        if not self.window:
            return math.nan
        busy = self.machine_busy / CLOCK_TICKS
        return max(0.0, busy - self.server_cpu - self.postgres_cpu - self.client_cpu) / self.window


Call = Callable[[VirtualUser], Awaitable[Response]]


class _Snapshot:
    def __init__(self, server: ServerProcess, database: str) -> None:
        self.at = time.perf_counter()
        self.server = server.cpu_seconds()
        self.client = own_cpu_seconds()
        # Only the backends serving the bench database: others may run their tests meanwhile.
        self.postgres = cpu_seconds_of("postgres", f" {database} ")
        self.busy, self.total = machine_cpu_ticks()


async def run_phase(
    phase: Phase,
    users: list[VirtualUser],
    call: Call,
    server: ServerProcess,
    warmup: float,
    duration: float,
    database: str,
) -> None:
    """Closed loop: every user sends ``call`` back to back; measure after ``warmup`` for
    ``duration``."""
    window = _Window(phase, server, database, warmup, duration)

    async def user_loop(user: VirtualUser) -> None:
        while True:
            t0 = time.perf_counter()
            if t0 >= window.measure_to:
                return
            if not await window.send(call, user, t0):
                await asyncio.sleep(0.05)

    await window.run(asyncio.gather(*(user_loop(u) for u in users)))


async def run_open_phase(
    phase: Phase,
    users: list[VirtualUser],
    call: Call,
    server: ServerProcess,
    rate: float,
    warmup: float,
    duration: float,
    database: str,
) -> None:
    """Open loop: a request every ``1 / rate`` seconds, whatever the server's speed, each on
    the connection of an idle user (waiting for one if all are busy). A latency runs from
    the moment the request was due, so a server that falls behind shows it in full
    (no coordinated omission) instead of slowing the arrivals down."""
    window = _Window(phase, server, database, warmup, duration)
    idle: asyncio.Queue[VirtualUser] = asyncio.Queue()
    for user in users:
        idle.put_nowait(user)

    async def one(due: float) -> None:
        user = await idle.get()
        try:
            await window.send(call, user, due)
        finally:
            idle.put_nowait(user)

    async def arrivals() -> None:
        pending: set[asyncio.Task[None]] = set()
        due = window.start
        while due < window.measure_to:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            task = asyncio.ensure_future(one(due))
            pending.add(task)
            task.add_done_callback(pending.discard)
            due += 1.0 / rate
        await asyncio.gather(*pending)

    await window.run(arrivals())


class _Window:
    """One phase's measured window: what is sent in it, recorded; the CPU around it."""

    def __init__(
        self, phase: Phase, server: ServerProcess, database: str, warmup: float, duration: float
    ) -> None:
        self.phase, self.server, self.database = phase, server, database
        self.warmup, self.duration = warmup, duration
        self.start = time.perf_counter()
        self.measure_from = self.start + warmup
        self.measure_to = self.measure_from + duration
        self.latencies: list[float] = []
        self.completions: list[float] = []

    async def send(self, call: Call, user: VirtualUser, t0: float) -> bool:
        """``call(user)``, recorded as sent at ``t0``; False if it failed outright.

        Latencies and completions are of 2xx responses only. Every other status and every
        failed request is one of the phase's errors, in the warm-up too: a server that fails
        while it warms up is failing."""
        phase = self.phase
        try:
            response = await call(user)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            phase.failures[type(exc).__name__] += 1
            await user.app.close()
            await user.bare.close()
            self.server.check_alive()
            return False
        t1 = time.perf_counter()
        served = 200 <= response.status < 300  # anything else is an error, never a sample
        phase.statuses[response.status] += 1
        if not served and not phase.sample_error:
            phase.sample_error = f"HTTP {response.status}: {response.body[:300]!r}"
        if served and t0 >= self.measure_from:
            self.latencies.append(t1 - t0)
        if served and self.measure_from <= t1 <= self.measure_to:
            self.completions.append(t1)
        return True

    async def _snapshots(self) -> tuple[_Snapshot, _Snapshot]:
        await asyncio.sleep(max(0.0, self.measure_from - time.perf_counter()))
        first = _Snapshot(self.server, self.database)
        await asyncio.sleep(max(0.0, self.measure_to - time.perf_counter()))
        return first, _Snapshot(self.server, self.database)

    async def run(self, load: Awaitable[object]) -> None:
        """Run ``load`` (which stops sending at ``measure_to``) and add up the phase."""
        watch = asyncio.ensure_future(self._snapshots())
        try:
            async with asyncio.timeout(self.warmup + self.duration + 120):  # a hung server
                await load
        except BaseException:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
            raise
        first, last = await watch
        self.server.check_alive()
        self._add(first, last)

    def _add(self, first: _Snapshot, last: _Snapshot) -> None:
        phase = self.phase
        phase.latencies.extend(self.latencies)
        phase.completed += len(self.completions)
        phase.window += last.at - first.at
        phase.server_cpu += last.server - first.server
        phase.client_cpu += last.client - first.client
        phase.postgres_cpu += last.postgres - first.postgres
        phase.machine_busy += last.busy - first.busy
        phase.machine_total += last.total - first.total


async def _log_in(user: VirtualUser) -> None:
    body = json.dumps({"email": user.email, "password": PASSWORD}).encode()
    response = await user.app.request(
        "POST", "/api/v1/auth/login", [("Content-Type", "application/json")], body
    )
    cookie = response.cookie("telemed_session")
    if response.status != 200 or not cookie:
        raise BenchError(
            f"login as {user.email} failed: HTTP {response.status} {response.body[:300]!r}"
        )
    user.cookie = cookie
    user.csrf = json.loads(response.body)["csrf_token"]
    auth_headers = [("Cookie", f"telemed_session={cookie}"), ("Accept", "application/json")]
    user.list_request = user.app.build("GET", "/api/v1/consults", auth_headers)
    user.bare_request = user.bare.build(
        "GET", f"/consults?facility_id={user.facility_id}", [("Accept", "application/json")]
    )


def _create_body(user: VirtualUser, rng: random.Random, run: str) -> bytes:
    user.created += 1
    t = rng.choice(TEMPLATES)
    n = rng.randint(2, 9)
    age = rng.randint(*t.ages)
    body: dict[str, Any] = {
        "case": {
            "patient_ref": f"{BENCH_REF_PREFIX}{run}-{user.index}-{user.created}",
            "age_years": age,
            "sex": "female" if rng.random() < t.female_share else "male",
        },
        "specialty": t.specialty,
        "urgency": rng.choice(["routine", "urgent", "emergency"]),
        "mode": rng.choice(["video", "audio", "asynchronous"]),
        "language": rng.choice(["st", "en"]),
        "question": t.question.format(n=n),
        "history": t.history.format(n=n),
        "examination": t.examination,
        "current_treatment": t.treatment,
        "vitals": {"pulse_bpm": rng.randint(60, 130), "temperature_c": 37.2, "spo2_percent": 96},
    }
    return json.dumps(body).encode()


@dataclass
class LoadResult:
    app_list: Phase
    bare_list: Phase
    create: Phase
    login_seconds: float
    same_json: bool
    list_at_rate: Phase
    create_at_rate: Phase


async def run_load(
    fixture: Fixture,
    app: ServerProcess,
    bare: ServerProcess,
    *,
    concurrency: int,
    warmup: float,
    duration: float,
    rounds: int,
    rng: random.Random,
) -> LoadResult:
    # A signal cancels the load in order (the servers are stopped by the caller's ExitStack).
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    if task is not None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, task.cancel)
    users = []
    for i in range(concurrency):
        facility_id, code = rng.choice(fixture.facilities)
        users.append(
            VirtualUser(
                index=i,
                facility_id=facility_id,
                email=_clinician_email(code),
                app=Connection(HOST, app.port),
                bare=Connection(HOST, bare.port),
            )
        )
    started = time.perf_counter()
    await asyncio.gather(*(_log_in(u) for u in users))
    login_seconds = time.perf_counter() - started

    # Both servers must answer with the same JSON for the comparison to mean anything.
    first = users[0]
    from_app = await first.app.send(first.list_request)
    from_bare = await first.bare.send(first.bare_request)
    if from_app.status != 200 or from_bare.status != 200:
        raise BenchError(
            f"list failed: app HTTP {from_app.status} {from_app.body[:200]!r}, "
            f"bare HTTP {from_bare.status} {from_bare.body[:200]!r}"
        )
    same_json = json.loads(from_app.body) == json.loads(from_bare.body)

    async def app_list(user: VirtualUser) -> Response:
        return await user.app.send(user.list_request)

    async def bare_list(user: VirtualUser) -> Response:
        return await user.bare.send(user.bare_request)

    run = secrets.token_hex(3)

    async def create(user: VirtualUser) -> Response:
        headers = [
            ("Cookie", f"telemed_session={user.cookie}"),
            ("X-CSRF-Token", user.csrf),
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
        ]
        body = _create_body(user, rng, run)
        return await user.app.request("POST", "/api/v1/consults", headers, body)

    app_phase, bare_phase, create_phase = Phase("list (app)"), Phase("list (bare)"), Phase("create")
    share = duration / rounds
    database = make_url(fixture.url).database or ""
    for i in range(rounds):
        settle = warmup if i == 0 else min(warmup, 1.0)  # both servers are warm by then
        await run_phase(app_phase, users, app_list, app, settle, share, database)
        await run_phase(bare_phase, users, bare_list, bare, settle, share, database)
    await run_phase(create_phase, users, create, app, warmup, duration, database)
    list_open = Phase(f"list @{LIST_RATE:g}/s")
    create_open = Phase(f"create @{CREATE_RATE:g}/s")
    await run_open_phase(list_open, users, app_list, app, LIST_RATE, warmup, duration, database)
    await run_open_phase(create_open, users, create, app, CREATE_RATE, warmup, duration, database)
    for user in users:
        await user.app.close()
        await user.bare.close()
    return LoadResult(
        app_phase, bare_phase, create_phase, login_seconds, same_json, list_open, create_open
    )


# --------------------------------------------------------------------------------------
# Where the time goes, in process
# --------------------------------------------------------------------------------------


def breakdown(fixture: Fixture, iterations: int) -> dict[str, float]:
    """Mean milliseconds per call, one thread, of what a list request does besides HTTP:
    the auth query, the list SELECT alone (``repository.list_consults``, as the bare endpoint
    runs it), the whole list service (``service.list_visible``: the SELECT plus whatever else
    the service does, e.g. an audit row) and the JSON serialisation."""
    engine = make_engine(fixture.url, pool_size=2)
    facility_id, code = fixture.facilities[0]
    settings = Settings(env=Environment.test, database_url=fixture.url, data_dir=Path("."))
    try:
        with Session(engine, expire_on_commit=False) as session:
            logged_in = accounts.log_in(
                session, settings, email=_clinician_email(code), password=PASSWORD,
                address="127.0.0.1", now=datetime.now(UTC),
            )  # fmt: skip
            user: User = logged_in.user
            session.expunge(user)

        def select_one() -> None:
            with Session(engine) as session:
                session.execute(text("SELECT 1"))

        def auth_query() -> None:
            with Session(engine) as session:
                accounts.resolve_session(session, logged_in.token, datetime.now(UTC))

        visible = col(Consult.facility_id) == facility_id

        def list_query() -> None:
            with Session(engine) as session:
                repository.list_consults(session, visible, limit=PAGE_SIZE + 1, offset=0)

        def list_service() -> None:
            with Session(engine, expire_on_commit=False) as session:
                consults.list_visible(session, user, page=1, page_size=PAGE_SIZE)

        with Session(engine) as session:
            items = repository.list_consults(session, visible, limit=PAGE_SIZE, offset=0)

        def serialise() -> None:
            ConsultPage(
                items=[ConsultSummary.model_validate(c) for c in items],
                page=1,
                page_size=PAGE_SIZE,
                has_next=True,
            ).model_dump_json()

        timings = {}
        for name, fn in (
            ("select_1_ms", select_one),
            ("auth_query_ms", auth_query),
            ("list_query_ms", list_query),
            ("list_service_ms", list_service),
            ("serialise_ms", serialise),
        ):
            for _ in range(20):
                fn()
            t0 = time.perf_counter()
            for _ in range(iterations):
                fn()
            timings[name] = 1000 * (time.perf_counter() - t0) / iterations
        with engine.connect() as connection:
            plan = connection.execute(
                text(
                    "EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM consults WHERE facility_id = :f "
                    "ORDER BY created_at DESC, id DESC LIMIT :n"
                ),
                {"f": facility_id, "n": PAGE_SIZE + 1},
            ).scalar_one()
        timings["list_sql_in_postgres_ms"] = float(plan[0]["Execution Time"])
        return timings
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def _raise_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds the ExitStack: the servers are stopped


def _run_load(load: Coroutine[Any, Any, LoadResult]) -> LoadResult:
    """On uvloop when it is installed (uvicorn[standard] brings it): a cheaper client."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(load)
    return uvloop.run(load)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.api", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--consults", type=int, default=100_000, help="consults to seed")
    parser.add_argument(
        "--duration",
        type=float,
        default=20.0,
        help="measured seconds per kind of request (default 20)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=3.0,
        help="seconds of load before each measurement (default 3)",
    )
    parser.add_argument("--concurrency", type=int, default=32, help="virtual users (default 32)")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="worker processes of each server, the app's and the bare one's (default 2)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="alternate app and bare list this many times, to share out the load of other "
        "processes fairly (default 4)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="reuse the database if it already holds the N seeded consults",
    )
    parser.add_argument("--database", default="telemed_bench", help="database to (re)create")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the data and load")
    parser.add_argument(
        "--breakdown-iterations",
        type=int,
        default=300,
        help="calls per in-process timing (0: skip)",
    )
    # Internal: how the benchmark starts its servers.
    parser.add_argument("--serve", choices=["app", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--parent", type=int, help=argparse.SUPPRESS)
    add_arguments(parser, GOALS)
    args = parser.parse_args(argv)  # fmt: skip
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", args.database):
        parser.error("--database: lower-case letters, digits and underscores only")
    for name in ("consults", "concurrency", "rounds", "workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.duration <= 0 or args.warmup < 0:
        parser.error("--duration must be positive and --warmup not negative")
    if args.breakdown_iterations < 0:
        parser.error("--breakdown-iterations must not be negative")
    args.goals = tightened_goals(parser, GOALS, args.goal)
    return args


def _phases(result: LoadResult) -> list[Phase]:
    return [
        result.app_list,
        result.bare_list,
        result.create,
        result.list_at_rate,
        result.create_at_rate,
    ]


def judge(
    goals: Goals, result: LoadResult, *, consults: int, concurrency: int, workers: int
) -> None:
    """The goals of one run: errors always; latency and ratio only at the goals' load."""
    app_list, bare_list = result.app_list, result.bare_list
    goals.judge("errors", sum(phase.errors for phase in _phases(result)))
    if consults < GOAL_CONSULTS or concurrency < GOAL_CONCURRENCY or workers != GOAL_WORKERS:
        why = (
            f"the goal is for {GOAL_CONSULTS:,} consults at concurrency {GOAL_CONCURRENCY} "
            f"with {GOAL_WORKERS} workers; this run had {consults:,} at {concurrency} with "
            f"{workers}"
        )
        for name in ("list_p99_ms", "ratio", "list_p99_ms_at_150rps", "create_p99_ms_at_30rps"):
            goals.not_measured(name, why)
        return
    goals.judge("list_p99_ms", app_list.percentile_ms(99), "no list request answered 2xx")
    none = "no request of the open-loop phase answered 2xx"
    goals.judge("list_p99_ms_at_150rps", result.list_at_rate.percentile_ms(99), none)
    goals.judge("create_p99_ms_at_30rps", result.create_at_rate.percentile_ms(99), none)
    if not result.same_json:
        goals.not_measured("ratio", "the app and the bare endpoint answered different JSON")
    else:
        ratio = app_list.rps / bare_list.rps if bare_list.rps else math.nan
        goals.judge("ratio", ratio, "no 2xx list response from one of the servers")


def _report(
    fixture: Fixture, result: LoadResult, timings: dict[str, float], args: argparse.Namespace
) -> dict[str, Any]:
    app_list, bare_list, create = result.app_list, result.bare_list, result.create
    ratio = app_list.rps / bare_list.rps if bare_list.rps else math.nan
    # The same ratio from the server's CPU per request: what it would be with the machine to
    # ourselves, since a single worker is CPU-bound (insensitive to other processes' load).
    app_cpu = app_list.per_request_ms(app_list.server_cpu)
    cpu_ratio = bare_list.per_request_ms(bare_list.server_cpu) / app_cpu if app_cpu else math.nan
    print(f"logins: {args.concurrency} in {result.login_seconds:.2f} s (Argon2)")
    print(f"same JSON from the app and the bare endpoint: {'yes' if result.same_json else 'NO'}")
    for phase in _phases(result):
        print(phase.line())
        if phase.errors:
            print(f"  {phase.name}: statuses {dict(phase.statuses)}, failures "
                  f"{dict(phase.failures)}; e.g. {phase.sample_error}")  # fmt: skip
    if timings:
        parts = [
            f"{k.removesuffix('_ms').replace('_', ' ')} {v:.3f} ms" for k, v in timings.items()
        ]
        print("in process, one thread, mean per call: " + ", ".join(parts))
    list_p99 = app_list.percentile_ms(99)
    print(f"list/bare throughput ratio: {ratio:.2f} (from server CPU per request: "
          f"{cpu_ratio:.2f})")  # fmt: skip

    def r(value: float, digits: int = 2) -> float | None:
        return None if math.isnan(value) else round(value, digits)

    return {
        "list_p50_ms": r(app_list.percentile_ms(50)),
        "list_p99_ms": r(list_p99),
        "list_rps": r(app_list.rps, 1),
        "bare_list_p50_ms": r(bare_list.percentile_ms(50)),
        "bare_list_p99_ms": r(bare_list.percentile_ms(99)),
        "bare_list_rps": r(bare_list.rps, 1),
        "ratio": r(ratio, 3),
        "cpu_ratio": r(cpu_ratio, 3),
        "create_p50_ms": r(create.percentile_ms(50)),
        "create_p99_ms": r(create.percentile_ms(99)),
        "create_rps": r(create.rps, 1),
        "list_p50_ms_at_150rps": r(result.list_at_rate.percentile_ms(50)),
        "list_p99_ms_at_150rps": r(result.list_at_rate.percentile_ms(99)),
        "create_p50_ms_at_30rps": r(result.create_at_rate.percentile_ms(50)),
        "create_p99_ms_at_30rps": r(result.create_at_rate.percentile_ms(99)),
        "errors": sum(phase.errors for phase in _phases(result)),
        "list_errors": app_list.errors,
        "bare_list_errors": bare_list.errors,
        "create_errors": create.errors,
        "consults": fixture.consults,
        "facilities": len(fixture.facilities),
        "concurrency": args.concurrency,
        "workers": args.workers,
        "duration_s": args.duration,
        "server_cpu_ms_per_list": r(app_list.per_request_ms(app_list.server_cpu), 3),
        "server_cpu_ms_per_bare_list": r(bare_list.per_request_ms(bare_list.server_cpu), 3),
        "server_cpu_ms_per_create": r(create.per_request_ms(create.server_cpu), 3),
        "other_load_cores": r(max(p.other_cores for p in _phases(result))),
        **{k: round(v, 3) for k, v in timings.items()},
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        serve(args.serve, args.port, args.database_url, args.data_dir, args.parent, args.workers)
        return 0
    signal.signal(signal.SIGTERM, _raise_on_signal)
    signal.signal(signal.SIGHUP, _raise_on_signal)
    try:
        fixture = prepare_database(args.database, args.consults, args.keep, args.seed)
        how = "reused" if fixture.reused else "seeded"
        print(f"database {args.database}: {fixture.consults:,} consults over "
              f"{len(fixture.facilities)} facilities, {fixture.users} users "
              f"({how} in {fixture.seconds:.1f} s)")  # fmt: skip
        timings = breakdown(fixture, args.breakdown_iterations) if args.breakdown_iterations else {}
        with contextlib.ExitStack() as stack:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="telemed-bench-"))
            data_dir = Path(tmp)
            app = start_server("app", fixture.url, data_dir, args.workers, stack)
            bare = start_server("bare", fixture.url, data_dir, args.workers, stack)
            # Worker processes importing the application on a busy machine take a while.
            app.wait_healthy(timeout=60.0 * args.workers)
            bare.wait_healthy(timeout=60.0 * args.workers)
            print(f"servers: app on :{app.port} (pid {app.pid}), bare on :{bare.port} "
                  f"(pid {bare.pid}), {args.workers} worker(s) each; "
                  f"{args.concurrency} virtual users, "
                  f"{args.duration:g} s measured per kind, {args.warmup:g} s warm-up")  # fmt: skip
            result = _run_load(
                run_load(
                    fixture,
                    app,
                    bare,
                    concurrency=args.concurrency,
                    warmup=args.warmup,
                    duration=args.duration,
                    rounds=args.rounds,
                    rng=random.Random(args.seed),
                )
            )
            audited = audit_state(fixture.url)
    except BenchError as exc:
        print(f"bench.api: {exc}", file=sys.stderr)
        return 2
    except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
        print("bench.api: interrupted; the servers are stopped", file=sys.stderr)
        return 130
    except (RuntimeError, TimeoutError) as exc:  # a server died, never answered or hung
        print(f"bench.api: {exc}", file=sys.stderr)
        return 3
    summary = {**_report(fixture, result, timings, args), **audited}
    goals: Goals = args.goals
    judge(
        goals,
        result,
        consults=fixture.consults,
        concurrency=args.concurrency,
        workers=args.workers,
    )
    return finish(summary, goals, check=args.check)


if __name__ == "__main__":
    sys.exit(main())
