"""How long the on-call specialist has before the emergency is broadcast, and what signs
their one-tap links: built from the settings once, handed to the services (the answer
window is ``TELEMED_ONCALL_ANSWER_MINUTES``, five minutes by default)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from telemed.settings import Settings


@dataclass(frozen=True)
class OnCallPolicy:
    link_secret: str = field(repr=False)
    public_base_url: str = "http://127.0.0.1:8000"
    answer_minutes: int = 5  # a phone by the bed: long enough to wake, short for the patient

    @classmethod
    def from_settings(cls, settings: Settings) -> OnCallPolicy:
        return cls(
            link_secret=settings.effective_secret(),
            public_base_url=settings.public_base_url,
            answer_minutes=settings.oncall_answer_minutes,
        )

    @property
    def answer_window(self) -> timedelta:
        return timedelta(minutes=self.answer_minutes)
