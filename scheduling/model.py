"""Plain data for matching: requests, slots, specialists, assignments and the cost model.

These are the only shapes the application hands to the matcher and gets back. They carry no
behaviour beyond validating themselves, so the same instance can be fed to the greedy
baseline, the pruned optimiser and the exact solver and the results compared fairly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from scheduling.errors import InvalidInstanceError


class Urgency(StrEnum):
    """How soon a clinician needs an answer; orders the greedy pass and prices waiting."""

    EMERGENCY = "emergency"
    URGENT = "urgent"
    ROUTINE = "routine"

    @property
    def rank(self) -> int:
        """0 for the most urgent; the greedy baseline serves lower ranks first."""
        return _RANK[self]


_MINUTE = timedelta(minutes=1)
_RANK = {Urgency.EMERGENCY: 0, Urgency.URGENT: 1, Urgency.ROUTINE: 2}


def _require_aware(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInstanceError(f"{what} ({value}) must be an aware datetime")


@dataclass(frozen=True, slots=True)
class Request:
    """An open consult request waiting for a specialist.

    ``excluded`` holds specialist ids that must not get this request again (they declined
    it before, or are the requesting clinician's own colleague).
    """

    id: str
    specialty: str
    language: str
    urgency: Urgency
    created_at: datetime
    deadline: datetime
    excluded: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        _require_aware(self.created_at, f"request {self.id} created_at")
        _require_aware(self.deadline, f"request {self.id} deadline")
        object.__setattr__(self, "urgency", Urgency(self.urgency))
        object.__setattr__(self, "excluded", frozenset(self.excluded))


@dataclass(frozen=True, slots=True)
class Slot:
    """A bookable interval of one specialist; ``capacity`` > 1 for e.g. a group clinic."""

    id: str
    specialist_id: str
    start: datetime
    end: datetime
    capacity: int = 1

    def __post_init__(self) -> None:
        _require_aware(self.start, f"slot {self.id} start")
        _require_aware(self.end, f"slot {self.id} end")
        if self.end <= self.start:
            raise InvalidInstanceError(f"slot {self.id} ends before it starts")
        if self.capacity < 1:
            raise InvalidInstanceError(f"slot {self.id} capacity {self.capacity} is below 1")


@dataclass(frozen=True, slots=True)
class Specialist:
    """What matching needs to know about a volunteer.

    ``cap`` is the most consults they take in the period the batch covers (usually their
    weekly cap), ``load`` what they already have in it; only ``cap - load`` more can be
    assigned, and each one costs more than the last (see :class:`CostModel`).
    ``verified`` is true only while a coordinator-verified registration is unexpired.
    ``emergencies`` counts the emergencies they already have this week, for the fairness
    rule's weekly limit (:mod:`scheduling.fairness`).
    """

    id: str
    specialties: frozenset[str]
    languages: frozenset[str]
    cap: int
    load: int = 0
    verified: bool = False
    emergencies: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "specialties", frozenset(self.specialties))
        object.__setattr__(self, "languages", frozenset(self.languages))
        if self.cap < 0 or self.load < 0 or self.emergencies < 0:
            raise InvalidInstanceError(
                f"specialist {self.id}: cap {self.cap}, load {self.load} and emergencies "
                f"{self.emergencies} must be >= 0"
            )

    @property
    def remaining(self) -> int:
        """How many more consults may be assigned in this batch."""
        return max(0, self.cap - self.load)


@dataclass(frozen=True, slots=True, order=True)
class Assignment:
    """Request ``request_id`` is offered slot ``slot_id`` of specialist ``specialist_id``."""

    request_id: str
    slot_id: str
    specialist_id: str


def _frozen(mapping: Mapping[Urgency, int]) -> Mapping[Urgency, int]:
    return MappingProxyType(dict(mapping))


DEFAULT_WEIGHTS: Mapping[Urgency, int] = _frozen(
    {Urgency.EMERGENCY: 100, Urgency.URGENT: 10, Urgency.ROUTINE: 1}
)
DEFAULT_UNASSIGNED: Mapping[Urgency, int] = _frozen(
    {Urgency.EMERGENCY: 100_000_000, Urgency.URGENT: 10_000_000, Urgency.ROUTINE: 1_000_000}
)


def batch_horizon(requests: Iterable[Request]) -> datetime | None:
    """The instant up to which an unassigned request is charged its wait.

    The latest deadline in the batch, floored to the minute (a whole minute keeps the wait
    split exactly into a request part and a slot part, which the solver relies on). No slot
    after it can serve any request of the batch, so being served never costs more waiting
    than being left. ``None`` for an empty batch.
    """
    latest = max((r.deadline for r in requests), default=None)
    if latest is None:
        return None
    return latest - (latest - _EPOCH) % _MINUTE


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class CostModel:
    """Integer prices that both the greedy baseline and the optimisers are judged by.

    * waiting: ``weight[urgency] x`` whole minutes from the request's creation to the slot's
      start, so an emergency minute costs a hundred routine minutes by default;
    * leaving a request unassigned: ``unassigned[urgency]`` plus, when ``age_neutral`` (the
      default), its weight x whole minutes from creation to the batch horizon (see
      :func:`batch_horizon`): a request that is left keeps waiting. Without that term the
      objective prefers serving *new* requests, because an old one has already accrued a
      long wait and assigning it "costs" more than assigning a fresh one for the same slot;
      the optimum then starves the oldest requests of each urgency, the ones nearest their
      deadline. With it, which request of an urgency is served no longer changes the cost
      and the solver breaks the tie oldest first. The penalties exceed any wait a deadline
      allows (48 h x 100, 7 d x 10, 14 d x 1), so the optimiser first matches as many
      requests as it can, most urgent first, and only then shortens waits;
    * fairness: a specialist's ``n``-th consult of the period (counting ``load``) costs
      ``load_step x (n - 1)``, an increasing marginal price, so work spreads out when the
      waits are otherwise similar.

    Everything is an ``int`` because the min-cost-flow solver works on integers and because
    the greedy/optimised comparison must not drift with float rounding.
    """

    weights: Mapping[Urgency, int] = field(default_factory=lambda: DEFAULT_WEIGHTS)
    unassigned: Mapping[Urgency, int] = field(default_factory=lambda: DEFAULT_UNASSIGNED)
    load_step: int = 60
    age_neutral: bool = True

    def __post_init__(self) -> None:
        for name, table in (("weight", self.weights), ("unassigned cost", self.unassigned)):
            for urgency in Urgency:
                value = table.get(urgency)
                if not isinstance(value, int) or value < 0:
                    raise InvalidInstanceError(f"{name} for {urgency} must be an int >= 0")
        if self.load_step < 0:
            raise InvalidInstanceError(f"load_step {self.load_step} must be >= 0")
        object.__setattr__(self, "weights", _frozen(self.weights))
        object.__setattr__(self, "unassigned", _frozen(self.unassigned))

    def marginal_load(self, ordinal: int) -> int:
        """Price of a specialist's ``ordinal``-th consult of the period (1-based)."""
        return self.load_step * (ordinal - 1)

    def wait_cost(self, request: Request, slot: Slot) -> int:
        """Urgency weight times whole minutes waited (never negative)."""
        minutes = max(0, (slot.start - request.created_at) // _MINUTE)
        return self.weights[request.urgency] * minutes

    def unassigned_cost(self, request: Request, horizon: datetime | None) -> int:
        """Price of leaving ``request`` to a later batch (``horizon``: :func:`batch_horizon`)."""
        price = self.unassigned[request.urgency]
        if self.age_neutral and horizon is not None:
            minutes = max(0, (horizon - request.created_at) // _MINUTE)
            price += self.weights[request.urgency] * minutes
        return price
