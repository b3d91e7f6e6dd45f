"""The few things the server needs from a WebSocket, so that any library can carry it.

The standalone server runs on the ``websockets`` library; inside the application, Starlette
(FastAPI) owns the socket (``signaling.asgi``). Both are adapted to :class:`Transport`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed


class TransportClosedError(Exception):
    """The socket is gone; ``code`` is the close code received, if any."""

    def __init__(self, code: int | None = None) -> None:
        super().__init__(f"transport closed ({code})")
        self.code = code


class Transport(Protocol):
    """A WebSocket as the signalling server uses it."""

    async def receive(self) -> str | bytes:
        """Next message: text as ``str``, binary as ``bytes``; or raise TransportClosedError."""
        ...

    async def send(self, text: str) -> None:
        """Send one text frame; raise :class:`TransportClosedError` if the socket is gone."""
        ...

    async def close(self, code: int, reason: str) -> None:
        """Close with ``code``; must return within a bounded time, even if the peer never reads
        (drop the connection if the closing handshake cannot complete)."""
        ...


class WebsocketsTransport:
    """:class:`Transport` over a ``websockets.asyncio.server.ServerConnection``."""

    def __init__(self, connection: ServerConnection, *, close_timeout_s: float = 2.0) -> None:
        self._conn = connection
        self._close_timeout = close_timeout_s

    async def receive(self) -> str | bytes:
        try:
            return await self._conn.recv()
        except ConnectionClosed as exc:
            raise TransportClosedError(exc.rcvd.code if exc.rcvd else None) from exc

    async def send(self, text: str) -> None:
        try:
            await self._conn.send(text)
        except ConnectionClosed as exc:
            raise TransportClosedError(exc.rcvd.code if exc.rcvd else None) from exc

    async def close(self, code: int, reason: str) -> None:
        # websockets waits for the write buffer to drain before it sends the close frame; a
        # peer that never reads would hold us there forever, hence the timeout and abort.
        try:
            async with asyncio.timeout(self._close_timeout):
                await self._conn.close(code, reason)
        except TimeoutError:
            with contextlib.suppress(Exception):
                self._conn.transport.abort()
