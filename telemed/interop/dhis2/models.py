"""What was pushed to DHIS2: one row per (period, data set), updated on each attempt, so the
monthly job sends a month once and retries it after a failure.

``pushed_at`` is set by the first push DHIS2 accepted (status SUCCESS or WARNING: a warning's
conflicts are in the mapping or in DHIS2, and sending the same document again would not
resolve them); until then every run tries again. A forced push (``telemed dhis2 push
--force``) sends again and updates the row.

``requested_at``: a coordinator asked for the month from the exports page. The request is
not sent by the page (DHIS2 may take a minute to answer, and a page's transaction must not
wait for it): the scheduler's ``dhis2`` job sends every requested month on its next run,
forced, and clears the request whatever the answer, which the page then shows.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlmodel import Field, SQLModel

from telemed.db import UTCDateTime, utcnow


class Dhis2Push(SQLModel, table=True):
    __tablename__ = "dhis2_pushes"
    __table_args__ = (UniqueConstraint("period", "data_set", name="uq_dhis2_push_period"),)
    id: int | None = Field(default=None, primary_key=True)
    period: str = Field(sa_type=String(7))  # YYYY-MM, a Maseru calendar month
    data_set: str = Field(sa_type=String(11))  # the DHIS2 data set UID
    attempts: int = 0
    last_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # SUCCESS, WARNING or ERROR (DHIS2's), or "failed": no usable answer.
    last_status: str = Field(default="", sa_type=String(16))
    last_error: str = Field(default="", max_length=500)
    pushed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    values_sent: int = 0
    imported: int = 0
    updated: int = 0
    ignored: int = 0
    deleted: int = 0
    conflicts: int = 0
    requested_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    requested_by_id: int | None = Field(default=None, foreign_key="users.id")
