"""A short-lived, per-process memory of live sessions.

Every request resolves its session cookie; on a busy server that lookup is a large part of
a small request's cost. Remembering a resolved session for a few seconds removes it. The
price: a session revoked in *another* process (or a user deactivated there) keeps working in
this one for at most ``ttl_seconds`` (``TELEMED_SESSION_CACHE_SECONDS``, 5 by default; 0
turns the cache off); logging out or deactivating in this process forgets the session at
once. A remembered session never outlives its own expiry.

The clock is injected (``time.monotonic`` by default) so that tests move time by hand.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from telemed.accounts.models import User

MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class LiveSession:
    """What a request needs of its session: the CSRF token, a detached snapshot of the
    user, and when the session expires."""

    csrf_token: str
    user: User
    expires_at: datetime


@dataclass(frozen=True)
class _Cached:
    session: LiveSession
    until: float  # on the cache's clock


class SessionCache:
    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._entries: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def get(self, digest: str) -> LiveSession | None:
        if self.ttl_seconds <= 0:
            return None
        entry = self._entries.get(digest)
        if entry is None or entry.until <= self._clock():
            return None
        return entry.session

    def put(self, digest: str, session: LiveSession, now: datetime) -> None:
        """Remember ``session``, resolved at wall-clock ``now``, for ``ttl_seconds`` or until
        it expires, whichever comes first."""
        lifetime = min(self.ttl_seconds, (session.expires_at - now).total_seconds())
        if lifetime <= 0:
            return
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()  # crude but bounded; entries are cheap to rebuild
            self._entries[digest] = _Cached(session, self._clock() + lifetime)

    def forget(self, digest: str) -> None:
        with self._lock:
            self._entries.pop(digest, None)
