"""Shared sessions (``signaling.sessions``): a client resumes on another instance, against
real Redis.

The store decides who adopts a session, once; the hubs carry the session over so that the
other participant sees its peer ``reconnecting`` and back, never leave, and the client gets
what it missed, numbered as it expects (protocol §2, §9).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from redis.asyncio import Redis
from signaling_helpers import Client, Running, join, peer_of, running

from signaling.broker import RedisBroker
from signaling.sessions import SessionRecord, SessionStore
from signaling.tokens import RedisJtiStore

RECORD = SessionRecord(session="s-1", room="r", participant="u-1", name="N", role="clinician")


async def test_of_two_adoptions_one_wins_and_the_used_token_is_void(
    redis_client: Redis, key_prefix: str
) -> None:
    store = SessionStore(redis_client, prefix=key_prefix)
    await store.open(RECORD, "token-0", node="a", ttl_s=60)
    assert b"token-0" not in (await redis_client.hgetall(f"{key_prefix}session:s-1")).values()

    both = await asyncio.gather(
        store.adopt("s-1", "token-0", "token-b", node="b", ttl_s=60),
        store.adopt("s-1", "token-0", "token-c", node="c", ttl_s=60),
    )

    [won] = [a for a in both if a is not None]
    assert (won.epoch, won.room, won.participant) == (1, "r", "u-1")
    assert await store.adopt("s-1", "token-0", "token-d", node="d", ttl_s=60) is None
    winner = "token-b" if both[0] is not None else "token-c"
    again = await store.adopt("s-1", winner, "token-e", node="e", ttl_s=60)
    assert again is not None
    assert again.epoch == 2


async def test_an_expired_or_ended_session_cannot_be_adopted(
    redis_client: Redis, key_prefix: str
) -> None:
    store = SessionStore(redis_client, prefix=key_prefix)
    await store.open(RECORD, "token-0", node="a", ttl_s=0.001)
    await asyncio.sleep(0.01)  # its time to live (grace period and then some) is over
    assert await store.adopt("s-1", "token-0", "token-1", node="b", ttl_s=60) is None

    await store.open(RECORD, "token-0", node="a", ttl_s=60)
    await store.forget("s-1", epoch=1)  # not the current epoch: someone else holds it
    assert await store.adopt("s-1", "token-0", "token-1", node="b", ttl_s=60) is not None
    await store.forget("s-1", epoch=1)  # left, or gone at the end of its grace period
    assert await store.adopt("s-1", "token-1", "token-2", node="c", ttl_s=60) is None


@asynccontextmanager
async def hub(url: str, prefix: str, node: str) -> AsyncIterator[Running]:
    async with AsyncExitStack() as stack:
        redis: Redis = Redis.from_url(url)
        stack.push_async_callback(redis.aclose)
        broker = RedisBroker(url, prefix=prefix + "room:", sequenced=True)
        stack.push_async_callback(broker.close)
        yield await stack.enter_async_context(
            running(
                broker=broker,
                jti_store=RedisJtiStore(redis, prefix=prefix + "jti:"),
                sessions=SessionStore(redis, prefix=prefix),
                node_id=node,
            )
        )


async def until_state(client: Client, participant: str, state: str) -> None:
    frame = await client.until("peer-updated")
    assert peer_of(frame)["participant"] == participant
    assert peer_of(frame)["state"] == state, frame


async def test_a_client_whose_instance_ended_resumes_on_the_other(
    redis_url: str, key_prefix: str
) -> None:
    async with hub(redis_url, key_prefix, "two") as two, hub(redis_url, key_prefix, "one") as one:
        clin, _ = await join(one.url, "u-clin")
        spec, welcome = await join(two.url, "u-spec", role="specialist")
        if not welcome["peers"]:
            await spec.until("peer-joined")
        await clin.until("peer-joined")
        await spec.send(type="offer", to="u-clin", sdp="v=0 first")
        await clin.until("offer", sdp="v=0 first")
        session, old_token, last_seq = clin.session, clin.resume_token, clin.last_seq
        # Instance one ends (its sockets closed, its liveness key deleted); two notices at
        # its next sweep, or from one's last word about its member.
        await one.hub.stop()
        await two.hub.sweep()
        await until_state(spec, "u-clin", "reconnecting")
        rid = await spec.send(type="offer", to="u-clin", sdp="v=0 while away")
        await spec.expect("ack", rid=rid)

        moved = await Client.connect(two.url)
        rid = await moved.send(
            type="resume", session=session, resume_token=old_token, last_seq=last_seq
        )
        resumed = await moved.expect("resumed", rid=rid, replayed=1)
        assert [p["participant"] for p in resumed["peers"]] == ["u-spec"]
        moved.last_seq = last_seq  # the client keeps its own (§2)
        await moved.expect("offer", sdp="v=0 while away")
        await until_state(spec, "u-clin", "active")
        await moved.send(type="answer", to="u-spec", sdp="v=0 answer")
        frame = await spec.recv()
        assert (frame["type"], frame["sdp"]) == ("answer", "v=0 answer"), frame  # no peer-left

        again = await Client.connect(two.url)  # the old token again: void everywhere
        await again.send(type="resume", session=session, resume_token=old_token, last_seq=0)
        assert await again.refused("resume_failed") == 4404
