"""Two deployments on one Redis server never hear each other (issue 14, item 2).

Each deployment runs two instances of its hub built as the application builds it
(``telemed.sessions.hub.build_hub``): one mounted in-app (Starlette under uvicorn), one
standalone (``telemed signal``). Both deployments have a consult 1 with the same participant
ids and, worst case, the same secret key; only their database names differ, and with them the
default Redis prefix. Before the prefix, the second clinician's presence replaced the first and
offers crossed over (pub/sub ignores the database number in the Redis URL).
"""

from __future__ import annotations

import contextlib
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis
from signaling_helpers import Client, starlette_app

from signaling.server import serve
from signaling.tokens import mint_token
from telemed.sessions import service
from telemed.sessions.hub import build_hub
from telemed.settings import Settings

ROOM = "consult-1"


@contextlib.asynccontextmanager
async def deployment(settings: Settings) -> AsyncIterator[tuple[str, str]]:
    """The deployment's in-app and standalone instances; yields their two URLs."""
    in_app, standalone = build_hub(settings, None), build_hub(settings, None)
    await in_app.start()
    await standalone.start()
    server = await serve(standalone.hub, "127.0.0.1", 0)
    port = next(iter(server.sockets)).getsockname()[1]
    try:
        async with starlette_app(in_app.hub) as app_url:
            yield app_url, f"ws://127.0.0.1:{port}/"
    finally:
        server.close()
        await server.wait_closed()
        await in_app.stop()
        await standalone.stop()


async def join(
    settings: Settings, url: str, participant: str, role: str
) -> tuple[Client, dict[str, Any]]:
    client = await Client.connect(url)
    secret = service.signaling_secret(settings)
    welcome = await client.hello(
        mint_token(secret, room=ROOM, participant=participant, name=participant, role=role)
    )
    return client, welcome


async def call(
    settings: Settings, app_url: str, standalone_url: str, sdp: str
) -> tuple[Client, Client]:
    """A clinician in-app and a specialist on the standalone server meet through Redis and
    exchange an offer; returns both."""
    clin, _ = await join(settings, app_url, "u-clin", "clinician")
    spec, welcome = await join(settings, standalone_url, "u-spec", "specialist")
    if not welcome["peers"]:  # the clinician's presence had not reached this instance yet
        await spec.until("peer-joined")
    await clin.until("peer-joined")
    await spec.send(type="offer", to="u-clin", sdp=sdp)
    await clin.expect("offer", sdp=sdp)
    return clin, spec


async def test_two_deployments_on_one_redis_keep_their_rooms_and_tokens_apart(
    redis_url: str, redis_client: Redis
) -> None:
    tag = secrets.token_hex(4)
    a, b = (
        Settings(
            database_url=f"postgresql+psycopg://postgres@127.0.0.1/tenant_{name}_{tag}",
            redis_url=redis_url,
            secret_key="the same secret key in both deployments, alas",
        )
        for name in ("a", "b")
    )
    assert a.redis_key_prefix == f"telemed:tenant_a_{tag}:"
    try:
        async with deployment(a) as (a_app, a_alone), deployment(b) as (b_app, b_alone):
            clin_a, spec_a = await call(a, a_app, a_alone, "v=0 from a")
            clin_b, spec_b = await call(b, b_app, b_alone, "v=0 from b")
            # B's presence and offer went through Redis before these offers, and one listener
            # task per instance delivers what Redis sends in order: a frame of the other
            # deployment (a foreign offer, a `replaced`) would come before them.
            for clin, spec, sdp in ((clin_a, spec_a, "again a"), (clin_b, spec_b, "again b")):
                await spec.send(type="offer", to="u-clin", sdp=sdp)
                await clin.expect("offer", sdp=sdp)
                await clin.roundtrip()
                await spec.send(type="ping", rid="last")
                seen = []
                while (frame := await spec.recv()).get("rid") != "last":
                    seen.append(frame["type"])
                assert seen == ["ack", "ack"]
            channels = {c.decode() for c in await redis_client.pubsub_channels(f"telemed:*{tag}*")}
            assert channels >= {f"{s.redis_key_prefix}room:{ROOM}" for s in (a, b)}
            for settings in (a, b):
                prefix = settings.redis_key_prefix
                used = [k.decode() async for k in redis_client.scan_iter(f"{prefix}*")]
                kinds = Counter(k[len(prefix) :].split(":")[0] for k in used)
                # The deployment's two used tokens, two sessions, its two instances' liveness
                # and its room's publication counter, and no more.
                assert kinds == {"jti": 2, "session": 2, "node": 2, "room": 1}, used
    finally:
        for settings in (a, b):
            async for key in redis_client.scan_iter(f"{settings.redis_key_prefix}*"):
                await redis_client.delete(key)
