"""Helpers for the contract tests: a running hub on a loopback port and a thin JSON client.

Every wait has a timeout (``TIMEOUT``) so that a broken server fails a test instead of hanging
the suite. Time inside the server is a hand-moved :class:`MonotonicClock`; nothing here sleeps to
let time pass.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import ClientConnection, connect

from signaling.asgi import serve_starlette
from signaling.broker import Broker
from signaling.events import SessionEvent
from signaling.server import HubConfig, SignalingHub, serve
from signaling.sessions import SessionStore
from signaling.tokens import JtiStore, mint_token
from tests.helpers import MonotonicClock

TIMEOUT = 5.0
SECRET = b"contract-test-secret-0123456789"
ROOM = "consult-1"
# Periodic sweeps are off: tests call hub.sweep() at the moments they choose.
TEST_CONFIG = HubConfig(sweep_interval_s=3600, close_timeout_s=0.5, grace_s=30)
#: The ways a socket reaches the hub: the standalone server writing frames directly, the same
#: server with a send queue and writer task per socket, and the application's ``/ws/signal``
#: (the hub on a Starlette route under uvicorn, which is what ``deploy/`` serves).
PATHS = ("direct", "queued", "in-app")


def token(
    participant: str,
    *,
    room: str = ROOM,
    role: str = "clinician",
    capacity: int = 2,
    now: float | None = None,
    ttl_s: float = 60,
) -> str:
    return mint_token(
        SECRET,
        room=room,
        participant=participant,
        name=f"Name of {participant}",
        role=role,
        capacity=capacity,
        now=now,
        ttl_s=ttl_s,
    )


@dataclass
class Running:
    hub: SignalingHub
    url: str
    events: asyncio.Queue[SessionEvent]

    async def next_event(self) -> SessionEvent:
        return await asyncio.wait_for(self.events.get(), TIMEOUT)

    async def event_kinds(self, n: int) -> list[tuple[str, str | None]]:
        return [(e.kind, e.participant) for e in [await self.next_event() for _ in range(n)]]


@asynccontextmanager
async def running(
    config: HubConfig = TEST_CONFIG,
    *,
    clock: MonotonicClock | None = None,
    broker: Broker | None = None,
    jti_store: JtiStore | None = None,
    sessions: SessionStore | None = None,
    node_id: str | None = None,
    direct: bool = True,
    path: str | None = None,
) -> AsyncIterator[Running]:
    """A hub with ``config`` on a loopback port, reached by ``path`` (one of ``PATHS``;
    default ``direct``, or ``queued`` when ``direct`` is False)."""
    path = path or ("direct" if direct else "queued")
    assert path in PATHS, path
    events: asyncio.Queue[SessionEvent] = asyncio.Queue()
    hub = SignalingHub(
        SECRET,
        config=config,
        clock=clock or time.monotonic,
        broker=broker,
        jti_store=jti_store,
        sessions=sessions,
        on_event=events.put_nowait,
        node_id=node_id,
    )
    try:
        if path == "in-app":
            async with hub, starlette_app(hub) as url:
                yield Running(hub, url, events)
        else:
            async with hub:
                server = await serve(
                    hub, "127.0.0.1", 0, ping_interval_s=None, direct=path == "direct"
                )
                port = next(iter(server.sockets)).getsockname()[1]
                try:
                    yield Running(hub, f"ws://127.0.0.1:{port}/", events)
                finally:
                    server.close()
                    await asyncio.wait_for(server.wait_closed(), TIMEOUT)
    finally:
        # A client that stopped reading never notices the server hang up; cut it off.
        while Client.opened:
            Client.opened.pop().drop()


@asynccontextmanager
async def starlette_app(hub: SignalingHub) -> AsyncIterator[str]:
    """``hub`` (started by the caller) on a Starlette ``/ws/signal`` route served by uvicorn,
    as the application mounts it; yields the WebSocket URL."""

    async def signal(websocket: WebSocket) -> None:
        await serve_starlette(hub, websocket)

    app = Starlette(routes=[WebSocketRoute("/ws/signal", signal)])
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
        for client in Client.opened:
            client.drop()  # uvicorn waits for open connections before it exits
        server.should_exit = True
        await asyncio.wait_for(task, TIMEOUT)
        sock.close()


class Client:
    """A protocol client over a real ``websockets`` connection, one JSON object per frame."""

    #: Every client opened, so that ``running`` can make sure none outlives its test.
    opened: ClassVar[list[Client]] = []

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.last_seq = 0
        self.session = ""
        self.resume_token = ""
        self._rids = itertools.count(1)

    @classmethod
    async def connect(cls, url: str, **kwargs: Any) -> Client:
        ws = await asyncio.wait_for(
            connect(url, compression=None, open_timeout=TIMEOUT, **kwargs), TIMEOUT
        )
        client = cls(ws)
        cls.opened.append(client)
        return client

    async def send(self, **message: Any) -> str:
        """Send ``message`` with a fresh ``rid`` (unless given); return the rid."""
        message.setdefault("rid", f"r{next(self._rids)}")
        await self.ws.send(json.dumps(message))
        return str(message["rid"])

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def recv(self) -> dict[str, Any]:
        frame = json.loads(await asyncio.wait_for(self.ws.recv(), TIMEOUT))
        assert isinstance(frame, dict)
        if frame["type"] == "welcome":
            self.last_seq = frame["seq"]
        elif frame["type"] != "resumed" and "seq" in frame:
            assert frame["seq"] > self.last_seq, "seq must increase"
            self.last_seq = frame["seq"]
        if frame["type"] in ("welcome", "resumed"):
            self.session, self.resume_token = frame["session"], frame["resume_token"]
        return frame

    async def expect(self, kind: str, **fields: Any) -> dict[str, Any]:
        frame = await self.recv()
        assert frame["type"] == kind, frame
        for key, value in fields.items():
            assert frame.get(key) == value, (key, frame)
        return frame

    async def until(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Skip frames until one of ``kind`` with ``fields`` (for cross-instance timing);
        a stream of other frames cannot keep it waiting past ``TIMEOUT`` either."""
        skipped: list[str] = []
        try:
            async with asyncio.timeout(TIMEOUT):
                while True:
                    frame = await self.recv()
                    if frame["type"] == kind and all(frame.get(k) == v for k, v in fields.items()):
                        return frame
                    skipped.append(frame["type"])
        except TimeoutError:
            raise AssertionError(f"no {kind} {fields} within {TIMEOUT} s; got {skipped}") from None

    async def hello(self, tok: str, room: str = ROOM) -> dict[str, Any]:
        rid = await self.send(type="hello", room=room, token=tok)
        return await self.expect("welcome", rid=rid)

    async def roundtrip(self) -> None:
        """Ping and get the pong next: proves the socket works and nothing else was queued."""
        rid = await self.send(type="ping")
        await self.expect("pong", rid=rid)

    async def refused(self, code: str) -> int | None:
        """Expect a fatal error with ``code`` and then the close; return the close code."""
        await self.expect("error", code=code, fatal=True)
        return await self.closed()

    async def closed(self) -> int | None:
        await asyncio.wait_for(self.ws.wait_closed(), TIMEOUT)
        return self.ws.close_code

    def drop(self) -> None:
        """Lose the connection without a closing handshake, like a network failure."""
        self.ws.transport.abort()

    async def close(self) -> None:
        await asyncio.wait_for(self.ws.close(), TIMEOUT)


async def join(
    url: str, participant: str, *, room: str = ROOM, role: str = "clinician", capacity: int = 2
) -> tuple[Client, dict[str, Any]]:
    client = await Client.connect(url)
    welcome = await client.hello(token(participant, room=room, role=role, capacity=capacity), room)
    return client, welcome


def peer_of(frame: dict[str, Any]) -> dict[str, Any]:
    peer = frame["peer"]
    assert isinstance(peer, dict)
    return peer
