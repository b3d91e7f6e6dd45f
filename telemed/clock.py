"""The one clock of the application.

Views, endpoints and jobs take "now" from the ``Clock`` the application (or the job runner)
was built with, never from ``datetime.now`` themselves, and pass it on to the services. A
test that pins the time therefore pins it for everything a request or a job run does, and
can never mix the real clock with a fixed date (the way a test that passed on 30 November
failed on every run from 1 December).

Rows still stamp ``created_at``-style columns with ``telemed.db.utcnow`` as their default:
those say when the row was written, which is the real time in production and in tests alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


SYSTEM_CLOCK = SystemClock()
