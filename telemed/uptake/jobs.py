"""The uptake rollup's job: brings ``uptake_facts`` and ``uptake_rollup`` up to now, in
one unit of work (``telemed.uptake.rollup.refresh`` says how and what it bounds)."""

from __future__ import annotations

from datetime import datetime

from telemed.settings import Settings
from telemed.uow import Units
from telemed.uptake import rollup


def refresh_rollup(units: Units, settings: Settings, now: datetime) -> int:
    """How many consults were counted again (0 after a full rebuild)."""
    with units.one() as session:
        return max(0, rollup.refresh(session, now))
