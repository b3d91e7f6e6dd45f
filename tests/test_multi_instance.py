"""Several instances of every part, behind real nginx, on loopback (docs/deploy.md, "Several
machines"; docs/RELIABILITY.md, "Several instances").

Two web processes, two standalone signalling hubs and two schedulers, against one
PostgreSQL database and Redis, behind nginx running ``deploy/nginx/telemed.conf``
(tests/multi_instance_helpers.py). Every request and socket of the clients goes through
nginx, as a browser's would:

- a consult goes from request to acceptance, and its call between two aiortc peers runs on
  two different hubs (nginx's ``least_conn`` sends the second socket to the idle hub; each
  hub's own "joined" events and socket gauge say who is where);
- the hub of one side is killed (SIGKILL) mid-call: that side's client *resumes* through
  nginx on the other hub (§9: the session is shared through Redis, the other hub adopts it),
  the other side sees its peer ``reconnecting`` and back but never leave, and media goes on
  over the same peer connections;
- the scheduler leader is killed while it is sending an e-mail; the standby takes over and
  sends the rest, and no message reaches the SMTP server twice.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, select

from signaling.testing.peer import AiortcPeer
from telemed.accounts.models import Role
from telemed.db import make_engine, utcnow
from telemed.demo.seed import seed_facilities
from telemed.notifications.models import DeliveryStatus, OutboxMessage
from telemed.settings import Environment, Settings
from tests.helpers import PASSWORD, Users, consult_payload
from tests.multi_instance_helpers import Cluster, Process, cluster, hub_gauge, wait_until

# The first test also starts seven processes (about 100 s on a loaded 2-core machine).
pytestmark = pytest.mark.timeout(600)

SPECIALIST = "mpho@example.org"
TIMEOUT = 30.0  # per awaited state of a peer: two aiortc peers on a busy 2-core machine
FRAMES = 5


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("multi")) as running:
        yield running


def client(base: str) -> httpx.Client:
    # nginx's certificate is self-signed; the page's own origin on every write.
    return httpx.Client(
        base_url=base,
        verify=False,  # noqa: S501
        timeout=30,
        headers={"Origin": base},
    )


def login(base: str, email: str) -> tuple[httpx.Client, dict[str, str]]:
    api = client(base)
    response = api.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return api, {"X-CSRF-Token": response.json()["csrf_token"]}


@pytest.fixture(scope="module")
def accepted(deployed: Cluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A consult requested by a nurse and accepted by a specialist who registered, was
    verified and set availability: every step through nginx, on whichever web process."""
    engine = make_engine(deployed.database_url)
    settings = Settings(
        env=Environment.test,
        database_url=deployed.database_url,
        data_dir=tmp_path_factory.mktemp("multi-users"),
    )
    with Session(engine) as session:  # `telemed users create`, as an operator would
        seed_facilities(session)
        session.commit()
        users = Users(session, settings)
        coordinator = users.make(Role.coordinator).email
        nurse = users.make(Role.clinician).email
    engine.dispose()

    anonymous = client(deployed.base)
    registered = anonymous.post(
        "/api/v1/specialists/register",
        json={
            "email": SPECIALIST,
            "full_name": "Dr Mpho Letsie",
            "password": PASSWORD,
            "specialties": ["paediatrics"],
            "languages": ["st", "en"],
            "country": "za",
            "time_zone": "Africa/Johannesburg",
            "registration_body": "HPCSA",
            "registration_number": "MP0712345",
            "registration_expires_on": (utcnow().date() + timedelta(days=300)).isoformat(),
            "bio": "Paediatrician, Bloemfontein.",
        },
    )
    assert registered.status_code == 201, registered.text
    specialist_id = registered.json()["user_id"]
    coord, coord_csrf = login(deployed.base, coordinator)
    verified = coord.post(
        f"/api/v1/specialists/{specialist_id}/verify",
        json={"note": "HPCSA register checked"},
        headers=coord_csrf,
    )
    assert verified.status_code == 200, verified.text
    specialist, specialist_csrf = login(deployed.base, SPECIALIST)
    every_day = [{"weekday": d, "start": "00:00", "end": "00:00"} for d in range(7)]
    put = specialist.put(
        "/api/v1/specialists/me/availability", json={"weekly": every_day}, headers=specialist_csrf
    )
    assert put.status_code == 200, put.text

    nursing, nurse_csrf = login(deployed.base, nurse)
    created = nursing.post("/api/v1/consults", json=consult_payload(), headers=nurse_csrf)
    assert created.status_code == 201, created.text
    consult_id = created.json()["id"]
    [offer] = specialist.get("/api/v1/offers").json()
    assert offer["consult_id"] == consult_id
    taken = specialist.post(f"/api/v1/offers/{offer['id']}/accept", headers=specialist_csrf)
    assert taken.status_code == 200, taken.text
    assert nursing.get(f"/api/v1/consults/{consult_id}").json()["state"] == "scheduled"
    return {
        "consult_id": consult_id,
        "nurse": (nursing, nurse_csrf),
        "specialist": (specialist, specialist_csrf),
    }


def ticket(api: tuple[httpx.Client, dict[str, str]], consult_id: int) -> dict[str, Any]:
    session, csrf = api
    response = session.post(f"/api/v1/consults/{consult_id}/call", headers=csrf)
    assert response.status_code == 200, response.text
    return dict(response.json())


def peer(api: tuple[httpx.Client, dict[str, str]], consult_id: int) -> AiortcPeer:
    """An aiortc peer on the ticket's ``wss://`` URL (nginx), fetching a new ticket for a
    full reconnect as the call page does."""
    first = ticket(api, consult_id)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # nginx's self-signed certificate

    async def again() -> str:
        return str((await asyncio.to_thread(ticket, api, consult_id))["token"])

    return AiortcPeer(
        first["ws_url"],
        first["room"],
        first["token"],
        token_factory=again,
        timeout_s=TIMEOUT,
        ssl_context=context,
    )


def joined(hub: Process, participant: str) -> int:
    return sum(e["participant"] == participant for e in hub.events("joined"))


async def media_flows(receiver: AiortcPeer) -> None:
    link = receiver.link()
    await receiver.wait_frames("video", link.frames["video"] + FRAMES, timeout_s=TIMEOUT)
    await receiver.wait_frames("audio", link.frames["audio"] + FRAMES, timeout_s=TIMEOUT)


def test_the_standby_scheduler_takes_over_and_sends_nothing_twice(
    deployed: Cluster, accepted: dict[str, Any]
) -> None:
    """The flow queued e-mails (the offer, the booking to both sides...). The SMTP server
    holds the first one it receives: the leader is then mid-send, and is killed. The
    standby takes over, sends the others, and never the one the leader was sending: it is
    left ``sending`` (marked failed, not resent, after ``outbox_stale_sending_minutes``)."""
    leader = deployed.leader()
    assert leader is not None
    [standby] = [s for s in deployed.schedulers if s is not leader]
    assert "Scheduler on standby" in standby.output()
    smtp = deployed.smtp
    assert smtp.held.wait(90), "the leader sent no e-mail"  # its deliveries run, every 15 s
    leader.kill()
    smtp.release.set()
    wait_until("the standby to lead", lambda: deployed.leader() is standby)

    engine = make_engine(deployed.database_url)
    try:

        def outbox() -> list[OutboxMessage]:
            with Session(engine) as session:
                return list(session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))))

        def settled() -> bool:
            # Nothing waiting, and nothing in flight but the message cut mid-send.
            statuses = Counter(m.status for m in outbox())
            return statuses[DeliveryStatus.pending] == 0 and statuses[DeliveryStatus.sending] <= 1

        wait_until("the standby to send the rest", settled, 90)
        messages = outbox()
    finally:
        engine.dispose()
    statuses = Counter(m.status for m in messages)
    assert statuses[DeliveryStatus.sending] == 1, statuses  # the one cut mid-send
    assert statuses[DeliveryStatus.sent] == len(messages) - 1 >= 2, statuses
    received = Counter((str(m["To"]), str(m["Subject"])) for m in smtp.received)
    assert received.most_common(1)[0][1] == 1, received  # nothing twice
    expected = Counter((m.recipient, m.subject) for m in messages)
    assert len(received) == len(messages)
    assert {subject for _, subject in received} == {subject for _, subject in expected}


def test_a_call_on_two_hubs_survives_one_hub_killed(
    deployed: Cluster, accepted: dict[str, Any]
) -> None:
    consult_id = accepted["consult_id"]
    nurse = peer(accepted["nurse"], consult_id)
    specialist = peer(accepted["specialist"], consult_id)

    async def call() -> None:
        try:
            await nurse.join()
            # nginx (least_conn) gave the first socket to one hub...
            await asyncio.to_thread(
                wait_until,
                "the nurse's join",
                lambda: sum(joined(h, nurse.participant) for h in deployed.hubs) == 1,
            )
            one, two = sorted(deployed.hubs, key=lambda h: -joined(h, nurse.participant))
            await specialist.join()
            # ...and the second to the other: each hub holds one side of the call.
            await asyncio.to_thread(
                wait_until,
                "the specialist's join",
                lambda: joined(two, specialist.participant) == 1,
            )
            assert joined(one, specialist.participant) == joined(two, nurse.participant) == 0
            assert hub_gauge(one, "connections") == hub_gauge(two, "connections") == 1
            await nurse.wait_connected(timeout_s=TIMEOUT)
            await specialist.wait_connected(timeout_s=TIMEOUT)
            await media_flows(nurse)
            await media_flows(specialist)
            assert nurse.signaling.errors == specialist.signaling.errors == []

            generations = (nurse.link().generation, specialist.link().generation)
            one.kill()  # the nurse's hub, mid-call
            await nurse.signaling.wait_until(
                lambda: nurse.signaling.resumes == 1, timeout_s=2 * TIMEOUT
            )
            # The session outlived its hub: the other one adopted it, through the same nginx.
            assert nurse.signaling.resumes_refused == nurse.signaling.full_reconnects == 0
            assert joined(two, nurse.participant) == 0
            await specialist.signaling.wait_until(
                lambda: (
                    specialist.signaling.peers[nurse.participant]["state"] == "active"
                    and len(specialist.signaling.peer_states) > 1
                )
            )
            # The specialist saw its peer drop and come back; nobody left or rejoined, and
            # neither side built a new peer connection.
            states = specialist.signaling.peer_states
            assert states[-2:] == [
                (nurse.participant, "reconnecting"),
                (nurse.participant, "active"),
            ]
            assert specialist.signaling.kinds["peer-left"] == 0
            assert (nurse.link().generation, specialist.link().generation) == generations
            await media_flows(nurse)
            await media_flows(specialist)
            assert hub_gauge(two, "connections") == 2
            assert nurse.failures == specialist.failures == []
        finally:
            await nurse.close()
            await specialist.close()

    asyncio.run(call())
    # Both hubs recorded the call on the consult (--store): the join on each, the resume.
    nursing = accepted["nurse"][0]

    def recorded() -> list[str]:
        sessions = nursing.get(f"/api/v1/consults/{consult_id}/sessions").json()
        return [e["kind"] for s in sessions for e in s["events"]]

    wait_until("the resume on the consult's record", lambda: "reconnected" in recorded())
    assert recorded().count("joined") == 2


def test_nginx_spread_the_requests_over_both_web_processes(
    deployed: Cluster, accepted: dict[str, Any]
) -> None:
    """Each web process answered some of the flow's API requests (uvicorn's access lines).
    ``accepted``: the flow itself, so that the test holds when it runs alone."""
    for process in deployed.web:
        assert "/api/v1/" in process.output(), process.name
