"""How long offers stay open, when a request is due, when to give up, and the fairness rule
(``scheduling.fairness``) the matching applies: from the settings, handed to the services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from scheduling import FairnessRule
from telemed.consults.models import Consult, Urgency
from telemed.oncall.policy import OnCallPolicy
from telemed.settings import Settings


@dataclass(frozen=True)
class OfferPolicy:
    expiry_minutes: dict[Urgency, int]
    deadline_minutes: dict[Urgency, int]
    max_failures: int = 3
    slot_minutes: int = 30
    oncall: OnCallPolicy | None = None  # None: emergencies are broadcast at once
    # Never more than this many emergencies per specialist per week unless nobody else can.
    max_emergencies_per_week: int | None = 3

    @classmethod
    def from_settings(cls, settings: Settings) -> OfferPolicy:
        return cls(
            expiry_minutes={
                Urgency.emergency: settings.offer_expiry_emergency_minutes,
                Urgency.urgent: settings.offer_expiry_urgent_minutes,
                Urgency.routine: settings.offer_expiry_routine_minutes,
            },
            deadline_minutes={
                Urgency.emergency: settings.deadline_emergency_minutes,
                Urgency.urgent: settings.deadline_urgent_minutes,
                Urgency.routine: settings.deadline_routine_minutes,
            },
            max_failures=settings.offer_max_failures,
            slot_minutes=settings.slot_minutes,
            oncall=OnCallPolicy.from_settings(settings),
            max_emergencies_per_week=settings.max_emergencies_per_week,
        )

    def expiry(self, consult: Consult) -> timedelta:
        return timedelta(minutes=self.expiry_minutes[Urgency(consult.urgency)])

    def deadline(self, consult: Consult) -> datetime:
        """When the clinician must have a specialist, counted from the request."""
        start = consult.requested_at or consult.created_at
        return start + timedelta(minutes=self.deadline_minutes[Urgency(consult.urgency)])

    @property
    def slot_length(self) -> timedelta:
        return timedelta(minutes=self.slot_minutes)

    @property
    def fairness(self) -> FairnessRule:
        """The stated rule of ``scheduling.fairness`` with this policy's weekly limit on
        emergencies (its tolerances are the library's defaults)."""
        return FairnessRule(max_emergencies=self.max_emergencies_per_week)
