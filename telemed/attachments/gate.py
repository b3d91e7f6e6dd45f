"""How many images one server process decodes at once.

A maximal photo (40 MP) costs up to about 180 MB while it is decoded and re-encoded
(docs/RELIABILITY.md); forty worker threads each decoding one would need 7 GB. So each
process lets ``image_concurrency`` decodes run together; another upload waits up to
``image_wait_seconds`` for a turn, then is answered 503 with ``Retry-After`` (the page's
upload queue and the resumable upload both retry by themselves). Per process, because
memory is per process: with N workers the machine holds at most N times this.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from telemed.errors import ServiceBusy

RETRY_AFTER_SECONDS = 5


class ImageGate:
    def __init__(self, slots: int, wait_seconds: float) -> None:
        self.slots = slots
        self.wait_seconds = wait_seconds
        self._free = threading.BoundedSemaphore(slots)

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold one of the slots while the body runs; ``ServiceBusy`` if none frees up in
        time."""
        if not self._free.acquire(timeout=self.wait_seconds):
            raise ServiceBusy(
                "the server is busy processing other images; try again in a few seconds",
                retry_after_seconds=RETRY_AFTER_SECONDS,
            )
        try:
            yield
        finally:
            self._free.release()


_gates: dict[tuple[int, float], ImageGate] = {}
_gates_lock = threading.Lock()


def gate_for(slots: int, wait_seconds: float) -> ImageGate:
    """This process's gate for these limits (one per process, shared by every request)."""
    key = (slots, wait_seconds)
    with _gates_lock:
        if key not in _gates:
            _gates[key] = ImageGate(slots, wait_seconds)
        return _gates[key]
