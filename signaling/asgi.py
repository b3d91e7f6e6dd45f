"""Mounting the hub on a Starlette (FastAPI) WebSocket route.

Usage in the application::

    hub = SignalingHub(secret, broker=..., jti_store=..., on_event=record_session_event)

    @app.websocket("/ws/signal")
    async def signal(websocket: WebSocket) -> None:
        await serve_starlette(hub, websocket)

and ``await hub.start()`` / ``await hub.stop()`` in the application's lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.websockets import WebSocket, WebSocketDisconnect

from signaling.server import SignalingHub
from signaling.transport import TransportClosedError


class StarletteTransport:
    """:class:`signaling.transport.Transport` over an accepted Starlette ``WebSocket``."""

    def __init__(self, websocket: WebSocket, *, close_timeout_s: float = 2.0) -> None:
        self._ws = websocket
        self._close_timeout = close_timeout_s

    async def receive(self) -> str | bytes:
        try:
            message = await self._ws.receive()
        except (WebSocketDisconnect, RuntimeError) as exc:
            # Starlette raises RuntimeError when receiving after a disconnect.
            raise TransportClosedError(getattr(exc, "code", None)) from exc
        if message["type"] == "websocket.disconnect":
            raise TransportClosedError(message.get("code"))
        text = message.get("text")
        if text is not None:
            return str(text)
        return bytes(message.get("bytes") or b"")

    async def send(self, text: str) -> None:
        try:
            await self._ws.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            raise TransportClosedError(getattr(exc, "code", None)) from exc

    async def close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self._close_timeout):
                await self._ws.close(code, reason)


async def serve_starlette(hub: SignalingHub, websocket: WebSocket) -> None:
    """Accept ``websocket`` and serve it until it closes.

    Starlette has no frame size limit of its own below the server's (uvicorn: 16 MiB), so the
    hub's parser enforces ``max_message_bytes`` (``error`` ``too_big``, close 1009). Keepalive
    pings at the WebSocket level are the ASGI server's job (uvicorn ``--ws-ping-interval``);
    the protocol's own ``ping`` and idle timeout work regardless.
    """
    await websocket.accept()
    await hub.handle(StarletteTransport(websocket, close_timeout_s=hub.config.close_timeout_s))
