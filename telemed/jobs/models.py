"""One row per run of a periodic job, so that "when did the deliveries last succeed?" has an
answer that survives restarts and is the same from every process (``/metrics`` reads it at
scrape; the runner may live in another process than the one scraped).

Runs that succeed with nothing to do are folded into one row per idle streak (``runs``
counts them, ``finished_at`` moves on): the audit sealer runs every two seconds, and a row
for each of its idle runs would grow the table by 40,000 rows a day to say nothing. A run
that did something, or failed, always has a row of its own.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlmodel import Field, SQLModel

from telemed.db import UTCDateTime


class JobRun(SQLModel, table=True):
    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_job_id", "job", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(sa_type=String(40))  # the runner's job name, e.g. "deliveries"
    started_at: datetime = Field(sa_type=UTCDateTime)  # of the first run of an idle streak
    finished_at: datetime = Field(sa_type=UTCDateTime)  # of the last run
    ok: bool
    error: str = Field(default="", sa_type=Text)  # what failed, when not ok
    items: int = 0  # what the run did: messages sent, rows sealed, consults offered...
    runs: int = 1  # idle successful runs folded into this row


class SchedulerLease(SQLModel, table=True):
    """Who runs the periodic jobs on SQLite, which has no advisory locks: a lease that its
    holder renews while alive and that another process may take once it has expired
    (``telemed.jobs.lease``). One row per lease name."""

    __tablename__ = "scheduler_leases"
    name: str = Field(primary_key=True, sa_type=String(40))
    holder: str = Field(sa_type=String(200))  # host, pid and a random id of the runner
    expires_at: datetime = Field(sa_type=UTCDateTime)
