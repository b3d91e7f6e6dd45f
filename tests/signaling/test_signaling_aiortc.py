"""Two aiortc peers hold a call through the real signalling server.

Real ``websockets`` server and clients on loopback, tokens from ``signaling.tokens``, real
WebRTC (ICE, DTLS, SRTP, VP8 and Opus) between two aiortc peer connections in this process:
the server only relays what the protocol page says, and media frames arrive on both sides.
The same with the two peers on two server instances joined by a real Redis.

Nothing waits on time: every wait is for a state (connected, N frames received) with a timeout.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
from redis.asyncio import Redis
from signaling_helpers import ROOM, Running, running, token

from signaling.broker import RedisBroker
from signaling.testing.peer import AiortcPeer, call
from signaling.tokens import RedisJtiStore

FRAMES = 5  # per kind: proves media flows without making the test long
TIMEOUT = 10.0


def peer(url: str, participant: str, role: str = "clinician", **kwargs: Any) -> AiortcPeer:
    return AiortcPeer(url, ROOM, token(participant, role=role), timeout_s=TIMEOUT, **kwargs)


@asynccontextmanager
async def peers(*made: AiortcPeer) -> AsyncIterator[tuple[AiortcPeer, ...]]:
    try:
        yield made
    finally:
        for p in made:
            await p.close()


async def media_flows(receiver: AiortcPeer, participant: str | None = None) -> None:
    """Wait for FRAMES more audio and video frames from ``participant``."""
    link = receiver.link(participant)
    audio, video = link.frames["audio"], link.frames["video"]
    await receiver.wait_frames("video", video + FRAMES, participant)
    await receiver.wait_frames("audio", audio + FRAMES, participant)


async def test_two_aiortc_peers_hold_a_call_through_the_server() -> None:
    async with running() as server:
        clin = peer(server.url, "u-clin")
        spec = peer(server.url, "u-spec", role="specialist")
        async with peers(clin, spec):
            link_c, link_s = await call(clin, spec)
            assert link_c.participant == "u-spec"
            assert link_s.participant == "u-clin"
            # The newcomer is polite; the clinician, impolite, made the offer.
            assert (link_c.polite, link_s.polite) == (False, True)
            await media_flows(clin)
            await media_flows(spec)
            # Everything went through the protocol without a refusal or a handler error.
            assert clin.signaling.errors == []
            assert spec.signaling.errors == []
            assert clin.failures == []
            assert spec.failures == []
            assert clin.local_candidate_types() == {"host"}
            assert link_c.generation == link_s.generation == 1


async def test_media_keeps_flowing_while_the_signalling_socket_resumes() -> None:
    async with running() as server:
        clin = peer(server.url, "u-clin", auto_resume=False)
        spec = peer(server.url, "u-spec", role="specialist")
        async with peers(clin, spec):
            await call(clin, spec)
            clin.drop()
            await spec.signaling.wait_until(
                lambda: spec.signaling.peers["u-clin"]["state"] == "reconnecting"
            )
            # While the clinician is away the specialist changes its media mode: the server
            # keeps the notice for the clinician and replays it on resume.
            await spec.set_media("low")
            await media_flows(spec)  # media does not need the signalling socket
            resumed = await clin.signaling.resume()
            assert resumed["replayed"] >= 1
            await clin.signaling.wait_until(lambda: clin.link("u-spec").media == "low")
            await spec.signaling.wait_until(
                lambda: spec.signaling.peers["u-clin"]["state"] == "active"
            )
            # The same peer connections carry on: a resume rebuilds nothing.
            assert clin.link().generation == spec.link().generation == 1
            await media_flows(clin)
            await media_flows(spec)
            assert clin.failures == spec.failures == []


async def test_an_aiortc_peer_restarts_ice_by_building_a_new_connection() -> None:
    async with running() as server:
        clin = peer(server.url, "u-clin")
        spec = peer(server.url, "u-spec", role="specialist")
        async with peers(clin, spec):
            await call(clin, spec)
            # The polite side asks; the impolite side builds a new connection and offers.
            await spec.signaling.request("ice-restart", to="u-clin", reason="network changed")
            await clin.signaling.wait_until(lambda: clin.link().generation == 2)
            await spec.signaling.wait_until(lambda: spec.link().generation == 2)
            await clin.wait_connected()
            await spec.wait_connected()
            await media_flows(spec)
            await media_flows(clin)
            assert clin.failures == spec.failures == []


async def test_a_full_reconnect_takes_over_and_renegotiates() -> None:
    async with running() as server:
        clin = peer(server.url, "u-clin")
        spec = peer(server.url, "u-spec", role="specialist")
        async with peers(clin, spec):
            await call(clin, spec)
            # The clinician's app restarted: a new token, a new session, a new connection.
            again = peer(server.url, "u-clin")
            async with peers(again):
                await again.join()
                await clin.signaling.wait_until(lambda: clin.signaling.close_code == 4409)
                assert not clin.signaling.connected  # replaced: does not come back
                await again.wait_connected()
                await spec.wait_connected()
                assert spec.link().generation == 2
                # Roles survive the takeover: the clinician is still the impolite side.
                assert (again.link().polite, spec.link().polite) == (False, True)
                await media_flows(spec)
                await media_flows(again)


async def test_a_failed_resume_falls_back_to_a_full_reconnect() -> None:
    async with running() as server:
        # token_factory stands for the application handing out a fresh join token.
        clin = peer(server.url, "u-clin", token_factory=lambda: token("u-clin"))
        spec = peer(server.url, "u-spec", role="specialist")
        async with peers(clin, spec):
            await call(clin, spec)
            old_session = clin.signaling.session
            clin.signaling.resume_token = "forgotten"  # so that the resume is refused
            clin.drop()
            await clin.signaling.wait_until(lambda: clin.signaling.full_reconnects == 1)
            assert clin.signaling.session != old_session
            assert clin.signaling.resumes == 0
            # Both sides start a new peer connection; roles are unchanged.
            await clin.signaling.wait_until(lambda: clin.link().generation == 1)
            await spec.signaling.wait_until(lambda: spec.link().generation == 2)
            await clin.wait_connected()
            await spec.wait_connected()
            await media_flows(clin)
            await media_flows(spec)
            assert clin.failures == spec.failures == []


async def test_an_audio_only_offer_gets_an_audio_only_answer() -> None:
    async with running() as server:
        clin = peer(server.url, "u-clin", video=False)  # the offering side
        spec = peer(server.url, "u-spec", role="specialist")
        async with peers(clin, spec):
            await call(clin, spec)
            await clin.wait_frames("audio", FRAMES)
            await spec.wait_frames("audio", FRAMES)
            pc = spec.link().pc
            assert pc is not None
            assert [t.kind for t in pc.getTransceivers()] == ["audio"]
            assert clin.link().frames["video"] == 0
            assert clin.failures == spec.failures == []


async def test_a_data_channel_carries_chat() -> None:
    async with running() as server:
        clin = peer(server.url, "u-clin", data_channel=True)
        spec = peer(server.url, "u-spec", role="specialist", data_channel=True)
        async with peers(clin, spec):
            await call(clin, spec)
            await spec.signaling.wait_until(
                lambda: spec.link().channel is not None and spec.link().channel.readyState == "open"  # type: ignore[union-attr]
            )
            spec.send_message("Sawubona, photo follows")
            assert await clin.wait_message(1) == ["Sawubona, photo follows"]


@asynccontextmanager
async def redis_instances(url: str, prefix: str) -> AsyncIterator[tuple[Running, Running]]:
    async with AsyncExitStack() as stack:
        redis: Redis = Redis.from_url(url)
        stack.push_async_callback(redis.aclose)
        instances = []
        for node in ("one", "two"):
            broker = RedisBroker(url, prefix=prefix + "room:")
            stack.push_async_callback(broker.close)
            store = RedisJtiStore(redis, prefix=prefix + "jti:")
            instances.append(
                await stack.enter_async_context(
                    running(broker=broker, jti_store=store, node_id=node)
                )
            )
        yield instances[0], instances[1]


async def test_two_aiortc_peers_on_two_instances_joined_by_redis(
    redis_url: str, key_prefix: str
) -> None:
    async with redis_instances(redis_url, key_prefix) as (one, two):
        clin = peer(one.url, "u-clin")
        spec = peer(two.url, "u-spec", role="specialist")
        async with peers(clin, spec):
            link_c, link_s = await call(clin, spec)
            assert link_c.polite != link_s.polite
            await media_flows(clin)
            await media_flows(spec)
            assert clin.signaling.errors == spec.signaling.errors == []
            assert clin.failures == spec.failures == []
            # A resume on the instance holding the session works across the broker too.
            clin.drop()
            await clin.signaling.wait_until(lambda: clin.signaling.resumes == 1)
            await spec.signaling.wait_until(
                lambda: spec.signaling.peers["u-clin"]["state"] == "active"
            )
            await media_flows(clin)


@pytest.fixture(autouse=True)
def _quiet_aioice(caplog: pytest.LogCaptureFixture) -> None:
    """aioice logs every failed connectivity check at INFO; keep failure reports readable."""
    caplog.set_level("WARNING", logger="aioice")
