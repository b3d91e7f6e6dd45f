"""Two application processes on one Redis, as a deployment with two ``telemed serve`` behind
a load balancer runs them: the embedded signalling hubs of two ``create_app`` instances (each
on its own uvicorn, its own event loop and its own database engine) configured with
``TELEMED_REDIS_URL``.

Without Redis each app would keep used tokens and rooms in its own memory: a ticket could be
used once per process, and a clinician on one process would wait forever for a specialist on
the other. These tests use a key prefix of their own (``TELEMED_REDIS_PREFIX``), so that
parallel runs on the one Redis never share a room (room names repeat: every test database
has a consult 1) or a used token.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from redis import Redis
from redis.exceptions import RedisError
from sqlmodel import Session
from websockets.asyncio.client import ClientConnection, connect

from telemed.accounts.models import Role
from telemed.consults.models import ParticipantRelation
from telemed.db import make_engine
from telemed.settings import Settings
from tests.conftest import require_service
from tests.helpers import Users, consult_payload
from tests.test_sessions import involve
from tests.test_sessions_ws import hello, http_login, receive, serve, ticket_for

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_settings(settings: Settings) -> Iterator[Settings]:
    """The test's settings on the live Redis with a prefix of its own; its keys are removed
    afterwards (used token ids would expire by themselves within the ticket lifetime)."""
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except (RedisError, OSError) as exc:
        client.close()
        require_service("Redis", f"{REDIS_URL}: {exc}")
    prefix = f"test-telemed-{secrets.token_hex(6)}:"
    yield settings.model_copy(update={"redis_url": REDIS_URL, "redis_prefix": prefix})
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)
    client.close()


@pytest.fixture
def app_a(redis_settings: Settings) -> Iterator[str]:
    yield from serve(redis_settings, make_engine(redis_settings.sqlalchemy_url))


@pytest.fixture
def app_b(redis_settings: Settings) -> Iterator[str]:
    yield from serve(redis_settings, make_engine(redis_settings.sqlalchemy_url))


@dataclass
class Call:
    """A consult whose clinician uses app A and whose assigned specialist uses app B."""

    consult_id: int
    nurse: tuple[httpx.Client, str]  # logged in on A
    specialist: tuple[httpx.Client, str]  # logged in on B

    def close(self) -> None:
        self.nurse[0].close()
        self.specialist[0].close()


@pytest.fixture
def call(app_a: str, app_b: str, users: Users, db: Session) -> Iterator[Call]:
    nurse_user, specialist_user = users.make(Role.clinician), users.make(Role.specialist)
    nurse = http_login(app_a, nurse_user.email)
    specialist = http_login(app_b, specialist_user.email)
    created = nurse[0].post(
        "/api/v1/consults", json=consult_payload(), headers={"X-CSRF-Token": nurse[1]}
    )
    assert created.status_code == 201, created.text
    consult_id = int(created.json()["id"])
    involve(db, consult_id, specialist_user, ParticipantRelation.assigned)
    pair = Call(consult_id, nurse, specialist)
    yield pair
    pair.close()


def signal_url(app_url: str) -> str:
    return app_url.replace("http://", "ws://") + "/ws/signal"


async def refused(ticket: dict[str, Any], ws_url: str) -> str:
    """The error code a ``hello`` with ``ticket``'s token gets at ``ws_url``."""
    ws, frame = await hello_or_error({**ticket, "ws_url": ws_url})
    await ws.close()
    assert frame["type"] == "error", frame
    return str(frame["code"])


async def hello_or_error(ticket: dict[str, Any]) -> tuple[ClientConnection, dict[str, Any]]:
    ws = await connect(ticket["ws_url"], open_timeout=10)
    await ws.send(
        json.dumps({"type": "hello", "rid": "1", "room": ticket["room"], "token": ticket["token"]})
    )
    async with asyncio.timeout(10):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] in ("welcome", "error"):
                return ws, dict(frame)


async def leave(ws: ClientConnection) -> None:
    await ws.send(json.dumps({"type": "leave", "rid": "9"}))
    await receive(ws, "ack")
    await ws.close()


def under(prefix: str, kind: str) -> list[str]:
    """What the apps keep in Redis under ``prefix``: ``keys`` or pub/sub ``channels``."""
    with Redis.from_url(REDIS_URL, socket_timeout=5, decode_responses=True) as client:
        if kind == "keys":
            return sorted(client.scan_iter(match=f"{prefix}*"))
        return sorted(client.pubsub_channels(f"{prefix}*"))


def test_a_ticket_used_on_one_app_is_refused_on_the_other(
    call: Call, app_a: str, app_b: str, redis_settings: Settings
) -> None:
    """Single use holds across processes, in both directions; and app B does accept app A's
    tickets (same secret), so the refusal is about the token having been used."""
    first = ticket_for(*call.nurse, call.consult_id)  # minted on A
    second = ticket_for(*call.nurse, call.consult_id)

    async def scenario() -> None:
        ws, welcome = await hello_or_error({**first, "ws_url": signal_url(app_a)})
        assert welcome["type"] == "welcome", welcome
        await leave(ws)
        assert await refused(first, signal_url(app_b)) == "token_reused"

        ws, welcome = await hello_or_error({**second, "ws_url": signal_url(app_b)})
        assert welcome["type"] == "welcome", welcome
        await leave(ws)
        assert await refused(second, signal_url(app_a)) == "token_reused"

    asyncio.run(scenario())
    # The two used token ids, under this test's prefix only.
    used = under(f"{redis_settings.redis_prefix}jti:", "keys")
    assert len(used) == 2


async def peer_seen(ws: ClientConnection, welcome: dict[str, Any], participant: str) -> None:
    """``participant`` is in the room as ``ws`` sees it: already in ``welcome``, or announced
    by a ``peer-joined`` soon after (which of the two depends on when the other app's answer
    to "who is here?" crosses Redis)."""
    if participant in [p["participant"] for p in welcome["peers"]]:
        return
    joined = await receive(ws, "peer-joined")
    assert joined["peer"]["participant"] == participant


def test_a_clinician_on_one_app_and_a_specialist_on_the_other_share_the_room(
    call: Call, redis_settings: Settings
) -> None:
    nurse_ticket = ticket_for(*call.nurse, call.consult_id)  # ws_url of app A
    specialist_ticket = ticket_for(*call.specialist, call.consult_id)  # ws_url of app B
    assert nurse_ticket["ws_url"] != specialist_ticket["ws_url"]
    nurse_id, specialist_id = nurse_ticket["participant"], specialist_ticket["participant"]

    async def scenario() -> None:
        nurse, nurse_welcome = await hello(nurse_ticket)
        specialist, specialist_welcome = await hello(specialist_ticket)
        await peer_seen(nurse, nurse_welcome, specialist_id)
        await peer_seen(specialist, specialist_welcome, nurse_id)
        room = f"{redis_settings.redis_prefix}room:consult-{call.consult_id}"
        assert room in await asyncio.to_thread(under, redis_settings.redis_prefix, "channels")

        await nurse.send(
            json.dumps({"type": "offer", "rid": "2", "to": specialist_id, "sdp": "v=0 from A"})
        )
        offer = await receive(specialist, "offer")
        assert (offer["from"], offer["sdp"]) == (nurse_id, "v=0 from A")
        await specialist.send(
            json.dumps({"type": "answer", "rid": "3", "to": nurse_id, "sdp": "v=0 from B"})
        )
        answer = await receive(nurse, "answer")
        assert (answer["from"], answer["sdp"]) == (specialist_id, "v=0 from B")

        await leave(specialist)
        gone = await receive(nurse, "peer-left")
        assert gone["participant"] == specialist_id
        await leave(nurse)

    asyncio.run(scenario())
