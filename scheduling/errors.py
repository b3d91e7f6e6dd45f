"""The one error family raised by the scheduling library.

The application maps a single base class to one HTTP answer (400 with the message), so every
problem this package detects in its input is a :class:`SchedulingError` whose message names
the offending value. Subclasses exist only where a caller may want to tell cases apart.
"""

from __future__ import annotations


class SchedulingError(ValueError):
    """Invalid scheduling input (a window, a time zone, a slot length, an instance...).

    It subclasses :class:`ValueError` because every case is a bad value handed to a pure
    function; callers that only know the standard library still catch it sensibly.
    """


class InvalidWindowError(SchedulingError):
    """A weekly window or a dated exception is inverted, overlapping or off the slot grid."""


class UnknownTimeZoneError(SchedulingError):
    """The IANA time zone name is not known to :mod:`zoneinfo` (or is not a valid key)."""


class InvalidSlotLengthError(SchedulingError):
    """The slot length is not a positive whole number of minutes that divides a day."""


class InvalidInstanceError(SchedulingError):
    """A matching instance is inconsistent (duplicate ids, unknown specialist, bad times)."""


class SolverError(SchedulingError):
    """The min-cost-flow solver did not report an optimal solution."""


class InvalidAssignmentError(SchedulingError):
    """A set of assignments breaks eligibility, a cap, a slot's capacity or uniqueness."""
