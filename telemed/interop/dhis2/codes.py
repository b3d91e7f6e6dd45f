"""Every (indicator, category) the monthly export can produce: what a mapping file must
cover and may name, so that a typo in the file is caught when it is read, not when DHIS2
silently receives nothing for a count.

Derived from ``telemed.uptake`` (its indicators, which are sent by category, which are not
per facility, and which are durations sent as a sum and a count). The categories come from
the enums the rows are stored with, not from ``Indicator.categories``, which lists only the
usual outcomes: a rarer outcome (died, admitted, lost to follow-up) is counted too.
"""

from __future__ import annotations

from enum import StrEnum

from telemed.consults.models import Urgency
from telemed.notes.models import Outcome
from telemed.precall.models import NetworkRecommendation
from telemed.uptake.indicators import INDICATORS, Measure
from telemed.uptake.monthly import BY_CATEGORY, NOT_PER_FACILITY

CATEGORY_OPTIONS: dict[str, type[StrEnum]] = {
    "requests": Urgency,
    "outcomes": Outcome,
    "network_tests": NetworkRecommendation,
}


def exportable() -> dict[str, tuple[str, ...]]:
    """Indicator key (as in ``FacilityValue.indicator``) -> its category options; an empty
    tuple for a count that is not disaggregated."""
    out: dict[str, tuple[str, ...]] = {}
    for key, indicator in INDICATORS.items():
        if key in NOT_PER_FACILITY:
            continue
        if indicator.measure is Measure.duration:
            out[f"{key}_seconds_sum"] = ()
            out[f"{key}_count"] = ()
        elif key in BY_CATEGORY:
            out[key] = tuple(option.value for option in CATEGORY_OPTIONS[key])
        else:
            out[key] = ()
    return out
