"""How long the on-call specialist has before the emergency is broadcast, and what signs
their one-tap links: built from the settings once, handed to the services."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from telemed.settings import Settings

ANSWER_MINUTES = 5  # a phone by the bed: long enough to wake and read, short for the patient


@dataclass(frozen=True)
class OnCallPolicy:
    link_secret: str = field(repr=False)
    public_base_url: str = "http://127.0.0.1:8000"
    answer_minutes: int = ANSWER_MINUTES

    @classmethod
    def from_settings(cls, settings: Settings) -> OnCallPolicy:
        return cls(
            link_secret=settings.effective_secret(),
            public_base_url=settings.public_base_url,
        )

    @property
    def answer_window(self) -> timedelta:
        return timedelta(minutes=self.answer_minutes)
