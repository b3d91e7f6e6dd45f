"""The same hub mounted on a Starlette route, as the application will mount it on /ws/signal.

Served by uvicorn on a loopback port and driven by real ``websockets`` clients, so the
Starlette adapter is held to the same contract as the standalone server.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from signaling_helpers import SECRET, TEST_CONFIG, TIMEOUT, Client, peer_of, token
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from signaling.asgi import serve_starlette
from signaling.protocol import MAX_MESSAGE_BYTES
from signaling.server import SignalingHub


@asynccontextmanager
async def starlette_app() -> AsyncIterator[str]:
    hub = SignalingHub(SECRET, config=TEST_CONFIG)

    async def signal(websocket: WebSocket) -> None:
        await serve_starlette(hub, websocket)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with hub:
            yield

    app = Starlette(routes=[WebSocketRoute("/ws/signal", signal)], lifespan=lifespan)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", ws_per_message_deflate=False
    )
    server = uvicorn.Server(config)
    # Bind first, so the port is known without waiting for uvicorn to start: early clients
    # wait in the listen backlog until it does.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"ws://127.0.0.1:{port}/ws/signal"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, TIMEOUT)
        while Client.opened:
            Client.opened.pop().drop()


async def test_a_call_through_the_starlette_mount() -> None:
    async with starlette_app() as url:
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
