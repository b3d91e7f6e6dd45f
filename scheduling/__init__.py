"""Scheduling library: availability expansion and request-to-slot matching.

Pure functions over plain data; nothing here imports the web application or a database, so
the application composes it and the benchmark and tests drive it directly.
"""

from scheduling.availability import (
    Availability,
    ExtraHours,
    Leave,
    TimeSlot,
    WeeklyCap,
    WeeklyWindow,
    WeekUsage,
    expand,
    fits_weekly_cap,
    iso_week,
    load_zone,
    weekly_usage,
)
from scheduling.errors import SchedulingError
from scheduling.matching import (
    CostBreakdown,
    Matching,
    MatchingProblem,
    Pruning,
    check_assignments,
    cost_breakdown,
    eligible,
    exact,
    exact_assign,
    greedy,
    greedy_assign,
    optimise,
    optimise_assign,
    total_cost,
)
from scheduling.model import Assignment, CostModel, Request, Slot, Specialist, Urgency

__all__ = [
    "Assignment",
    "Availability",
    "CostBreakdown",
    "CostModel",
    "ExtraHours",
    "Leave",
    "Matching",
    "MatchingProblem",
    "Pruning",
    "Request",
    "SchedulingError",
    "Slot",
    "Specialist",
    "TimeSlot",
    "Urgency",
    "WeekUsage",
    "WeeklyCap",
    "WeeklyWindow",
    "check_assignments",
    "cost_breakdown",
    "eligible",
    "exact",
    "exact_assign",
    "expand",
    "fits_weekly_cap",
    "greedy",
    "greedy_assign",
    "iso_week",
    "load_zone",
    "optimise",
    "optimise_assign",
    "total_cost",
    "weekly_usage",
]
