"""``/metrics`` after real actions: each family is present and counts what happened."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta
from functools import partial

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from telemed.accounts.models import Role
from telemed.app import create_app
from telemed.db import utcnow
from telemed.jobs import run_job
from telemed.jobs.runs import recorded
from telemed.notifications.service import deliver_due
from telemed.offers import service as offers
from telemed.offers.policy import OfferPolicy
from telemed.settings import Settings
from telemed.uow import Units
from tests.conftest import LoginFn
from tests.directory_helpers import Specialists
from tests.helpers import ManualClock, Users, consult_payload
from tests.metrics_helpers import Samples, families, parse, value

LOCAL = ("127.0.0.1", 41000)


@pytest.fixture
def scraper(settings: Settings, engine: Engine, clock: ManualClock) -> Iterator[TestClient]:
    """A client on the loopback address, as a Prometheus on the same host."""
    with TestClient(create_app(settings, engine, clock), client=LOCAL) as client:
        yield client


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nobody listens once the socket closes


def test_every_family_counts_what_happened(
    scraper: TestClient,
    login: LoginFn,
    users: Users,
    db: Session,
    engine: Engine,
    units: Units,
    settings: Settings,
    policy: OfferPolicy,
    clock: ManualClock,
) -> None:
    before = scrape(scraper)
    assert value(before, "telemed_database_up") == 1
    assert value(before, "telemed_consults", state="offered") == 0
    assert value(before, "telemed_offers_pending") == 0
    posted_before = before.get(
        (
            "telemed_http_request_duration_seconds_count",
            frozenset({"route": "/api/v1/consults", "method": "POST", "status": "201"}.items()),
        ),
        0.0,
    )

    # An urgent consult offered to the one paediatrician; an emergency in a specialty
    # nobody covers, escalated at once (nobody to offer it to), so the offers job has none.
    Specialists(db, settings, users).make()
    nurse = login(users.make(Role.clinician))
    offered = nurse.post("/api/v1/consults", consult_payload())
    assert offered.json()["state"] == "offered"
    uncovered = nurse.post(
        "/api/v1/consults", consult_payload(urgency="emergency", specialty="dermatology")
    ).json()
    assert uncovered["state"] == "escalated"
    t0 = utcnow()
    db.rollback()
    report = offers.process_due_offers(units, t0 + timedelta(minutes=6), policy)
    assert report.escalated == []

    # The deliveries job, against an SMTP server that is not there, one attempt allowed:
    # the offer's e-mail fails for good, and the run is recorded.
    clock.set(t0 + timedelta(minutes=10))
    unreachable = settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": closed_port(), "outbox_max_attempts": 1}
    )
    queued = scrape(scraper)
    waiting = value(queued, "telemed_outbox_depth", channel="email")
    assert waiting >= 1  # the offer's e-mail to the specialist
    assert value(queued, "telemed_outbox_failed", channel="email") == 0
    recorded(
        engine,
        clock,
        "deliveries",
        partial(run_job, engine, unreachable, clock, "deliveries", deliver_due),
    )()

    clock.set(t0 + timedelta(minutes=11, seconds=30))
    after = scrape(scraper)
    assert value(after, "telemed_consults", state="offered") == 1
    assert value(after, "telemed_consults", state="escalated") == 1
    assert value(after, "telemed_consults", state="completed") == 0  # every state is reported
    assert value(after, "telemed_offers_pending") == 1
    age = value(after, "telemed_offers_pending_oldest_age_seconds")
    assert 11 * 60 <= age < 13 * 60  # offered just before t0, scraped at t0 + 11.5 min
    assert value(after, "telemed_escalations_waiting") == 1
    escalated_age = value(after, "telemed_escalations_oldest_age_seconds")
    assert 11 * 60 <= escalated_age < 13 * 60  # escalated when requested, just before t0
    assert value(after, "telemed_outbox_depth", channel="email") == 0
    assert value(after, "telemed_outbox_failed", channel="email") == waiting
    assert value(after, "telemed_outbox_depth", channel="sms") == 0
    assert value(after, "telemed_job_lag_seconds", job="deliveries") == 90
    assert value(after, "telemed_job_last_success_timestamp_seconds", job="deliveries") == (
        (t0 + timedelta(minutes=10)).timestamp()
    )
    assert value(after, "telemed_job_last_run_ok", job="deliveries") == 1
    assert value(after, "telemed_job_failed_runs", job="deliveries") == 0
    posted = value(
        after,
        "telemed_http_request_duration_seconds_count",
        route="/api/v1/consults",
        method="POST",
        status="201",
    )
    assert posted == posted_before + 2
    for key in ("connections", "sessions", "rooms"):
        assert value(after, f"telemed_signaling_{key}") == 0  # no call (test_metrics_signaling)


def test_latency_is_labelled_by_route_template_not_by_raw_path(
    scraper: TestClient, login: LoginFn, users: Users
) -> None:
    nurse = login(users.make(Role.clinician))
    ids = [nurse.post("/api/v1/consults", consult_payload()).json()["id"] for _ in range(2)]
    for consult_id in ids:
        assert nurse.get(f"/api/v1/consults/{consult_id}").status_code == 200
    nurse.get("/no/such/page/12345")
    nurse.client.request("BREW", "/api/v1/consults")
    text = scraper.get("/metrics").text
    assert 'route="/api/v1/consults/{consult_id}"' in text
    assert all(f"/api/v1/consults/{i}" not in text for i in ids)
    assert 'route="<unmatched>",status="404"' in text.replace('method="GET",', "")
    assert "/no/such/page" not in text
    assert 'method="OTHER"' in text
    assert "BREW" not in text


def test_a_database_that_does_not_answer_is_reported_not_a_failed_scrape(
    settings: Settings, clock: ManualClock, tmp_path: object
) -> None:
    from telemed.db import make_engine

    gone = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    with TestClient(create_app(settings, gone, clock), client=LOCAL) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    samples = parse(response.text)
    assert value(samples, "telemed_database_up") == 0
    assert "telemed_http_request_duration_seconds" in families(response.text)
