"""The fairness rule (scheduling/fairness.py), hand-checked, and the Gini measure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scheduling import (
    FairnessRule,
    MatchingProblem,
    Request,
    Slot,
    Specialist,
    Urgency,
    balance,
    check_assignments,
    load_gini,
    optimise,
)
from scheduling.errors import InvalidInstanceError
from scheduling.fairness import gini

T0 = datetime(2026, 6, 1, 18, 0, tzinfo=UTC)


def doctor(name: str, load: int = 0, emergencies: int = 0) -> Specialist:
    return Specialist(
        name,
        frozenset({"cardiology"}),
        frozenset({"en"}),
        cap=20,
        load=load,
        verified=True,
        emergencies=emergencies,
    )


def slot(name: str, owner: str, hours: float) -> Slot:
    start = T0 + timedelta(hours=hours)
    return Slot(name, owner, start, start + timedelta(minutes=30))


def ask(name: str, urgency: Urgency) -> Request:
    created = T0 - timedelta(hours=1)
    deadline = created + {"emergency": 48, "urgent": 168, "routine": 336}[urgency] * timedelta(
        hours=1
    )
    return Request(name, "cardiology", "en", urgency, created, deadline)


def solve(requests: list[Request], slots: list[Slot], people: list[Specialist]) -> dict[str, str]:
    problem = MatchingProblem(requests, slots, people)
    fair = balance(problem, optimise(problem))
    check_assignments(fair.assignments, requests, slots, people)
    assert fair.matched == optimise(problem).matched
    return {a.request_id: a.specialist_id for a in fair.assignments}


def test_within_the_tolerance_the_least_loaded_specialist_gets_it() -> None:
    # The optimiser prefers the busy one (10 h of routine waiting costs more than 3 loads).
    people = [doctor("busy", load=3), doctor("free")]
    slots = [slot("a", "busy", 0), slot("b", "free", 10)]
    problem = MatchingProblem([ask("r", Urgency.ROUTINE)], slots, people)
    assert [a.specialist_id for a in optimise(problem).assignments] == ["busy"]
    assert solve([ask("r", Urgency.ROUTINE)], slots, people) == {"r": "free"}


def test_beyond_the_tolerance_or_without_enough_gain_it_stays() -> None:
    later = [slot("a", "busy", 0), slot("b", "free", 73)]  # routine tolerance is 3 days
    people = [doctor("busy", load=3), doctor("free")]
    assert solve([ask("r", Urgency.ROUTINE)], later, people) == {"r": "busy"}
    close = [doctor("busy"), doctor("free")]  # 1 against 0: moving would only swap them
    slots = [slot("a", "busy", 0), slot("b", "free", 1)]
    problem = MatchingProblem([ask("r", Urgency.ROUTINE)], slots, close)
    before = optimise(problem)
    assert solve([ask("r", Urgency.ROUTINE)], slots, close) == {
        a.request_id: a.specialist_id for a in before.assignments
    }


def test_an_emergency_tolerance_is_half_an_hour() -> None:
    people = [doctor("busy", load=5), doctor("free")]
    near = [slot("a", "busy", 0), slot("b", "free", 0.5)]
    far = [slot("a", "busy", 0), slot("b", "free", 1)]
    assert solve([ask("e", Urgency.EMERGENCY)], near, people) == {"e": "free"}
    assert solve([ask("e", Urgency.EMERGENCY)], far, people) == {"e": "busy"}


def test_no_more_than_three_emergencies_a_week_unless_nobody_else_can() -> None:
    slots = [slot("a", "star", 0), slot("b", "other", 20)]  # 20 h later, before the deadline
    people = [doctor("star", emergencies=3), doctor("other")]
    assert solve([ask("e", Urgency.EMERGENCY)], slots, people) == {"e": "other"}
    # The other one is at the limit too: nobody else can, so the star keeps it.
    people = [doctor("star", emergencies=3), doctor("other", emergencies=3)]
    assert solve([ask("e", Urgency.EMERGENCY)], slots, people) == {"e": "star"}
    # Switched off, the rule leaves the emergency where the optimiser put it.
    people = [doctor("star", emergencies=3), doctor("other")]
    problem = MatchingProblem([ask("e", Urgency.EMERGENCY)], slots, people)
    kept = balance(problem, optimise(problem), FairnessRule(max_emergencies=None))
    assert [a.specialist_id for a in kept.assignments] == ["star"]


def test_gini_of_load() -> None:
    assert gini([2, 2, 2]) == 0.0
    assert gini([0, 0, 3]) == pytest.approx(2 / 3)
    assert gini([]) == 0.0
    people = [
        doctor("a", load=2),
        doctor("b"),
        Specialist("c", frozenset({"x"}), frozenset({"en"}), cap=1),
    ]
    slots = [slot("s", "a", 0), slot("t", "b", 0), slot("u", "c", 0)]
    problem = MatchingProblem([], slots, people)
    # c is not verified, so not counted: loads (2, 0) over two specialists.
    assert load_gini(problem, optimise(problem)) == pytest.approx(0.5)


def test_a_bad_rule_is_refused() -> None:
    with pytest.raises(InvalidInstanceError):
        FairnessRule(max_emergencies=-1)
    with pytest.raises(InvalidInstanceError):
        FairnessRule(tolerance={Urgency.EMERGENCY: timedelta(minutes=-1)})
    with pytest.raises(InvalidInstanceError):
        Specialist("p", frozenset({"x"}), frozenset({"en"}), cap=1, emergencies=-1)
