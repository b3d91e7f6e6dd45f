"""The same hub mounted on a Starlette route, as the application will mount it on /ws/signal.

Served by uvicorn on a loopback port and driven by real ``websockets`` clients, so the
Starlette adapter is held to the same contract as the standalone server.
"""

from __future__ import annotations

import json

from signaling_helpers import Client, peer_of, running, token

from signaling.protocol import MAX_MESSAGE_BYTES


async def test_a_call_through_the_starlette_mount() -> None:
    async with running(path="in-app") as srv:
        url = srv.url
        clin = await Client.connect(url)
        await clin.hello(token("u-clin"))
        spec = await Client.connect(url)
        welcome = await spec.hello(token("u-spec", role="specialist"))
        assert welcome["peers"][0]["participant"] == "u-clin"
        assert peer_of(await clin.expect("peer-joined"))["participant"] == "u-spec"
        rid = await spec.send(type="offer", to="u-clin", sdp="v=0")
        await spec.expect("ack", rid=rid)
        await clin.expect("offer", sdp="v=0")
        await clin.send(type="nonsense")
        await clin.expect("error", code="unknown_type", fatal=False)
        await clin.roundtrip()

        # Starlette has no frame limit of ours; the hub's parser enforces it.
        await spec.send_raw(json.dumps({"type": "offer", "sdp": "x" * MAX_MESSAGE_BYTES}))
        assert await spec.refused("too_big") == 1009
        update = await clin.expect("peer-updated")
        assert peer_of(update)["state"] == "reconnecting"

        reused = await Client.connect(url)
        await reused.send(type="hello", room="consult-1", token=token("u-x")[:-2] + "zz")
        assert await reused.refused("bad_token") == 4401
