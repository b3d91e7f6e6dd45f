"""The collector that reads the database's state of the service at scrape time.

A scrape runs the handful of aggregates in ``readings`` in one read-only session; if the
database cannot answer, the scrape still succeeds and says so (``telemed_database_up 0``),
so that an alert can tell "no consults" from "no database".
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlmodel import Session

from telemed.clock import Clock
from telemed.consults.models import ConsultState
from telemed.notifications.models import Channel, DeliveryStatus
from telemed.observability.readings import OUTBOX_WAITING, Readings, read

log = logging.getLogger(__name__)


def _age(now: datetime, since: datetime | None) -> float:
    return max((now - since).total_seconds(), 0.0) if since is not None else 0.0


def gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class DatabaseCollector(Collector):
    """Consults by state, open offers, escalations, the outbox and the jobs, as of ``clock``."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        try:
            with Session(self._engine) as session:
                readings = read(session)
        except Exception:  # a scrape must not fail with the database: report it down
            log.exception("metrics: the database could not be read")
            yield gauge("telemed_database_up", "1 if the database answered the scrape.", 0)
            return
        yield gauge("telemed_database_up", "1 if the database answered the scrape.", 1)
        yield from self._families(readings, self._clock.now())

    def _families(self, found: Readings, now: datetime) -> Iterator[Metric]:
        consults = GaugeMetricFamily(
            "telemed_consults", "Consults in each state.", labels=["state"]
        )
        for state in ConsultState:
            consults.add_metric([state.value], found.consults_by_state.get(state.value, 0))
        yield consults
        yield gauge("telemed_offers_pending", "Offers open, awaiting an answer.", found.offers_open)
        yield gauge(
            "telemed_offers_pending_oldest_age_seconds",
            "Age of the oldest open offer (0 when none).",
            _age(now, found.oldest_open_offer_at),
        )
        yield gauge(
            "telemed_escalations_waiting",
            "Consults escalated to the coordinators and not yet assigned.",
            found.escalated,
        )
        yield gauge(
            "telemed_escalations_oldest_age_seconds",
            "Time since the oldest waiting escalation was escalated (0 when none).",
            _age(now, found.oldest_escalation_at),
        )
        depth = GaugeMetricFamily(
            "telemed_outbox_depth",
            "E-mail and SMS waiting to be sent (pending, sending or retrying).",
            labels=["channel"],
        )
        failed = GaugeMetricFamily(
            "telemed_outbox_failed",
            "E-mail and SMS that failed for good, until a coordinator retries them.",
            labels=["channel"],
        )
        by = found.outbox_by_channel_status
        for channel in Channel:
            waiting = sum(by.get((channel.value, s.value), 0) for s in OUTBOX_WAITING)
            depth.add_metric([channel.value], waiting)
            failed.add_metric([channel.value], by.get((channel.value, DeliveryStatus.failed), 0))
        yield depth
        yield failed
        yield from _job_families(found, now)


def _job_families(found: Readings, now: datetime) -> Iterator[Metric]:
    last_success = GaugeMetricFamily(
        "telemed_job_last_success_timestamp_seconds",
        "When each periodic job last finished successfully (Unix time).",
        labels=["job"],
    )
    lag = GaugeMetricFamily(
        "telemed_job_lag_seconds",
        "Seconds since each periodic job last finished successfully.",
        labels=["job"],
    )
    last_ok = GaugeMetricFamily(
        "telemed_job_last_run_ok", "1 if the job's latest run succeeded.", labels=["job"]
    )
    failures = GaugeMetricFamily(
        "telemed_job_failed_runs", "Failed runs of each job recorded in job_runs.", labels=["job"]
    )
    for job in found.jobs:
        if job.last_success is not None:
            last_success.add_metric([job.job], job.last_success.timestamp())
            lag.add_metric([job.job], _age(now, job.last_success))
        last_ok.add_metric([job.job], 1 if job.last_ok else 0)
        failures.add_metric([job.job], job.failures)
    yield from (last_success, lag, last_ok, failures)
