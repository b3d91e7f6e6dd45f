"""Benchmark: the coordinator's uptake dashboard over a million consults (issue 11).

Run from the repository root::

    python -m bench.dashboard [--consults 1000000] [--reseed] [--runs 20] [--check]

It needs PostgreSQL: a database of its own (``telemed_bench_dashboard`` on the local server
by default, ``--database-url`` otherwise), created and migrated with the project's
migrations, then seeded in set-based SQL (:mod:`bench._dashboard_seed`) with N consults and
everything the indicators read, over two years across 200 facilities. A database already
seeded with N consults is reused (the output says so); ``--reseed`` drops and seeds it again.

It times, in one run, by calling the service the page calls
(``telemed.uptake.service.dashboard``, which builds every table, chart and gap of the page):

* the full dashboard for the last twelve months by month, ``--runs`` times
  (``dashboard_p50_ms``, ``dashboard_p95_ms``; the first, cold run is ``dashboard_first_ms``);
* the same for one district (``district_p95_ms``);
* the naive way for the same range, ``--naive-runs`` times (``naive_ms``, the median): every
  indicator's fact rows loaded and counted per month in Python (``--naive-runs 0`` skips it:
  minutes at a million consults; ``naive_ms`` is then null);
* the full consults CSV (every consult requested in the two years, the export the consult
  list offers) streamed to /dev/null in a child process, whose rows per second
  (``csv_rows_per_s``) and peak resident memory (``csv_peak_rss_mb``, ``VmHWM``) it reports.

Readable lines first, then one JSON line last with the figures and the goals
(``dashboard_p95_ms`` <= 300 at a million consults; ``csv_peak_rss_mb`` <= 200).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, create_engine, make_url, select, text

from bench._dashboard_seed import FACILITIES, SPECIALISTS, seed, seeded_consults
from bench._goals import Goal, add_arguments, finish, tightened_goals
from bench.fhir_export import peak_rss_mb

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/telemed_bench_dashboard"
GOAL_CONSULTS = 1_000_000
GOAL_P95_MS = 300.0
GOALS = (Goal("dashboard_p95_ms", "<=", GOAL_P95_MS), Goal("csv_peak_rss_mb", "<=", 200.0))
COORDINATOR_ID = FACILITIES + SPECIALISTS + 1
YEAR = (date(2025, 12, 1), date(2026, 12, 1))  # the seed's last twelve Maseru months
ALL = (date(2024, 12, 1), date(2026, 12, 1))  # the whole seed
DISTRICT = "BD01"


def _say(line: str) -> None:
    print(line, flush=True)


def prepared(url: str, n: int, reseed: bool) -> Engine:
    """The benchmark's database with N consults: reused if seeded so, else made anew."""
    from telemed.db import make_engine
    from telemed.migrate import upgrade

    target = make_url(url)
    if target.get_backend_name() != "postgresql":
        raise SystemExit("bench.dashboard needs PostgreSQL (--database-url postgresql+psycopg://…)")
    name = target.database
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
        ).scalar()
    if exists and not reseed:
        engine = make_engine(url)
        have = seeded_consults(engine)
        if have == n:
            _say(f"reusing database {name}: already seeded with {n} consults (--reseed to redo)")
            admin.dispose()
            upgrade(engine)  # a migration added since the seed (the rollup's tables)
            return engine
        engine.dispose()
        _say(f"database {name} holds {have} consults, not {n}: seeding it again")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    engine = make_engine(url)
    started = time.perf_counter()
    upgrade(engine)
    _say(f"created and migrated {name} in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    seed(engine, n, _say)
    _say(f"seeded {n} consults in {time.perf_counter() - started:.1f} s")
    return engine


def rolled_up(engine: Engine) -> float | None:
    """The uptake rollup built as its job would, if the database has none: seconds it took
    (None: the database's rollup is reused; its wait picks are made if it has none)."""
    from telemed.uow import Units
    from telemed.uptake import rollup

    with Units(engine).one() as session:
        kept = rollup.state(session)
        if kept is not None:
            _say("reusing the uptake rollup already built")
            started = time.perf_counter()
            made = rollup.ensure_picks(session, kept)  # none on a rollup made before 0027
    if kept is not None:
        if made:
            _say(f"made its wait picks in {time.perf_counter() - started:.1f} s")
            _analyze(engine, "uptake_wait_picks")
        return None
    with Units(engine).one() as session:
        started = time.perf_counter()
        rollup.rebuild(session, _now(), _say, bulk=True)
    seconds = time.perf_counter() - started
    _analyze(engine, "uptake_facts, uptake_rollup, uptake_wait_picks")
    _say(f"built the uptake rollup in {seconds:.1f} s")
    return seconds


def _analyze(engine: Engine, tables: str) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"VACUUM ANALYZE {tables}")


def refresh_ms(engine: Engine) -> tuple[float, int]:
    """One run of the rollup's job body (a minute after the last): milliseconds, consults
    counted again."""
    from datetime import timedelta

    from telemed.uow import Units
    from telemed.uptake import rollup

    with Units(engine).one() as session:
        state = rollup.state(session)
        assert state is not None
        started = time.perf_counter()
        touched = rollup.refresh(session, state.as_of + timedelta(minutes=1))
    return (time.perf_counter() - started) * 1000, touched


def _filters(span: tuple[date, date], district: str | None = None) -> Any:
    from telemed.uptake.filters import Filters, Period

    return Filters(Period.month, span[0], span[1], district=district)


def _now() -> datetime:
    from telemed.uptake.filters import maseru_midnight

    return maseru_midnight(YEAR[1])


def time_dashboard(engine: Engine, filters: Any, runs: int) -> list[float]:
    """Milliseconds of each ``service.dashboard`` call, each in a session of its own (as a
    request has), the first (cold) one included."""
    from telemed.accounts.models import User
    from telemed.uow import new_session
    from telemed.uptake import service

    times = []
    for _ in range(runs):
        with new_session(engine) as session:
            user = session.get(User, COORDINATOR_ID)
            assert user is not None
            started = time.perf_counter()
            board = service.dashboard(session, user, filters, _now())
            times.append((time.perf_counter() - started) * 1000)
            assert board.tables
    return times


def naive(engine: Engine, filters: Any) -> tuple[float, int]:
    """Every indicator's fact rows of the range loaded and counted per month in Python
    (distinct subjects, sums, nearest-rank percentiles): milliseconds and rows loaded."""
    from telemed.uow import new_session
    from telemed.uptake import counting
    from telemed.uptake.indicators import INDICATORS, Measure
    from telemed.uptake.sql import nearest_rank

    loaded = 0
    started = time.perf_counter()
    with new_session(engine) as session:
        for ind in INDICATORS.values():
            rows = counting.filtered(ind, filters)
            subjects: dict[Any, set[Any]] = defaultdict(set)
            sums: dict[Any, float] = defaultdict(float)
            values: dict[Any, list[float]] = defaultdict(list)
            query = select(rows.c.bucket, rows.c.subject, rows.c.value, rows.c.category)
            for bucket, subject, value, category in session.execute(query):
                loaded += 1
                subjects[bucket, category].add(subject)
                if ind.measure is Measure.total:
                    sums[bucket] += value or 0
                elif ind.measure is Measure.duration and value is not None:
                    values[bucket].append(value)
            for got in values.values():
                got.sort()
                _ = [got[nearest_rank(len(got), p) - 1] for p in counting.PERCENTILES]
    return (time.perf_counter() - started) * 1000, loaded


def csv_child(url: str) -> None:
    """The full consults CSV as the consult list's download makes it, to /dev/null; prints
    its rows, seconds and peak RSS as JSON."""
    from telemed.accounts.models import User
    from telemed.db import make_engine
    from telemed.uow import Units, new_session
    from telemed.uptake import consults, csv

    engine = make_engine(url)
    rss_before = peak_rss_mb()
    started = time.perf_counter()
    units = Units(engine)
    with units.one() as session:
        user = session.get(User, COORDINATOR_ID)
        assert user is not None
        statement = consults.consults_export(session, user, _filters(ALL), "requests")
    rows = 0
    with new_session(engine) as session, open(os.devnull, "wb") as out:
        for chunk in csv.encode(consults.CSV_COLUMNS, consults.export_rows(session, statement)):
            rows += chunk.count(b"\n")
            out.write(chunk)
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "rows": rows - 1,  # the header
                "seconds": seconds,
                "rss_before_mb": rss_before,
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard", description=__doc__)
    parser.add_argument("--consults", type=int, default=GOAL_CONSULTS)
    parser.add_argument("--database-url", default=DEFAULT_URL, help="PostgreSQL, its own database")
    parser.add_argument("--reseed", action="store_true", help="seed again even if seeded")
    parser.add_argument("--runs", type=int, default=20, help="timed dashboards per filter")
    parser.add_argument(
        "--naive-runs", type=int, default=2, help="0 skips the naive baseline (naive_ms null)"
    )
    parser.add_argument("--csv-child", metavar="URL", help=argparse.SUPPRESS)
    add_arguments(parser, GOALS)
    args = parser.parse_args(argv)
    if args.csv_child:
        csv_child(args.csv_child)
        return 0
    if args.consults < 1 or args.runs < 1 or args.naive_runs < 0:
        parser.error("--consults and --runs must be at least 1, --naive-runs at least 0")
    goals = tightened_goals(parser, GOALS, args.goal)

    loadavg_start = os.getloadavg()
    engine = prepared(args.database_url, args.consults, args.reseed)
    build_s = rolled_up(engine)
    refresh, touched = refresh_ms(engine)
    _say(f"rollup refresh (the job's run, nothing new): {refresh:.0f} ms, {touched} consults")
    year = _filters(YEAR)
    times = time_dashboard(engine, year, args.runs + 1)
    first, warm = times[0], times[1:]
    p50, p95 = statistics.median(warm), _pct(warm, 0.95)
    _say(f"dashboard, one year by month: first {first:.0f} ms, p50 {p50:.0f} ms, p95 {p95:.0f} ms")
    district = time_dashboard(engine, _filters(YEAR, DISTRICT), args.runs + 1)[1:]
    district_p50, district_p95 = statistics.median(district), _pct(district, 0.95)
    _say(f"dashboard, district {DISTRICT}: p50 {district_p50:.0f} ms, p95 {district_p95:.0f} ms")
    naive_runs = [naive(engine, year) for _ in range(args.naive_runs)]
    naive_ms = statistics.median(ms for ms, _rows in naive_runs) if naive_runs else None
    if naive_runs:
        _say(f"naive (rows counted in Python): {naive_ms:.0f} ms, {naive_runs[0][1]} rows loaded")
    engine.dispose()

    child = subprocess.run(
        [sys.executable, "-m", "bench.dashboard", "--csv-child", args.database_url],
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode != 0:
        print(child.stderr, file=sys.stderr)
        return 3
    csv_run = json.loads(child.stdout.strip().splitlines()[-1])
    rows_per_s = csv_run["rows"] / csv_run["seconds"] if csv_run["seconds"] else float("nan")
    _say(
        f"consults CSV: {csv_run['rows']} rows in {csv_run['seconds']:.1f} s "
        f"({rows_per_s:.0f} rows/s), peak RSS {csv_run['peak_rss_mb']:.0f} MB"
    )
    if args.consults < GOAL_CONSULTS:
        goals.not_measured(
            "dashboard_p95_ms",
            f"the goal is for {GOAL_CONSULTS} consults; this run had {args.consults}",
        )
    else:
        goals.judge("dashboard_p95_ms", p95)
    goals.judge("csv_peak_rss_mb", csv_run["peak_rss_mb"])
    summary = {
        "benchmark": "dashboard",
        "measured": "telemed.uptake.service.dashboard in process (no HTTP)",
        "consults": args.consults,
        "runs": args.runs,
        "dashboard_first_ms": round(first, 1),
        "dashboard_p50_ms": round(p50, 1),
        "dashboard_p95_ms": round(p95, 1),
        "district_p50_ms": round(district_p50, 1),
        "district_p95_ms": round(district_p95, 1),
        "naive_ms": None if naive_ms is None else round(naive_ms, 1),
        "rollup_build_s": None if build_s is None else round(build_s, 1),
        "rollup_refresh_ms": round(refresh, 1),
        "naive_rows": naive_runs[0][1] if naive_runs else None,
        "csv_rows": csv_run["rows"],
        "csv_rows_per_s": round(rows_per_s, 1),
        "csv_peak_rss_mb": round(csv_run["peak_rss_mb"], 1),
        "csv_rss_at_start_mb": round(csv_run["rss_before_mb"], 1),
        "goal_dashboard_p95_ms": GOAL_P95_MS,
        "met": goals.met,
        "loadavg_start": [round(x, 2) for x in loadavg_start],
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return finish(summary, goals, check=args.check)


if __name__ == "__main__":
    sys.exit(main())
