"""Benchmark: greedy versus pruned min-cost-flow matching on a realistic batch.

Run from the repository root::

    python -m bench.matching [--seed N] [--requests N] [--specialists N] [--repeat N]

It prints human-readable lines, then one JSON line last. ``seconds_total`` is everything the
optimised path needs from plain data to assignments: indexing the instance, the greedy pass
that seeds the candidate graph, candidate pruning, graph construction and the solve (the best
of ``--repeat`` runs, since the machine is shared). ``optimal_gap`` compares the pruned optimum
with the exact optimum (every eligible arc) on a 1,000-request instance from the same
generator. Costs are :func:`scheduling.total_cost`: urgency weight x minutes waited, plus the
convex load cost, plus the price of every request left unassigned.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from scheduling import (
    CostModel,
    MatchingProblem,
    Pruning,
    Request,
    Slot,
    Specialist,
    Urgency,
    check_assignments,
    cost_breakdown,
    exact,
    greedy,
)
from scheduling.flow import candidate_arcs, solve_flow
from scheduling.greedy import greedy_choice
from scheduling.matching import _matching

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SPECIALTIES = [
    "internal_medicine", "paediatrics", "obstetrics_gynaecology", "general_surgery",
    "psychiatry", "cardiology", "dermatology", "orthopaedics", "radiology", "neurology",
    "ophthalmology", "ent", "urology", "nephrology", "oncology", "infectious_disease",
    "anaesthetics", "endocrinology", "haematology", "pulmonology",
]  # fmt: skip
# Demand is concentrated (primary care questions); supply follows where Basotho doctors
# trained, which does not follow demand: some specialties are scarce, some plentiful.
DEMAND = [20, 16, 14, 8, 7, 6, 6, 5, 4, 3, 3, 2, 2, 2, 2, 2, 1, 1, 1, 1]
SUPPLY = [12, 10, 8, 9, 4, 5, 4, 6, 7, 3, 3, 3, 3, 2, 3, 3, 4, 2, 2, 2]
URGENCY_MIX = [(Urgency.EMERGENCY, 5), (Urgency.URGENT, 25), (Urgency.ROUTINE, 70)]
DEADLINE = {
    Urgency.EMERGENCY: timedelta(hours=48),
    Urgency.URGENT: timedelta(days=7),
    Urgency.ROUTINE: timedelta(days=14),
}
MAX_AGE = {
    Urgency.EMERGENCY: timedelta(hours=6),
    Urgency.URGENT: timedelta(days=2),
    Urgency.ROUTINE: timedelta(days=10),
}


@dataclass(frozen=True)
class Instance:
    """One batch of plain data, as the application would hand it to the matcher."""

    requests: list[Request]
    slots: list[Slot]
    specialists: list[Specialist]


def build_instance(n_requests: int, n_specialists: int, seed: int) -> Instance:
    """A seeded batch: ``n_specialists`` with 5 slots each over 14 days, open requests."""
    rng = random.Random(seed)
    specialists: list[Specialist] = []
    slots: list[Slot] = []
    for p in range(n_specialists):
        count = rng.choices([1, 2, 3], weights=[60, 30, 10])[0]
        specialties: set[str] = set()
        while len(specialties) < count:
            specialties.add(rng.choices(SPECIALTIES, weights=SUPPLY)[0])
        languages = {"en", "st"} if rng.random() < 0.85 else {"en"}
        cap = rng.randint(2, 5)
        specialist = Specialist(
            id=f"p{p}",
            specialties=frozenset(specialties),
            languages=frozenset(languages),
            cap=cap,
            load=rng.randint(0, 2),
            verified=rng.random() < 0.95,
        )
        specialists.append(specialist)
        # Evening and weekend hours in the specialist's day, on a 30-minute grid, 14 days.
        offset = rng.choice([0, 0, 0, 2, 6, 7, 12])  # hours behind Maseru-ish
        starts: set[int] = set()
        while len(starts) < 5:
            day = rng.randrange(14)
            half_hour = rng.randrange(2 * 8, 2 * 21)
            starts.add(day * 48 + half_hour + 2 * offset)
        midnight = NOW.replace(hour=0, minute=0)
        for n, start in enumerate(sorted(starts)):
            begin = midnight + timedelta(minutes=30 * start)
            if begin < NOW:
                begin += timedelta(days=14)
            slots.append(Slot(f"p{p}s{n}", specialist.id, begin, begin + timedelta(minutes=30)))
    requests: list[Request] = []
    urgencies = [u for u, _ in URGENCY_MIX]
    mix = [w for _, w in URGENCY_MIX]
    for r in range(n_requests):
        urgency = rng.choices(urgencies, weights=mix)[0]
        created = NOW - MAX_AGE[urgency] * rng.random()
        created = created.replace(second=0, microsecond=0)
        excluded: frozenset[str] = frozenset()
        if rng.random() < 0.05:
            excluded = frozenset(f"p{rng.randrange(n_specialists)}" for _ in range(2))
        requests.append(
            Request(
                id=f"r{r}",
                specialty=rng.choices(SPECIALTIES, weights=DEMAND)[0],
                language="st" if rng.random() < 0.15 else "en",
                urgency=urgency,
                created_at=created,
                deadline=created + DEADLINE[urgency],
                excluded=excluded,
            )
        )
    return Instance(requests, slots, specialists)


@dataclass(frozen=True)
class Timed:
    """Wall-clock seconds of each stage of the optimised path."""

    index: float
    greedy: float
    prune: float
    solve: float
    arcs: int

    @property
    def total(self) -> float:
        return self.index + self.greedy + self.prune + self.solve


def run_optimised(
    instance: Instance, costs: CostModel, pruning: Pruning
) -> tuple[MatchingProblem, Timed, list[tuple[int, int]]]:
    """The optimised path stage by stage (same calls as :func:`scheduling.optimise`)."""
    t0 = time.perf_counter()
    problem = MatchingProblem(instance.requests, instance.slots, instance.specialists, costs)
    t1 = time.perf_counter()
    choice, position = greedy_choice(problem)
    t2 = time.perf_counter()
    requests, slots = candidate_arcs(problem, pruning, choice, position)
    t3 = time.perf_counter()
    chosen = solve_flow(problem, requests, slots)
    t4 = time.perf_counter()
    return problem, Timed(t1 - t0, t2 - t1, t3 - t2, t4 - t3, len(requests)), chosen


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=20260302)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--specialists", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--k", type=int, default=Pruning().k)
    parser.add_argument("--around", type=int, default=Pruning().around)
    parser.add_argument("--tail", type=int, default=Pruning().tail)
    args = parser.parse_args(argv)
    costs = CostModel()
    pruning = Pruning(k=args.k, around=args.around, tail=args.tail)

    instance = build_instance(args.requests, args.specialists, args.seed)
    runs = [run_optimised(instance, costs, pruning) for _ in range(max(1, args.repeat))]
    problem, timed, chosen = min(runs, key=lambda run: run[1].total)
    optimised = _matching(problem, chosen)
    t0 = time.perf_counter()
    baseline = greedy(problem)
    seconds_greedy = time.perf_counter() - t0
    for matching in (optimised, baseline):
        check_assignments(matching.assignments, *_plain(instance))
    opt_cost = cost_breakdown(optimised.assignments, *_plain(instance), costs)
    greedy_cost = cost_breakdown(baseline.assignments, *_plain(instance), costs)

    small = build_instance(args.requests // 10, args.specialists // 10, args.seed + 1)
    small_problem, _, small_chosen = run_optimised(small, costs, pruning)
    small_opt = cost_breakdown(
        _matching(small_problem, small_chosen).assignments, *_plain(small), costs
    ).total
    small_exact = cost_breakdown(exact(small_problem).assignments, *_plain(small), costs).total
    gap = (small_opt - small_exact) / small_exact if small_exact else 0.0

    print(f"instance: {len(instance.requests)} requests, {len(instance.slots)} slots, "
          f"{len(instance.specialists)} specialists (seed {args.seed})")
    print(f"pruning: k={pruning.k} around={pruning.around} tail={pruning.tail}; "
          f"{timed.arcs} request-slot arcs")
    print(f"optimised: {timed.total:.3f} s (index {timed.index:.3f}, greedy pass "
          f"{timed.greedy:.3f}, prune {timed.prune:.3f}, graph+solve {timed.solve:.3f}); "
          f"best of {len(runs)}")
    print(f"optimised: matched {optimised.matched}, cost {opt_cost.total} "
          f"(wait {opt_cost.wait}, load {opt_cost.load}, unassigned {opt_cost.unassigned})")
    print(f"greedy:    matched {baseline.matched}, cost {greedy_cost.total} "
          f"(wait {greedy_cost.wait}, load {greedy_cost.load}, "
          f"unassigned {greedy_cost.unassigned}); {seconds_greedy:.3f} s")
    print(f"cost ratio optimised/greedy: {opt_cost.total / greedy_cost.total:.4f}")
    print(f"gap on {len(small.requests)} requests: pruned {small_opt} vs exact "
          f"{small_exact} -> {gap:.5f}")
    print(json.dumps({
        "requests": len(instance.requests),
        "slots": len(instance.slots),
        "specialists": len(instance.specialists),
        "seconds_total": round(timed.total, 4),
        "seconds_greedy": round(seconds_greedy, 4),
        "arcs": timed.arcs,
        "matched": optimised.matched,
        "cost": opt_cost.total,
        "wait_cost": opt_cost.wait,
        "greedy_matched": baseline.matched,
        "greedy_cost": greedy_cost.total,
        "greedy_wait_cost": greedy_cost.wait,
        "cost_ratio": round(opt_cost.total / greedy_cost.total, 5),
        "optimal_gap": round(gap, 6),
        "gap_requests": len(small.requests),
    }))


def _plain(instance: Instance) -> tuple[list[Request], list[Slot], list[Specialist]]:
    return instance.requests, instance.slots, instance.specialists


if __name__ == "__main__":
    main()
