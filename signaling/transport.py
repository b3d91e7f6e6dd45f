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
from websockets.protocol import State


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


class DirectTransport(Transport, Protocol):
    """A :class:`Transport` that can also write a frame without waiting.

    The server then writes frames as they are produced, with no send queue and no writer task
    per socket (less memory per idle connection, one task switch less per message). The bound
    that protects the room from a client that does not read becomes a bound on the bytes
    waiting in the socket's write buffer.
    """

    def send_nowait(self, text: str, limit: int | None) -> bool:
        """Write ``text`` now unless more than ``limit`` bytes already wait to be sent
        (then return False and write nothing). Raise :class:`TransportClosedError` when the
        socket is closing or gone."""
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


class WriteCoalescer:
    """Flushes the sockets written to during one event-loop iteration, from one callback.

    One scheduled callback per iteration for the whole server rather than one per socket.
    """

    __slots__ = ("_dirty", "_loop")

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._dirty: list[DirectWebsocketsTransport] = []

    def mark(self, transport: DirectWebsocketsTransport) -> None:
        if not self._dirty:
            self._loop.call_soon(self._flush_all)
        self._dirty.append(transport)

    def _flush_all(self) -> None:
        dirty, self._dirty = self._dirty, []
        for transport in dirty:
            transport.flush()


class DirectWebsocketsTransport(WebsocketsTransport):
    """:class:`DirectTransport` over a ``websockets`` server connection.

    :meth:`send_nowait` encodes the frame with the connection's sans-I/O protocol
    (``protocol.send_text``) and writes the protocol's output (``protocol.data_to_send()``)
    to the socket once per event-loop iteration (through a :class:`WriteCoalescer` shared by
    the server's sockets): frames produced for one socket in the same iteration leave in one
    ``send()`` system call instead of one each, without waiting any longer than that. Frames
    the library writes itself (pongs, the close frame) drain the same protocol buffer, so the
    order on the wire is the order of the calls. :func:`supports_direct` checks that the
    installed ``websockets`` has those parts; without them the server uses the plain, queued
    transport.
    """

    def __init__(
        self,
        connection: ServerConnection,
        *,
        close_timeout_s: float = 2.0,
        coalescer: WriteCoalescer | None = None,
    ) -> None:
        super().__init__(connection, close_timeout_s=close_timeout_s)
        self._coalescer = coalescer or WriteCoalescer()
        self._flush_scheduled = False

    @staticmethod
    def supports_direct(connection: ServerConnection) -> bool:
        protocol = getattr(connection, "protocol", None)
        return (
            hasattr(protocol, "send_text")
            and hasattr(protocol, "data_to_send")
            and hasattr(getattr(connection, "transport", None), "get_write_buffer_size")
        )

    def send_nowait(self, text: str, limit: int | None) -> bool:
        conn = self._conn
        if conn.protocol.state is not State.OPEN:
            raise TransportClosedError(None)
        if limit is not None and conn.transport.get_write_buffer_size() > limit:
            return False
        conn.protocol.send_text(text.encode())
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._coalescer.mark(self)
        return True

    def flush(self) -> None:
        """Write what the protocol has buffered (called by the coalescer)."""
        self._flush_scheduled = False
        conn = self._conn
        chunks = conn.protocol.data_to_send()
        if conn.transport.is_closing():
            return  # lost or being closed: nothing more reaches the client
        data = [chunk for chunk in chunks if chunk]
        try:
            if data:
                conn.transport.write(data[0] if len(data) == 1 else b"".join(data))
            if len(data) < len(chunks):  # b"": the protocol wants the TCP connection ended
                if conn.transport.can_write_eof():
                    conn.transport.write_eof()
                else:
                    conn.transport.close()
        except Exception:  # the socket failed: the reader will see the connection end
            conn.transport.abort()
