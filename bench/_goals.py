"""The goals of a benchmark, judged the same way by every benchmark, and ``--check``.

A goal is a name, a comparison and a target (``list_p99_ms <= 100``), written in the
benchmark's own code. After a run the benchmark judges every one of its goals, and each
comes out ``met``, ``missed`` or ``not measured`` (the phase was skipped, the run was smaller
than the load the goal is about, or the figure could not be taken), always with the measured
value, the target and, when not measured, the reason. The last JSON line carries them all
under ``goals``, and ``goals_met``, which is true only if every goal is met.

A goal not measured makes ``goals_met`` false. A run that did not look has not shown that the
goal holds, and a skipped phase must not read as a pass; the entry says why it was not
measured, so a reduced run is still easy to read. A goal the benchmark forgot to judge is
reported as not measured too, never dropped.

``--check`` turns the verdict into the exit status, for scripts: 0 when every goal is met, 1
when one is missed or not measured. Without it a benchmark exits 0 after printing (a
measurement run, read by a person). A usage error exits 2 with a message (argparse); a run
that fails outright has its own non-zero status.

``--goal NAME=TARGET`` tightens a goal for one run (a test that needs a goal missed, or a
stricter budget to try). It cannot loosen one: a run must not pass by moving its own
target, so the goals stay the ones in the code.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Comparison = Literal["<=", ">="]
Status = Literal["met", "missed", "not measured"]

EXIT_GOALS = 1  # with --check: a goal missed or not measured


@dataclass(frozen=True, slots=True)
class Goal:
    """``name comparison target``, e.g. ``Goal("relay_p99_ms", "<=", 50.0)``."""

    name: str
    comparison: Comparison
    target: float

    def holds(self, value: float) -> bool:
        return value <= self.target if self.comparison == "<=" else value >= self.target

    def __str__(self) -> str:
        return f"{self.name} {self.comparison} {self.target:g}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """A goal as judged on one run; ``measured`` None means not measured (see ``reason``)."""

    goal: Goal
    measured: float | None
    reason: str = ""

    @property
    def status(self) -> Status:
        if self.measured is None:
            return "not measured"
        return "met" if self.goal.holds(self.measured) else "missed"

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "status": self.status,
            "measured": _shown(self.measured),
            "comparison": self.goal.comparison,
            "target": self.goal.target,
        }
        if self.reason:
            entry["reason"] = self.reason
        return entry

    def line(self) -> str:
        if self.measured is None:
            return f"goal {self.goal}: not measured ({self.reason})"
        verdict = "met" if self.status == "met" else "MISSED"
        return f"goal {self.goal}: {verdict} ({self.measured:g})"


def _shown(value: float | None) -> float | None:
    """Six significant digits: readable, and enough to see why a near miss missed."""
    if value is None or isinstance(value, int) or not math.isfinite(value):
        return value
    return float(f"{value:.6g}")


class Goals:
    """One run's goals: the targets (perhaps tightened by ``--goal``), then their judgements."""

    def __init__(self, goals: Sequence[Goal], tightened: Mapping[str, float] | None = None):
        targets = dict(tightened or {})
        self._goals = {
            g.name: Goal(g.name, g.comparison, targets.pop(g.name, g.target)) for g in goals
        }
        if targets:
            raise ValueError(f"no such goal: {', '.join(sorted(targets))}")
        self._outcomes: dict[str, Outcome] = {}

    def judge(self, name: str, measured: float | None, reason: str = "") -> None:
        """Record what the run measured for goal ``name``; None (with a reason) if it did not.

        A NaN is not a measurement (e.g. a ratio over zero requests): it is recorded as not
        measured, so that it can neither meet nor miss a goal by the accident of comparisons.
        """
        goal = self._goals[name]  # a KeyError here is a typo in the benchmark
        if measured is not None and math.isnan(measured):
            measured, reason = None, reason or "no value (NaN)"
        if measured is None and not reason:
            raise ValueError(f"goal {name}: say why it was not measured")
        self._outcomes[name] = Outcome(goal, measured, "" if measured is not None else reason)

    def not_measured(self, name: str, reason: str) -> None:
        self.judge(name, None, reason)

    @property
    def outcomes(self) -> list[Outcome]:
        return [
            self._outcomes.get(name) or Outcome(goal, None, "not judged by the benchmark")
            for name, goal in self._goals.items()
        ]

    @property
    def met(self) -> bool:
        return all(o.status == "met" for o in self.outcomes)

    def to_json(self) -> dict[str, Any]:
        return {
            "goals": {o.goal.name: o.to_json() for o in self.outcomes},
            "goals_met": self.met,
        }


def add_arguments(parser: argparse.ArgumentParser, goals: Sequence[Goal]) -> None:
    """``--check`` and ``--goal NAME=TARGET`` for a benchmark with these goals."""
    names = ", ".join(str(g) for g in goals)
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 unless every goal is met (a goal not measured counts as not met)",
    )
    parser.add_argument(
        "--goal",
        action="append",
        default=[],
        metavar="NAME=TARGET",
        help=f"tighten a goal for this run (never loosen); the goals: {names}",
    )


def tightened_goals(
    parser: argparse.ArgumentParser, goals: Sequence[Goal], values: Sequence[str]
) -> Goals:
    """The run's goals with each ``--goal`` applied; a bad one is a usage error (exit 2)."""
    by_name = {g.name: g for g in goals}
    targets: dict[str, float] = {}
    for value in values:
        name, sep, number = value.partition("=")
        goal = by_name.get(name.strip())
        if not sep or goal is None:
            parser.error(
                f"--goal {value!r}: expected NAME=TARGET with NAME one of {', '.join(by_name)}"
            )
        try:
            target = float(number)
        except ValueError:
            parser.error(f"--goal {value!r}: the target must be a number")
        if not math.isfinite(target) or not goal.holds(target):
            parser.error(
                f"--goal {value!r}: can only tighten {goal}, not loosen it (a run must not pass "
                "by moving its own target)"
            )
        targets[goal.name] = target
    return Goals(goals, targets)


def _finite(value: Any) -> Any:
    """The value with every NaN or infinity replaced by None: the JSON line stays JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def finish(summary: Mapping[str, Any], goals: Goals, *, check: bool) -> int:
    """Print each goal's line, then the JSON line last; return the exit status."""
    for outcome in goals.outcomes:
        print(outcome.line())
    print(json.dumps(_finite({**summary, **goals.to_json()}), allow_nan=False))
    return EXIT_GOALS if check and not goals.met else 0
