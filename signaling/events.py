"""Session events: what the signalling server tells the application about calls.

The application (Telemed) stores these on the consult's timeline: who joined and when, drops
and resumes, departures, media mode changes, quality summaries, and the end of the call. Each
event is reported by the server instance that holds the participant's session, so a call whose
peers sit on two instances still yields each event once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from signaling.rooms import EventKind


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionEvent:
    """One thing that happened in a room.

    ``kind`` is ``joined`` (``detail.rejoined`` for a takeover or full reconnect),
    ``reconnecting`` (socket dropped; grace period started), ``reconnected`` (resumed),
    ``left`` (``detail.reason``: ``left`` or ``gone``), ``media`` (``detail.mode``),
    ``quality`` (``detail.stats``, as the client measured it) or ``ended`` (the room is empty;
    ``participant`` is None).
    """

    kind: EventKind
    room: str
    participant: str | None
    role: str | None
    session: str | None
    at: datetime
    node: str
    detail: Mapping[str, Any] = field(default_factory=dict)


#: Called for each event, in order; may be a plain function or a coroutine function. It runs
#: in its own task, so a slow callback delays later events, never the calls themselves.
EventCallback = Callable[[SessionEvent], Awaitable[None] | None]
