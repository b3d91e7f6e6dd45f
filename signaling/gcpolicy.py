"""Keeping Python's cyclic garbage collector from pausing a server that holds many sockets.

A full (generation 2) collection looks at every object the collector tracks. With 10,000
connections that was about 270 ms during which no frame moved (issue 14). Almost all of those
objects are long-lived (the connections of calls in progress), so looking at them again and
again finds nothing. :class:`GcPolicy` therefore, once per tick (the hub's sweep, every second):

1. collects the young generations (``gc.collect(1)``): cheap, since they only hold what was
   created since the last tick, and this is where the cycles of sockets that opened and closed
   within the tick are freed;
2. moves every survivor to the permanent generation (``gc.freeze()``), which no collection
   scans. A full collection then only looks at what was created since the last tick, whatever
   the number of connections held.

The price: a cycle that becomes garbage after it was frozen is never collected. The sockets
of the standalone server are therefore taken apart when they close (:func:`break_cycles`:
the two reference cycles that ``asyncio`` and ``websockets`` leave behind per connection), so
that reference counting frees them; ``tests/signaling/test_signaling_gc.py`` counts the
objects over connect/disconnect rounds. For whatever else ends up frozen (e.g. the sockets of
another ASGI server, whose internals we do not take apart), ``thaw_interval_s`` unfreezes
everything now and then so that one full collection frees it: one long pause every few hours
instead of one every few seconds. Between two ticks, a burst of connections (1,500 a
second in ``bench.signaling``) promotes enough objects for the collector to start a full
collection of its own, over everything unfrozen (50 ms in that run): the policy therefore
raises the oldest generation's threshold (``FULL_COLLECTION_THRESHOLD``), so that the ticks,
not the allocation counts, decide when old objects are dealt with. ``frozen`` in
:meth:`GcPolicy.stats` shows the permanent generation's size, so a leak would be visible
in monitoring. A process that also serves other work (the application: requests in flight
at a tick are frozen too, and their cycles wait for the thaw) freezes less often
(``freeze_interval_s``).

:class:`PauseRecorder` measures what the server actually experiences: every collection,
automatic or ours, timed from ``gc.callbacks``.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from websockets.protocol import State


class PauseRecorder:
    """Times every garbage collection of this process (``gc.callbacks``).

    Wall-clock time (what the sockets wait), so on a loaded machine it includes time spent
    waiting for a core. Not CPU time: ``time.thread_time`` is a system call, which costs
    milliseconds in some sandboxes, and it would run twice per collection.
    """

    def __init__(self) -> None:
        self.worst_ms = 0.0
        self.worst_generation = -1
        self.collections = 0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause = (time.perf_counter() - self._started) * 1000
        self.collections += 1
        if pause > self.worst_ms:
            self.worst_ms, self.worst_generation = pause, int(info.get("generation", -1))


FULL_COLLECTION_THRESHOLD = 10_000
"""Generation-1 collections between two automatic full ones; Python's default is 10. With
the default 700 allocations per young collection and 10 young per generation-1 one, this is
about 70 million allocations, far more than a tick's worth: in practice only the thaw
collects everything."""


class GcPolicy:
    """Process-wide (the collector is): every hub that starts acquires it, stopping releases.

    Only the first acquirer installs it; the last release unfreezes and removes the recorder.
    """

    _instance: GcPolicy | None = None
    _users = 0

    def __init__(self, thaw_interval_s: float | None, freeze_interval_s: float = 0.0) -> None:
        self.pauses = PauseRecorder()
        self._thaw_interval_s = thaw_interval_s
        self._freeze_interval_s = freeze_interval_s
        self._last_thaw = self._last_freeze = time.monotonic()
        self._thresholds: tuple[int, int, int] = gc.get_threshold()

    @classmethod
    def acquire(
        cls, thaw_interval_s: float | None = 6 * 3600.0, freeze_interval_s: float = 0.0
    ) -> GcPolicy:
        """The process's policy, installed by the first caller with its intervals (a tick
        freezes at most every ``freeze_interval_s``; 0: at every tick)."""
        if cls._instance is None:
            # Start-up (imports, configuration) is over: out of the collector's way at once,
            # before any socket. Not counted as a pause: nothing is served yet.
            gc.collect()
            gc.freeze()
            cls._instance = cls(thaw_interval_s, freeze_interval_s)
            cls._instance._thresholds = gc.get_threshold()
            young, middle, _ = cls._instance._thresholds
            gc.set_threshold(young, middle, FULL_COLLECTION_THRESHOLD)
            gc.callbacks.append(cls._instance.pauses)
        cls._users += 1
        return cls._instance

    @classmethod
    def release(cls) -> None:
        cls._users = max(0, cls._users - 1)
        if cls._users == 0 and cls._instance is not None:
            if cls._instance.pauses in gc.callbacks:
                gc.callbacks.remove(cls._instance.pauses)
            gc.set_threshold(*cls._instance._thresholds)
            cls._instance = None
            gc.unfreeze()

    def tick(self) -> None:
        """Collect the young generations, then freeze what survived (see the module doc)."""
        now = time.monotonic()
        if self._thaw_interval_s is not None and now - self._last_thaw >= self._thaw_interval_s:
            self._last_thaw = now
            gc.unfreeze()
            gc.collect()
        if now - self._last_freeze >= self._freeze_interval_s:
            self._last_freeze = now
            gc.collect(1)
            gc.freeze()

    def stats(self) -> dict[str, float]:
        return {
            "gc_pause_max_ms": round(self.pauses.worst_ms, 2),
            "gc_pause_max_generation": self.pauses.worst_generation,
            "gc_collections": self.pauses.collections,
            "gc_frozen": gc.get_freeze_count(),
        }


def break_cycles(connection: Any) -> None:
    """Undo the reference cycles a closed ``websockets`` server connection leaves behind.

    - ``asyncio``'s selector transport keeps a bound method of itself (``_read_ready_cb``);
    - ``websockets``' protocol keeps its parser, a generator whose frame holds the protocol,
      and the ``EOFError`` that ended the parser, whose traceback holds that frame too.

    None of them is used once the connection is closed (``websockets`` refuses data after
    EOF before it steps the parser). Anything missing (another event loop, another version)
    is left alone: those objects then wait for a thaw (:class:`GcPolicy`).
    """
    protocol = getattr(connection, "protocol", None)
    if protocol is not None and getattr(protocol, "state", None) is State.CLOSED:
        if hasattr(protocol, "parser"):
            protocol.parser = None
        if hasattr(protocol, "parser_exc"):
            protocol.parser_exc = None
    transport = getattr(connection, "transport", None)
    if transport is not None and transport.is_closing() and hasattr(transport, "_read_ready_cb"):
        transport._read_ready_cb = None
