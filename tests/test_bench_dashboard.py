"""``python -m bench.dashboard`` end to end on a tiny PostgreSQL database (300 consults): it seeds, times
the dashboard, the naive counting and the consults CSV, and prints its JSON line last; a
second run reuses the seeded database. No timing is asserted (the dashboard goal is for a
million consults and is "not measured" here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import throwaway_postgres

ROOT = Path(__file__).resolve().parent.parent
N = 300  # tiny: the run checks the plumbing, not the speed
KEYS = {
    "consults",
    "dashboard_p50_ms",
    "dashboard_p95_ms",
    "district_p95_ms",
    "naive_ms",
    "csv_rows_per_s",
    "csv_peak_rss_mb",
    "goal_dashboard_p95_ms",
    "met",
}


def _run(url: str, *extra: str) -> tuple[str, dict[str, Any]]:
    argv = ["--consults", str(N), "--database-url", url, "--runs", "1", "--naive-runs", "1"]
    run = subprocess.run(
        [sys.executable, "-m", "bench.dashboard", *argv, *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout, json.loads(run.stdout.strip().splitlines()[-1])


def test_dashboard_bench_seeds_times_and_reuses_its_database() -> None:
    with throwaway_postgres("telemed_bench_dashboard") as url:
        out, figures = _run(url)
        again, second = _run(url)

    assert f"seeded {N} consults" in out
    assert "built the uptake rollup" in out
    assert figures.keys() >= KEYS
    assert figures["consults"] == N
    assert figures["rollup_build_s"] is not None
    assert figures["goal_dashboard_p95_ms"] == 300
    assert 0.95 * N <= figures["csv_rows"] <= N  # every consult requested: all but drafts
    assert figures["naive_rows"] > figures["consults"]  # events, offers, calls: real work
    assert figures["goals"]["dashboard_p95_ms"]["status"] == "not measured"
    assert figures["goals"]["csv_peak_rss_mb"]["measured"] > 0
    assert figures["met"] is False  # a goal not measured is not met
    assert "reusing database" in again
    assert f"seeded {N} consults in" not in again
    assert "reusing the uptake rollup" in again
    assert second["rollup_build_s"] is None
    assert second["csv_rows"] == figures["csv_rows"]
