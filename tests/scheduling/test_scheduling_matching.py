"""Hand-checked matching cases: eligibility, greedy, optimiser, exact, costs, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scheduling import (
    Assignment,
    CostModel,
    MatchingProblem,
    Pruning,
    Request,
    SchedulingError,
    Slot,
    Specialist,
    Urgency,
    check_assignments,
    cost_breakdown,
    eligible,
    exact,
    exact_assign,
    greedy,
    greedy_assign,
    optimise,
    optimise_assign,
    total_cost,
)
from scheduling.errors import InvalidAssignmentError, InvalidInstanceError

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
NO_AGE = CostModel(age_neutral=False)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def request(
    rid: str,
    specialty: str = "paeds",
    urgency: Urgency = Urgency.URGENT,
    created: int = 0,
    deadline: int = 7 * 24 * 60,
    language: str = "en",
    excluded: frozenset[str] = frozenset(),
) -> Request:
    return Request(rid, specialty, language, urgency, at(created), at(deadline), excluded)


def specialist(
    sid: str,
    specialties: tuple[str, ...] = ("paeds",),
    cap: int = 5,
    load: int = 0,
    languages: tuple[str, ...] = ("en", "st"),
    verified: bool = True,
) -> Specialist:
    return Specialist(sid, frozenset(specialties), frozenset(languages), cap, load, verified)


def slot(sid: str, owner: str, start: int, capacity: int = 1) -> Slot:
    return Slot(sid, owner, at(start), at(start + 30), capacity)


def pairs(matching_assignments: tuple[Assignment, ...]) -> set[tuple[str, str]]:
    return {(a.request_id, a.slot_id) for a in matching_assignments}


def all_solvers(
    requests: list[Request], slots: list[Slot], specialists: list[Specialist], costs: CostModel
) -> dict[str, set[tuple[str, str]]]:
    problem = MatchingProblem(requests, slots, specialists, costs)
    return {
        "chains": pairs(optimise(problem).assignments),
        "pruned": pairs(optimise(problem, Pruning(chains=False)).assignments),
        "exact": pairs(exact(problem).assignments),
    }


BASE_REQUEST = request("r")
BASE_SLOT = slot("s", "p", 60)
BASE_SPECIALIST = specialist("p")


@pytest.mark.parametrize(
    ("req", "slt", "spec", "expected"),
    [
        (BASE_REQUEST, BASE_SLOT, BASE_SPECIALIST, True),
        (BASE_REQUEST, BASE_SLOT, specialist("p", verified=False), False),
        (BASE_REQUEST, BASE_SLOT, specialist("p", specialties=("derm",)), False),
        (BASE_REQUEST, BASE_SLOT, specialist("p", languages=("st",)), False),
        (request("r", deadline=60), BASE_SLOT, BASE_SPECIALIST, False),  # starts at deadline
        (request("r", deadline=61), BASE_SLOT, BASE_SPECIALIST, True),
        (request("r", excluded=frozenset({"p"})), BASE_SLOT, BASE_SPECIALIST, False),
        (BASE_REQUEST, slot("s", "q", 60), specialist("p", verified=False), False),
    ],
)
def test_eligibility(req: Request, slt: Slot, spec: Specialist, expected: bool) -> None:
    assert eligible(req, slt, spec) is expected
    owner = specialist(slt.specialist_id, verified=False)
    owners = [spec] if slt.specialist_id == spec.id else [spec, owner]
    for solve in (greedy_assign, optimise_assign, exact_assign):
        assert solve([req], [slt], owners).matched == int(expected)


def test_greedy_serves_urgency_before_age() -> None:
    requests = [
        request("old-routine", urgency=Urgency.ROUTINE, created=-600),
        request("new-emergency", urgency=Urgency.EMERGENCY, created=-5),
    ]
    result = greedy_assign(requests, [slot("s", "p", 60)], [specialist("p")])
    assert pairs(result.assignments) == {("new-emergency", "s")}
    assert result.unassigned == ("old-routine",)


def test_optimiser_reroutes_a_shared_specialist_that_greedy_used_up() -> None:
    """X covers paeds and derm, Y only paeds. Greedy gives X's early slot to the older paeds
    request, then the derm request has nobody; the optimum sends paeds to Y instead."""
    requests = [
        request("paeds", created=-10),
        request("derm", specialty="derm", created=-5),
    ]
    slots = [slot("x1", "X", 30), slot("y1", "Y", 90)]
    specialists = [specialist("X", ("paeds", "derm")), specialist("Y")]
    for costs in (CostModel(), NO_AGE):
        problem = MatchingProblem(requests, slots, specialists, costs)
        assert pairs(greedy(problem).assignments) == {("paeds", "x1")}
        for name, found in all_solvers(requests, slots, specialists, costs).items():
            assert found == {("paeds", "y1"), ("derm", "x1")}, name

    # Hand-checked costs, default model: urgent weight 10; the horizon is the last deadline,
    # minute 10080, so leaving "derm" (created at minute -5) is charged 10085 minutes.
    greedy_cost = cost_breakdown(
        greedy_assign(requests, slots, specialists).assignments, requests, slots, specialists
    )
    assert greedy_cost.wait == 10 * 40
    assert greedy_cost.unassigned == 10_000_000 + 10 * (10080 + 5)
    best = cost_breakdown(
        optimise_assign(requests, slots, specialists).assignments, requests, slots, specialists
    )
    assert best.wait == 10 * 100 + 10 * 35
    assert best.load == 0
    assert best.unassigned == 0
    assert best.total < greedy_cost.total


def test_convex_load_spreads_work_when_waits_are_close() -> None:
    requests = [request("a"), request("b")]
    slots = [slot("p1", "P", 30), slot("p2", "P", 60), slot("q1", "Q", 63)]
    specialists = [specialist("P"), specialist("Q")]
    # Weight 10 per minute: P's second consult costs 60 more, Q's slot only 10 x 3 more wait.
    problem = MatchingProblem(requests, slots, specialists)
    for result in (optimise(problem), optimise(problem, Pruning(chains=False)), exact(problem)):
        assert sorted(a.slot_id for a in result.assignments) == ["p1", "q1"]
        cost = cost_breakdown(result.assignments, requests, slots, specialists)
        assert (cost.wait, cost.load) == (10 * 30 + 10 * 63, 0)
    # Greedy prices the load step too: for "b", q1 (630) beats p2 (600 + 60).
    assert pairs(greedy(problem).assignments) == {("a", "p1"), ("b", "q1")}
    # With a wait price steep enough, the optimum also goes to P twice.
    steep = CostModel(weights={Urgency.EMERGENCY: 100, Urgency.URGENT: 100, Urgency.ROUTINE: 1})
    for name, found in all_solvers(requests, slots, specialists, steep).items():
        assert found in ({("a", "p1"), ("b", "p2")}, {("a", "p2"), ("b", "p1")}), name


def test_caps_loads_and_capacities_are_respected() -> None:
    requests = [request(f"r{i}", created=-i) for i in range(4)]
    slots = [slot("group", "P", 30, capacity=2), slot("q", "Q", 30), slot("q2", "Q", 60)]
    specialists = [specialist("P", cap=3), specialist("Q", cap=2, load=1)]
    problem = MatchingProblem(requests, slots, specialists)
    for result in (greedy(problem), optimise(problem), exact(problem)):
        check_assignments(result.assignments, requests, slots, specialists)
        assert result.matched == 3  # two in the group slot, one with Q (cap 2 - load 1)
    # Greedy serves the oldest first; so do the chains, which break the (age-neutral) tie
    # between requests of one urgency oldest first.
    assert greedy(problem).unassigned == ("r0",)
    assert optimise(problem).unassigned == ("r0",)


def test_age_neutral_cost_serves_the_oldest_and_the_literal_one_starves_it() -> None:
    """Without the age term, assigning an old request 'costs' more than a new one."""
    requests = [
        request("old", urgency=Urgency.ROUTINE, created=-3 * 24 * 60),
        request("new", urgency=Urgency.ROUTINE, created=-5),
    ]
    slots = [slot("s", "P", 60)]
    specialists = [specialist("P")]
    problem = MatchingProblem(requests, slots, specialists)
    assert pairs(optimise(problem).assignments) == {("old", "s")}
    # Age-neutral: serving either costs the same, so the exact optimum may pick either.
    assert total_cost(exact(problem).assignments, requests, slots, specialists) == total_cost(
        optimise(problem).assignments, requests, slots, specialists
    )
    for name, found in all_solvers(requests, slots, specialists, NO_AGE).items():
        assert found == {("new", "s")}, name


def test_excluded_specialist_is_skipped_even_when_cheapest() -> None:
    requests = [request("r", excluded=frozenset({"P"}))]
    slots = [slot("p", "P", 10), slot("q", "Q", 500)]
    specialists = [specialist("P"), specialist("Q")]
    for name, found in all_solvers(requests, slots, specialists, CostModel()).items():
        assert found == {("r", "q")}, name


def test_wait_is_floored_to_whole_minutes_and_never_negative() -> None:
    req = Request(
        "r", "paeds", "en", Urgency.EMERGENCY, at(0) + timedelta(seconds=59), at(600), frozenset()
    )
    cost = CostModel()
    assert cost.wait_cost(req, slot("s", "P", 2)) == 100 * 1  # 61 s -> 1 minute
    assert cost.wait_cost(req, slot("s", "P", -30)) == 0  # slot already running
    result = optimise_assign([req], [slot("s", "P", 2)], [specialist("P")])
    assert total_cost(result.assignments, [req], [slot("s", "P", 2)], [specialist("P")]) == 100


def test_empty_batches() -> None:
    assert optimise_assign([], [], []).assignments == ()
    lonely = [request("r")]
    for solve in (greedy_assign, optimise_assign, exact_assign):
        result = solve(lonely, [], [specialist("P")])
        assert result.unassigned == ("r",)


@pytest.mark.parametrize(
    ("requests", "slots", "specialists", "words"),
    [
        ([request("r"), request("r")], [], [], "duplicate request id 'r'"),
        ([], [slot("s", "P", 0), slot("s", "P", 30)], [specialist("P")], "duplicate slot id"),
        ([], [], [specialist("P"), specialist("P")], "duplicate specialist id"),
        ([], [slot("s", "nobody", 0)], [specialist("P")], "unknown specialist 'nobody'"),
    ],
)
def test_inconsistent_instances_are_refused(
    requests: list[Request], slots: list[Slot], specialists: list[Specialist], words: str
) -> None:
    with pytest.raises(InvalidInstanceError, match=words):
        MatchingProblem(requests, slots, specialists)


def test_bad_values_are_refused() -> None:
    with pytest.raises(SchedulingError, match="aware"):
        Request("r", "x", "en", Urgency.URGENT, datetime(2026, 1, 1), T0)  # noqa: DTZ001
    with pytest.raises(SchedulingError, match="ends before it starts"):
        Slot("s", "P", at(30), at(0))
    with pytest.raises(SchedulingError, match="capacity 0"):
        Slot("s", "P", at(0), at(30), 0)
    with pytest.raises(SchedulingError, match="must be >= 0"):
        specialist("P", cap=-1)
    with pytest.raises(ValueError, match="'soon'"):
        Request("r", "x", "en", "soon", T0, T0)  # type: ignore[arg-type]
    with pytest.raises(SchedulingError, match="weight for routine"):
        CostModel(weights={Urgency.EMERGENCY: 1, Urgency.URGENT: 1})


def test_check_assignments_names_each_violation() -> None:
    requests = [request("r"), request("r2", specialty="derm")]
    slots = [slot("s", "P", 30), slot("t", "P", 60)]
    specialists = [specialist("P", cap=1)]
    with pytest.raises(InvalidAssignmentError, match="more than once"):
        check_assignments(
            [Assignment("r", "s", "P"), Assignment("r", "t", "P")], requests, slots, specialists
        )
    with pytest.raises(InvalidAssignmentError, match="not eligible"):
        check_assignments([Assignment("r2", "s", "P")], requests, slots, specialists)
    with pytest.raises(InvalidAssignmentError, match="remaining cap 1"):
        check_assignments(
            [Assignment("r", "s", "P"), Assignment("r3", "t", "P")],
            [*requests, request("r3")],
            slots,
            specialists,
        )
    with pytest.raises(InvalidAssignmentError, match="holds 2 > 1"):
        check_assignments(
            [Assignment("r", "s", "P"), Assignment("r3", "s", "P")],
            [*requests, request("r3")],
            slots,
            [specialist("P")],
        )
    with pytest.raises(InvalidAssignmentError, match="unknown id 'ghost'"):
        check_assignments([Assignment("ghost", "s", "P")], requests, slots, specialists)


def test_a_slot_that_has_begun_is_never_offered() -> None:
    """08:00 has begun at 08:20 (and 07:00 has ended): only the 09:00 slot is eligible."""
    now = datetime(2026, 3, 2, 8, 20, tzinfo=UTC)
    created = now - timedelta(hours=3)
    request = Request(
        "r", "cardiology", "en", Urgency.EMERGENCY, created, created + timedelta(days=1)
    )
    doctor = Specialist("p", frozenset({"cardiology"}), frozenset({"en"}), cap=5, verified=True)
    slots = [
        Slot(f"s{h}", "p", now.replace(hour=h, minute=0), now.replace(hour=h, minute=30))
        for h in (7, 8, 9)
    ]
    for assign in (greedy_assign, exact_assign):
        found = assign([request], slots, [doctor], now=now)
        assert [a.slot_id for a in found.assignments] == ["s9"]
    found = optimise_assign([request], slots, [doctor], now=now)
    assert [a.slot_id for a in found.assignments] == ["s9"]
    assert not eligible(request, slots[1], doctor, now)
    assert eligible(request, slots[2], doctor, now)
    with pytest.raises(InvalidAssignmentError):
        check_assignments([Assignment("r", "s8", "p")], [request], slots, [doctor], now=now)


def test_a_clock_without_a_zone_is_refused() -> None:
    with pytest.raises(InvalidInstanceError):
        MatchingProblem([], [], [], now=datetime(2026, 3, 2, 8, 0))  # noqa: DTZ001 (the bad input)


@pytest.mark.parametrize(
    "pruning", [Pruning(k=1, around=0, tail=0), Pruning(k=1, around=0, tail=0, chains=False)]
)
def test_repair_follows_a_path_through_another_group(pruning: Pruning) -> None:
    """Found by the property test: the paediatric emergency's only slot is the one the
    cardiology emergency was pruned to (its cheapest); the cardiology one could move to a
    later slot of the same specialist that the paediatric one cannot use. No free slot in
    the paediatric group, no less urgent holder: only a path through the other group shows
    that both can be served, with chains (a slot off the minute keeps these out) or without."""
    odd = timedelta(seconds=1)
    paeds = Request("paeds", "paeds", "en", Urgency.EMERGENCY, T0 + odd, T0 + odd)
    cardio = Request("cardio", "cardio", "en", Urgency.EMERGENCY, T0, at(1))
    both = specialist("both", ("paeds", "cardio"), cap=2)
    slots = [Slot("early", "both", T0, at(30)), Slot("late", "both", T0 + odd, at(30) + odd)]
    problem = MatchingProblem([paeds, cardio], slots, [both], now=T0)
    assert exact(problem).matched == 2
    assert optimise(problem, pruning).matched == 2
    unrepaired = Pruning(k=1, around=0, tail=0, chains=pruning.chains, repairs=0)
    assert optimise(problem, unrepaired).matched == 1  # what pruning alone does
