"""Brokers: the same contract for the in-memory and the Redis implementation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from signaling.broker import Broker, InMemoryBroker, InMemoryBus, RedisBroker

TIMEOUT = 5


@asynccontextmanager
async def memory_pair(prefix: str) -> AsyncIterator[tuple[Broker, Broker]]:
    bus = InMemoryBus()
    one, two = InMemoryBroker(bus), InMemoryBroker(bus)
    yield one, two
    await one.close()
    await two.close()


@asynccontextmanager
async def redis_pair(prefix: str, url: str) -> AsyncIterator[tuple[Broker, Broker]]:
    one, two = RedisBroker(url, prefix=prefix), RedisBroker(url, prefix=prefix)
    try:
        yield one, two
    finally:
        await one.close()
        await two.close()


@pytest.fixture(params=["memory", "redis"])
async def pair(
    request: pytest.FixtureRequest, key_prefix: str
) -> AsyncIterator[tuple[Broker, Broker]]:
    if request.param == "memory":
        async with memory_pair(key_prefix) as brokers:
            yield brokers
    else:
        url = request.getfixturevalue("redis_url")
        async with redis_pair(key_prefix, url) as brokers:
            yield brokers


async def receive(broker: Broker) -> tuple[str, str]:
    return await asyncio.wait_for(broker.receive(), TIMEOUT)


async def test_subscribers_receive_in_publication_order(pair: tuple[Broker, Broker]) -> None:
    one, two = pair
    await one.subscribe("room-a")
    await two.subscribe("room-a")
    for i in range(50):
        await one.publish("room-a", f"m{i}")
    assert [await receive(two) for _ in range(50)] == [("room-a", f"m{i}") for i in range(50)]
    # The publisher hears itself too; the server filters its own messages by instance id.
    assert await receive(one) == ("room-a", "m0")


async def test_only_subscribed_rooms_are_received(pair: tuple[Broker, Broker]) -> None:
    one, two = pair
    await two.subscribe("room-a")
    await one.publish("room-b", "not for you")
    await one.publish("room-a", "for you")
    assert await receive(two) == ("room-a", "for you")


async def test_unsubscribe_stops_delivery(pair: tuple[Broker, Broker]) -> None:
    one, two = pair
    await two.subscribe("room-a")
    await two.subscribe("room-b")
    await two.unsubscribe("room-a")
    await two.unsubscribe("never-subscribed")
    await one.publish("room-a", "gone")
    await one.publish("room-b", "still here")
    assert await receive(two) == ("room-b", "still here")
