"""Run every Python process of a test run on a chosen date (issue #16: CI must pass in July).

Python imports ``sitecustomize`` at start-up from its path; the Makefile (``make test`` with
``TELEMED_TEST_TODAY=2027-07-15``) and the browser tests (a server started on a given date)
put this directory on ``PYTHONPATH``. It moves the wall clock (``datetime.now``,
``time.time``, ...) with time-machine and lets it tick; monotonic clocks stay real, so
waits, timeouts and the scheduler's timers behave.

``TELEMED_TEST_TODAY`` (a date) puts the first process at 10:00 UTC that day; it leaves
the offset in ``TELEMED_TEST_CLOCK_OFFSET`` (seconds), which its children inherit, so that
every process of the run agrees on the time. A process started with an offset only (the
browser tests' servers) uses that.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime
from datetime import time as clock_time

_offset = os.environ.get("TELEMED_TEST_CLOCK_OFFSET")
_today = os.environ.get("TELEMED_TEST_TODAY")
if _offset is None and _today:
    _start = datetime.combine(date.fromisoformat(_today), clock_time(10), UTC)
    _offset = repr(_start.timestamp() - time.time())
    os.environ["TELEMED_TEST_CLOCK_OFFSET"] = _offset
if _offset is not None:
    import time_machine

    time_machine.travel(time.time() + float(_offset), tick=True).start()
