"""A short-lived, per-process memory of live sessions.

Every request resolves its session cookie; on a busy server that lookup is a large part of
a small request's cost. Remembering a resolved session for a few seconds removes it. The
price: a session revoked in *another* process (or a user deactivated) keeps working there
for at most ``ttl_seconds``; logging out in this process forgets the session at once.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from telemed.accounts.models import User

MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class _Cached:
    csrf_token: str
    user: User
    until: float


class SessionCache:
    def __init__(self, ttl_seconds: float) -> None:
        self.ttl_seconds = ttl_seconds
        self._entries: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def get(self, digest: str) -> tuple[str, User] | None:
        if self.ttl_seconds <= 0:
            return None
        entry = self._entries.get(digest)
        if entry is None or entry.until < time.monotonic():
            return None
        return entry.csrf_token, entry.user

    def put(self, digest: str, csrf_token: str, user: User) -> None:
        if self.ttl_seconds <= 0:
            return
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()  # crude but bounded; entries are cheap to rebuild
            self._entries[digest] = _Cached(csrf_token, user, time.monotonic() + self.ttl_seconds)

    def forget(self, digest: str) -> None:
        with self._lock:
            self._entries.pop(digest, None)
