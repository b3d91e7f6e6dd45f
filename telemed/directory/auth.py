"""Who may do what in the directory.

- a specialist edits their own profile and availability;
- coordinators see every profile and verify or reject registrations.

The checks are the shared ones of ``telemed.accounts.auth`` (refusals "this is for
specialists" / "this is for coordinators").
"""

from __future__ import annotations

from telemed.accounts.auth import ensure_coordinator as ensure_coordinator
from telemed.accounts.auth import ensure_specialist as ensure_specialist
