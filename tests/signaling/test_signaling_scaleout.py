"""Two server instances, one room: joined by the in-memory bus or by a real Redis.

A cross-instance peer may show up in ``welcome`` or a moment later as ``peer-joined``; the
tests accept either (``peers_seen``) and never wait on time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
from redis.asyncio import Redis
from signaling_helpers import ROOM, Client, Running, join, peer_of, running, token

from signaling.broker import Broker, InMemoryBroker, InMemoryBus, RedisBroker
from signaling.tokens import JtiStore, MemoryJtiStore, RedisJtiStore


@asynccontextmanager
async def two_instances(
    kind: str, request: pytest.FixtureRequest, prefix: str
) -> AsyncIterator[tuple[Running, Running]]:
    async with AsyncExitStack() as stack:
        brokers: list[Broker]
        stores: list[JtiStore]
        if kind == "memory":
            bus = InMemoryBus()
            brokers = [InMemoryBroker(bus), InMemoryBroker(bus)]
            shared = MemoryJtiStore()
            stores = [shared, shared]
        else:
            url = request.getfixturevalue("redis_url")
            brokers = [RedisBroker(url, prefix=prefix + "room:") for _ in range(2)]
            redis: Redis = Redis.from_url(url)
            stack.push_async_callback(redis.aclose)
            stores = [RedisJtiStore(redis, prefix=prefix + "jti:") for _ in range(2)]
        for broker in brokers:
            stack.push_async_callback(broker.close)
        one = await stack.enter_async_context(
            running(broker=brokers[0], jti_store=stores[0], node_id="one")
        )
        two = await stack.enter_async_context(
            running(broker=brokers[1], jti_store=stores[1], node_id="two")
        )
        yield one, two


@pytest.fixture(params=["memory", "redis"])
async def instances(
    request: pytest.FixtureRequest, key_prefix: str
) -> AsyncIterator[tuple[Running, Running]]:
    async with two_instances(request.param, request, key_prefix) as pair:
        yield pair


async def peer_seen(client: Client, welcome: dict[str, Any], participant: str) -> dict[str, Any]:
    """The peer object for ``participant``, from ``welcome`` or a later ``peer-joined``."""
    for peer in welcome["peers"]:
        if peer["participant"] == participant:
            assert isinstance(peer, dict)
            return peer
    frame = await client.until("peer-joined")
    assert peer_of(frame)["participant"] == participant
    return peer_of(frame)


async def test_peers_on_two_instances_exchange_offer_and_answer(
    instances: tuple[Running, Running],
) -> None:
    one, two = instances
    clin, welcome_c = await join(one.url, "u-clin")
    spec, welcome_s = await join(two.url, "u-spec", role="specialist")
    spec_seen_by_clin = await peer_seen(clin, welcome_c, "u-spec")
    clin_seen_by_spec = await peer_seen(spec, welcome_s, "u-clin")
    # Exactly one side of the pair is polite, though two instances decided.
    assert spec_seen_by_clin["polite"] != clin_seen_by_spec["polite"]

    rid = await clin.send(type="offer", to="u-spec", sdp="v=0 from one")
    await clin.expect("ack", rid=rid)
    offer = await spec.expect("offer", sdp="v=0 from one")
    assert offer["from"] == "u-clin"
    await spec.send(type="answer", to="u-clin", sdp="v=0 from two")
    answer = await clin.expect("answer", sdp="v=0 from two")
    assert answer["from"] == "u-spec"
    await spec.send(
        type="candidate", candidate={"candidate": "candidate:1 1 udp 1 10.0.0.2 9 typ host"}
    )
    await clin.expect("candidate")

    # Presence changes cross instances too; departures are announced on the other side.
    await spec.send(type="media", mode="low")
    update = await clin.expect("peer-updated")
    assert peer_of(update)["media"] == "low"
    await spec.send(type="leave")
    await clin.expect("peer-left", participant="u-spec", reason="left")
    # Each instance reported its own participant's events.
    assert (await one.next_event()).participant == "u-clin"
    assert (await two.next_event()).participant == "u-spec"


async def test_a_token_works_once_across_instances(instances: tuple[Running, Running]) -> None:
    one, two = instances
    tok = token("u-clin")
    first = await Client.connect(one.url)
    await first.hello(tok)
    again = await Client.connect(two.url)
    await again.send(type="hello", room=ROOM, token=tok)
    assert await again.refused("token_reused") == 4401


async def test_takeover_through_the_other_instance(instances: tuple[Running, Running]) -> None:
    one, two = instances
    clin, welcome_c = await join(one.url, "u-clin")
    spec, _ = await join(one.url, "u-spec", role="specialist")
    await peer_seen(clin, welcome_c, "u-spec")
    spec2, welcome2 = await join(two.url, "u-spec", role="specialist")
    assert await spec.refused("replaced") == 4409
    rejoined = await clin.until("peer-joined")
    assert peer_of(rejoined)["participant"] == "u-spec"
    assert rejoined["rejoined"] is True
    await peer_seen(spec2, welcome2, "u-clin")
    await clin.send(type="offer", to="u-spec", sdp="to the new socket")
    await spec2.until("offer", sdp="to the new socket")
