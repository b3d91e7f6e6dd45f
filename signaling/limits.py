"""Per-connection rate limiting (a token bucket with an injected clock)."""

from __future__ import annotations

from collections.abc import Callable


class TokenBucket:
    """Allows ``burst`` messages at once and ``rate`` per second on average.

    A bucket rather than a fixed window because trickle ICE sends candidates in short bursts
    (tens within a second) and then nothing: a window would either cut those bursts or let a
    flood through at every window edge.
    """

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def allow(self) -> bool:
        """Take one token if there is one."""
        now = self._clock()
        elapsed = max(0.0, now - self._last)
        self._last = now
        self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
