"""All SQL of the job runs (``telemed.jobs.models.JobRun``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func
from sqlmodel import Session, col, select

from telemed.jobs.models import JobRun


def record(
    session: Session,
    job: str,
    *,
    started_at: datetime,
    finished_at: datetime,
    ok: bool,
    items: int,
    error: str = "",
) -> JobRun:
    """Add a run; an idle success following an idle success extends that row instead."""
    idle = ok and items == 0
    if idle:
        last = session.exec(
            select(JobRun).where(JobRun.job == job).order_by(col(JobRun.id).desc()).limit(1)
        ).first()
        if last is not None and last.ok and last.items == 0:
            last.finished_at = finished_at
            last.runs += 1
            session.add(last)
            session.flush()
            return last
    row = JobRun(
        job=job,
        started_at=started_at,
        finished_at=finished_at,
        ok=ok,
        items=items,
        error=error[:2000],
    )
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class JobHealth:
    job: str
    last_success: datetime | None
    last_finished: datetime
    last_ok: bool
    failures: int  # failed runs recorded


def health(session: Session) -> list[JobHealth]:
    """Per job: its last success, and how its latest run went."""
    summary = session.execute(
        select(
            JobRun.job,
            func.max(case((col(JobRun.ok), JobRun.finished_at))),
            func.sum(case((col(JobRun.ok), 0), else_=1)),
            func.max(JobRun.id),
        ).group_by(JobRun.job)
    ).all()
    latest_ids = [int(row[3]) for row in summary]
    latest = {
        run.job: run for run in session.exec(select(JobRun).where(col(JobRun.id).in_(latest_ids)))
    }
    found = []
    for job, last_success, failures, _ in summary:
        run = latest[job]
        found.append(
            JobHealth(
                job=job,
                last_success=last_success,
                last_finished=run.finished_at,
                last_ok=run.ok,
                failures=int(failures or 0),
            )
        )
    return sorted(found, key=lambda h: h.job)
