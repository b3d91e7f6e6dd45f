"""A matching instance compiled once into arrays and eligibility groups.

Greedy, pruned and exact matching all need the same things: integer times, each request's
candidate slots in increasing cost order, and remaining capacities. Computing them once keeps
the three solvers consistent (one definition of eligibility, one of cost) and fast enough
for 10,000 requests in Python.

The key observation: for one request every eligible slot's arc cost is
``weight x (slot start - created)``, so **cost order is start order**. Requests sharing a
(specialty, language) pair share one list of eligible slots sorted by start; a request's
eligible slots are a prefix of that list (those starting before its deadline), minus the
specialists it excludes. Candidate generation is then slicing, not a search.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from scheduling.errors import InvalidInstanceError
from scheduling.model import (
    Assignment,
    CostModel,
    Request,
    Slot,
    Specialist,
    batch_horizon,
)

I64 = NDArray[np.int64]
I32 = NDArray[np.int32]
BOOL = NDArray[np.bool_]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
MICROS_PER_MINUTE = 60_000_000


def micros(value: datetime) -> int:
    """Exact integer microseconds since the epoch, so minute flooring matches ``timedelta``."""
    return (value - _EPOCH) // _MICROSECOND


def _unique_ids(items: Iterable[Request | Slot | Specialist], kind: str) -> dict[str, int]:
    index: dict[str, int] = {}
    for position, item in enumerate(items):
        if item.id in index:
            raise InvalidInstanceError(f"duplicate {kind} id {item.id!r}")
        index[item.id] = position
    return index


def eligible(
    request: Request, slot: Slot, specialist: Specialist, now: datetime | None = None
) -> bool:
    """Whether ``specialist`` may be offered ``request`` in ``slot``, capacity aside.

    Verified registration, the requested specialty and language, a slot that starts before
    the request's deadline, and not a specialist the request excludes. With ``now``, a slot
    that has begun (``start < now``) is never eligible: nobody can be offered a consult that
    should already be under way, and the library must not rely on its caller to filter them.
    """
    return (
        (now is None or slot.start >= now)
        and slot.specialist_id == specialist.id
        and specialist.verified
        and request.specialty in specialist.specialties
        and request.language in specialist.languages
        and slot.start < request.deadline
        and specialist.id not in request.excluded
    )


@dataclass(frozen=True, slots=True)
class Group:
    """Slots eligible (specialty, language, verified, spare cap) for one pair, by start."""

    slots: I32
    starts: I64


class MatchingProblem:
    """A validated instance plus the arrays the solvers share (treat it as read-only).

    Build it once per batch and hand it to :func:`scheduling.greedy`,
    :func:`scheduling.optimise` and :func:`scheduling.exact`, which then agree on every
    index, time and price. ``now`` (aware) is the batch's clock: slots starting before it
    are left out of every group, so no solver can offer a slot that has begun. ``None``
    keeps every slot (tests and benchmarks of pure assignment).
    """

    def __init__(
        self,
        requests: Sequence[Request],
        slots: Sequence[Slot],
        specialists: Sequence[Specialist],
        costs: CostModel | None = None,
        *,
        now: datetime | None = None,
    ) -> None:
        if now is not None and (now.tzinfo is None or now.utcoffset() is None):
            raise InvalidInstanceError(f"now ({now}) must be an aware datetime")
        self.now = now
        self.requests = tuple(requests)
        self.slots = tuple(slots)
        self.specialists = tuple(specialists)
        self.costs = costs if costs is not None else CostModel()
        self.request_index = _unique_ids(self.requests, "request")
        self.slot_index = _unique_ids(self.slots, "slot")
        self.specialist_index = _unique_ids(self.specialists, "specialist")

        slot_specialist = []
        for slot in self.slots:
            owner = self.specialist_index.get(slot.specialist_id)
            if owner is None:
                raise InvalidInstanceError(
                    f"slot {slot.id!r} belongs to unknown specialist {slot.specialist_id!r}"
                )
            slot_specialist.append(owner)
        self.slot_specialist: I32 = np.array(slot_specialist, dtype=np.int32)
        self.slot_start: I64 = np.array([micros(s.start) for s in self.slots], dtype=np.int64)
        self.slot_capacity: I64 = np.array([s.capacity for s in self.slots], dtype=np.int64)
        self.load: I64 = np.array([p.load for p in self.specialists], dtype=np.int64)
        self.remaining: I64 = np.array([p.remaining for p in self.specialists], dtype=np.int64)

        weights = self.costs.weights
        self.created: I64 = np.array([micros(r.created_at) for r in self.requests], dtype=np.int64)
        self.deadline: I64 = np.array([micros(r.deadline) for r in self.requests], dtype=np.int64)
        self.weight: I64 = np.array([weights[r.urgency] for r in self.requests], dtype=np.int64)
        self.rank: I64 = np.array([r.urgency.rank for r in self.requests], dtype=np.int64)
        self.horizon = batch_horizon(self.requests)
        self.unassigned_cost: I64 = np.array(
            [self.costs.unassigned_cost(r, self.horizon) for r in self.requests], dtype=np.int64
        )
        # Excluded specialists as indices; ids of unknown specialists simply cannot match.
        self.excluded: dict[int, frozenset[int]] = {}
        for position, request in enumerate(self.requests):
            known = frozenset(
                self.specialist_index[s] for s in request.excluded if s in self.specialist_index
            )
            if known:
                self.excluded[position] = known
        self.groups, self.request_group = self._build_groups()

    def _build_groups(self) -> tuple[list[Group], I32]:
        keys: dict[tuple[str, str], int] = {}
        request_group = np.empty(len(self.requests), dtype=np.int32)
        for position, request in enumerate(self.requests):
            key = (request.specialty, request.language)
            request_group[position] = keys.setdefault(key, len(keys))
        # Which usable specialists serve each wanted (specialty, language) pair.
        serving: dict[int, list[int]] = defaultdict(list)
        for position, specialist in enumerate(self.specialists):
            if not specialist.verified or specialist.remaining == 0:
                continue
            for specialty in specialist.specialties:
                for language in specialist.languages:
                    group = keys.get((specialty, language))
                    if group is not None:
                        serving[group].append(position)
        by_specialist: list[list[int]] = [[] for _ in self.specialists]
        for slot_position, owner in enumerate(self.slot_specialist.tolist()):
            by_specialist[owner].append(slot_position)
        groups = []
        begun = self.slot_start < micros(self.now) if self.now is not None else None
        for group in range(len(keys)):
            members = [s for p in serving.get(group, []) for s in by_specialist[p]]
            ids = np.array(members, dtype=np.int32)
            if begun is not None:
                ids = ids[~begun[ids]]
            starts = self.slot_start[ids]
            order = np.lexsort((ids, starts))
            groups.append(Group(slots=ids[order], starts=starts[order]))
        return groups, request_group

    def eligible_count(self, request: int) -> int:
        """How many slots of the request's group start before its deadline (a prefix)."""
        group = self.groups[self.request_group[request]]
        return int(np.searchsorted(group.starts, self.deadline[request], side="left"))

    def arc_costs(self, requests: I64, slots: I64) -> I64:
        """Wait cost of each (request, slot) pair, exactly as :meth:`CostModel.wait_cost`."""
        waited = np.maximum(self.slot_start[slots] - self.created[requests], 0)
        costs: I64 = self.weight[requests] * (waited // MICROS_PER_MINUTE)
        return costs

    def to_assignments(self, chosen: Iterable[tuple[int, int]]) -> list[Assignment]:
        """(request index, slot index) pairs as plain :class:`Assignment` values, sorted."""
        out = []
        for request, slot in chosen:
            owner = self.slots[slot].specialist_id
            out.append(Assignment(self.requests[request].id, self.slots[slot].id, owner))
        out.sort()
        return out
