"""The benchmarks' goals: judged met, missed or not measured, carried in the JSON line, and
turned into the exit status by ``--check``, so that a script can rely on a green run.

No timing is asserted: the goals whose outcome a test needs are made impossible with
``--goal`` (which may only tighten a goal), or are skipped phases, or are correctness figures
(errors, refusals) that do not depend on the machine's speed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import api
from bench import signaling as bench_signaling
from bench._goals import EXIT_GOALS, Goal, Goals, add_arguments, finish, tightened_goals
from bench._http import Connection, Response, ServerProcess, free_port

ROOT = Path(__file__).resolve().parent.parent
GOALS = (Goal("p99_ms", "<=", 50.0), Goal("ratio", ">=", 0.8), Goal("errors", "<=", 0))


def _json_line(stdout: str) -> dict[str, Any]:
    """The last line, which every benchmark prints as JSON."""
    return dict(json.loads(stdout.strip().splitlines()[-1]))


def _bench(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# ------------------------------------------------------------------ the helper


def test_each_goal_is_met_missed_or_not_measured_with_value_and_target() -> None:
    goals = Goals(GOALS)
    goals.judge("p99_ms", 12.5)
    goals.judge("ratio", 0.75)
    goals.not_measured("errors", "phase skipped (--create 0)")

    report = goals.to_json()

    assert report["goals"] == {
        "p99_ms": {"status": "met", "measured": 12.5, "comparison": "<=", "target": 50.0},
        "ratio": {"status": "missed", "measured": 0.75, "comparison": ">=", "target": 0.8},
        "errors": {
            "status": "not measured",
            "measured": None,
            "comparison": "<=",
            "target": 0,
            "reason": "phase skipped (--create 0)",
        },
    }
    assert report["goals_met"] is False


def test_goals_met_only_when_every_goal_is_met() -> None:
    goals = Goals(GOALS)
    goals.judge("p99_ms", 50.0)  # on the target is met
    goals.judge("ratio", 0.8)
    goals.judge("errors", 0)
    assert goals.met
    assert goals.to_json()["goals_met"] is True

    goals.judge("errors", 1)
    assert not goals.met


def test_a_goal_left_unjudged_or_nan_is_not_measured_never_dropped() -> None:
    goals = Goals(GOALS)
    goals.judge("p99_ms", float("nan"))
    goals.judge("ratio", 0.9)

    entries = goals.to_json()["goals"]

    assert set(entries) == {"p99_ms", "ratio", "errors"}
    assert entries["p99_ms"]["status"] == "not measured"
    assert entries["errors"] == {
        "status": "not measured",
        "measured": None,
        "comparison": "<=",
        "target": 0,
        "reason": "not judged by the benchmark",
    }
    assert not goals.met


def test_not_measured_needs_a_reason() -> None:
    with pytest.raises(ValueError, match="say why"):
        Goals(GOALS).judge("ratio", None)


def _finish(goals: Goals, check: bool, capsys: pytest.CaptureFixture[str]) -> tuple[int, Any]:
    status = finish({"figure": float("nan"), "n": 3}, goals, check=check)
    return status, _json_line(capsys.readouterr().out)


def test_check_makes_a_missed_or_unmeasured_goal_the_exit_status(
    capsys: pytest.CaptureFixture[str],
) -> None:
    missed = Goals(GOALS)
    missed.judge("p99_ms", 80.0)
    missed.judge("ratio", 0.9)
    missed.judge("errors", 0)
    unmeasured = Goals(GOALS)
    unmeasured.judge("p99_ms", 10.0)
    unmeasured.judge("ratio", 0.9)
    all_met = Goals(GOALS)
    for name, value in (("p99_ms", 10.0), ("ratio", 0.9), ("errors", 0)):
        all_met.judge(name, value)

    assert _finish(missed, True, capsys)[0] == EXIT_GOALS
    assert _finish(unmeasured, True, capsys)[0] == EXIT_GOALS
    assert _finish(all_met, True, capsys)[0] == 0
    # Without --check the verdict is printed and the run exits 0 (a person reads it).
    status, line = _finish(missed, False, capsys)
    assert status == 0
    assert line["goals"]["p99_ms"]["status"] == "missed"
    assert line["goals_met"] is False
    assert line["figure"] is None  # NaN would not be JSON
    assert line["n"] == 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench")
    add_arguments(parser, GOALS)
    return parser


def test_goal_option_tightens_a_target() -> None:
    parser = _parser()
    args = parser.parse_args(["--goal", "p99_ms=10", "--goal", "ratio=0.95"])

    goals = tightened_goals(parser, GOALS, args.goal)
    goals.judge("p99_ms", 20.0)  # would meet 50, misses 10
    goals.judge("ratio", 0.9)  # would meet 0.8, misses 0.95

    entries = goals.to_json()["goals"]
    assert entries["p99_ms"]["target"] == 10.0
    assert entries["p99_ms"]["status"] == "missed"
    assert entries["ratio"]["target"] == 0.95
    assert entries["ratio"]["status"] == "missed"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("p99_ms=500", "can only tighten"),
        ("ratio=0.1", "can only tighten"),
        ("latency=1", "NAME one of"),
        ("p99_ms", "NAME=TARGET"),
        ("p99_ms=fast", "must be a number"),
        ("p99_ms=nan", "can only tighten"),
    ],
)
def test_goal_option_refuses_to_loosen_or_guess(
    value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = _parser()
    args = parser.parse_args(["--goal", value])

    with pytest.raises(SystemExit) as exited:
        tightened_goals(parser, GOALS, args.goal)

    assert exited.value.code == 2
    assert message in capsys.readouterr().err


# ------------------------------------------------------------------ bench.matching, for real

SMALL_MATCHING = ("bench.matching", "--requests", "300", "--specialists", "60", "--repeat", "1")


def test_matching_check_exits_non_zero_on_a_missed_goal() -> None:
    # The optimiser's cost can never be 1 % below the exact optimum: a gap <= -0.01 is missed.
    checked = _bench(*SMALL_MATCHING, "--goal", "optimal_gap=-0.01", "--check")
    unchecked = _bench(*SMALL_MATCHING, "--goal", "optimal_gap=-0.01")

    assert checked.returncode == EXIT_GOALS, checked.stderr
    assert unchecked.returncode == 0, unchecked.stderr
    for run in (checked, unchecked):
        line = _json_line(run.stdout)
        goals = line["goals"]
        assert set(goals) == {
            "seconds_total",
            "cost_ratio",
            "optimal_gap",
            "optimal_gap_app",
            "fairness_gini_ratio",
        }
        assert goals["optimal_gap_app"]["measured"] == pytest.approx(
            line["optimal_gap_app"], abs=1e-6
        )
        # The fairness rule spreads the load more evenly than greedy on the same batch.
        assert line["fairness_gini"] < line["greedy_fairness_gini"]
        assert goals["fairness_gini_ratio"]["status"] == "met"
        assert goals["optimal_gap"]["status"] == "missed"
        assert goals["optimal_gap"]["target"] == -0.01
        assert goals["optimal_gap"]["measured"] == pytest.approx(line["optimal_gap"], abs=1e-6)
        # 300 requests say nothing about the runtime goal's 10,000.
        assert goals["seconds_total"]["status"] == "not measured"
        assert "10,000 requests" in goals["seconds_total"]["reason"]
        assert line["goals_met"] is False


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--requests", "3"), "--requests must be at least 10"),
        (("--chain-step", "0"), "--chain-step must be at least 1"),
        (("--goal", "cost_ratio=0.99"), "can only tighten"),
        (("--requests", "many"), "invalid int value"),
    ],
)
def test_matching_usage_errors_exit_2_with_a_message(argv: tuple[str, ...], message: str) -> None:
    run = _bench("bench.matching", *argv)

    assert run.returncode == 2
    assert message in run.stderr
    assert run.stdout == ""


# ------------------------------------------------------------------ bench.signaling

NO_PHASES = {"connections": "0", "pairs": "0", "rate": "0", "setups": "0", "resumes": "0"}


def _signaling(**phases: str) -> tuple[str, ...]:
    options = {**NO_PHASES, **phases}
    return ("bench.signaling", *(f"--{k}={v}" for k, v in options.items()))


def test_signaling_skipped_phases_list_their_goals_as_not_measured() -> None:
    checked = _bench(*_signaling(), "--check")
    unchecked = _bench(*_signaling())

    assert checked.returncode == EXIT_GOALS, checked.stderr
    assert unchecked.returncode == 0, unchecked.stderr
    goals = _json_line(unchecked.stdout)["goals"]
    assert set(goals) == {g.name for g in bench_signaling.GOALS}
    for option, names in bench_signaling.PHASE_GOALS.items():
        for name in names:
            assert goals[name]["status"] == "not measured"
            assert goals[name]["reason"] == f"phase skipped (--{option} 0)"


def test_signaling_relay_rate_keeps_under_the_real_rate_limit() -> None:
    # Five pairs paced at 90 % of the limit: the server refuses nothing, and since the pacing
    # (not the server) capped the rate, the ratio is reported as not measured, not as met.
    run = _bench(*_signaling(pairs="5"), "--duration=1", "--rounds=1")

    assert run.returncode == 0, run.stderr
    line = _json_line(run.stdout)
    for suffix in ("", "_app"):  # the standalone server, and the hub as the app mounts it
        assert line[f"relay_refused{suffix}"] == 0
        assert line["goals"][f"relay_refused{suffix}"]["status"] == "met"
        assert line[f"relay_held_back{suffix}"] > bench_signaling.HELD_BACK_MAX
        ratio = line["goals"][f"relay_ratio{suffix}"]
        assert ratio["status"] == "not measured"
        assert "the rate limit, not the server, set the rate" in ratio["reason"]


def test_signaling_refuses_a_latency_rate_over_the_limit() -> None:
    run = _bench("bench.signaling", "--rate=20000", "--latency-pairs=100")

    assert run.returncode == 2
    assert "over 45 (90 % of the server's rate limit)" in run.stderr


async def test_signaling_lost_messages_count_in_the_percentiles() -> None:
    # One pair at 200 messages/s per socket, four times the server's limit: the server refuses
    # most of them (then closes the sockets), and every refused one is lost.
    secret = "bench-test-secret"
    drain = 0.5
    with bench_signaling.ServerProcess.start("ours", secret) as server:
        samples, sent, lost = await bench_signaling.latency(
            server.port, secret, pairs=1, rate=400, duration=1.0, drain=drain
        )

    assert lost > sent * 0.1
    assert len(samples) == sent  # the lost ones are in, not left out
    # A lost message counts with at least the time it was waited for after the last send.
    assert sum(1 for s in samples if s >= drain * 1000) >= lost
    assert bench_signaling.percentile(samples, 99) >= drain * 1000


# ------------------------------------------------------------------ bench.api's accounting


async def test_api_phase_counts_only_2xx_and_any_error_misses_the_goals(tmp_path: Path) -> None:
    # A plain file server answers 200 for the directory and 404 for a missing file; the phase
    # alternates the two.
    host, port = "127.0.0.1", free_port()
    server = ServerProcess(
        "files",
        [sys.executable, "-m", "http.server", "--bind", host, "--protocol", "HTTP/1.1",
         "--directory", str(tmp_path), str(port)],
        host=host,
        port=port,
        log_path=tmp_path / "server.log",
    )  # fmt: skip
    user = api.VirtualUser(
        index=0, facility_id=0, email="", app=Connection(host, port), bare=Connection(host, port)
    )

    async def call(u: api.VirtualUser) -> Response:
        u.created += 1
        return await u.app.request("GET", "/" if u.created % 2 else "/missing")

    phase = api.Phase("mixed")
    with server:
        server.wait_healthy("/")
        await api.run_phase(phase, [user], call, server, 0.0, 0.5, "none")
        await user.app.close()

    assert phase.statuses[200] > 0
    assert phase.statuses[404] > 0
    assert len(phase.latencies) == phase.statuses[200]
    assert phase.completed <= phase.statuses[200]
    assert phase.errors == phase.statuses[404] + sum(phase.failures.values())

    goals = Goals(api.GOALS)
    empty = api.Phase("empty")  # the open-loop phases: nothing sent, nothing failed
    result = api.LoadResult(
        phase, phase, phase, login_seconds=0.0, same_json=True,
        list_at_rate=empty, create_at_rate=empty,
    )  # fmt: skip
    api.judge(
        goals,
        result,
        consults=api.GOAL_CONSULTS,
        concurrency=api.GOAL_CONCURRENCY,
        workers=api.GOAL_WORKERS,
    )
    entries = goals.to_json()
    assert entries["goals"]["errors"]["status"] == "missed"
    assert entries["goals"]["errors"]["measured"] == 3 * phase.errors
    assert entries["goals_met"] is False


def test_api_goals_of_a_lighter_run_are_not_measured() -> None:
    goals = Goals(api.GOALS)
    empty = api.Phase("empty")
    result = api.LoadResult(
        empty, empty, empty, login_seconds=0.0, same_json=True,
        list_at_rate=empty, create_at_rate=empty,
    )  # fmt: skip

    api.judge(
        goals, result, consults=1000, concurrency=api.GOAL_CONCURRENCY, workers=api.GOAL_WORKERS
    )

    entries = goals.to_json()["goals"]
    assert entries["errors"]["status"] == "met"
    for name in ("list_p99_ms", "ratio"):
        assert entries[name]["status"] == "not measured"
        assert "100,000 consults" in entries[name]["reason"]
