"""A lean WebSocket client for load: just enough of RFC 6455 on raw asyncio.

On a 2-core machine the load generator must cost far less per message than the server under
test, which ``websockets`` as a client would not: this one does the handshake, precomputes
each connection's masked frames (one masking key per connection) and writes the frames queued
in one loop iteration at once.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import time
from collections.abc import Callable

HOST = "127.0.0.1"
CONNECT_TIMEOUT_S = 20.0


class RawWebSocket(asyncio.Protocol):
    """Just enough of RFC 6455 for load: handshake, masked text frames out, frames in.

    ``on_text`` receives each text frame's payload (bytes) with its arrival time. Pings are
    answered; a close frame or EOF marks the socket closed.
    """

    def __init__(self, on_text: Callable[[RawWebSocket, bytes, float], None] | None) -> None:
        self.on_text = on_text
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.open = asyncio.get_running_loop().create_future()
        self.first = asyncio.get_running_loop().create_future()
        self.closed = False
        self.handshake_done = False
        self.key = base64.b64encode(os.urandom(16)).decode()
        self.path = "/"
        self.received = 0
        # One masking key per connection (RFC 6455 wants one per frame; for a load generator
        # a per-connection key keeps frames precomputable and costs the server the same).
        self.mask = os.urandom(4)
        self.pending: list[bytes] = []

    # -------------------------------------------------- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        request = (
            f"GET {self.path} HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {self.key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        )
        transport.write(request.encode())

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.handshake_done:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end])
            del self.buf[: end + 4]
            if not head.startswith(b"HTTP/1.1 101"):
                self._fail(ConnectionError(head.split(b"\r\n", 1)[0].decode()))
                return
            self.handshake_done = True
            if not self.open.done():
                self.open.set_result(None)
        self._frames()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionError("connection lost"))

    # -------------------------------------------------- frames

    def _fail(self, exc: Exception) -> None:
        for future in (self.open, self.first):
            if not future.done():
                future.set_exception(exc)
                future.exception()  # retrieved: no "never retrieved" warning

    def _frames(self) -> None:
        buf = self.buf
        now = time.perf_counter()
        while len(buf) >= 2:
            length = buf[1] & 0x7F
            pos = 2
            if length == 126:
                if len(buf) < 4:
                    return
                length = int.from_bytes(buf[2:4], "big")
                pos = 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length = int.from_bytes(buf[2:10], "big")
                pos = 10
            if len(buf) < pos + length:
                return
            opcode = buf[0] & 0x0F
            payload = bytes(buf[pos : pos + length])
            del buf[: pos + length]
            if opcode == 0x1:
                self.received += 1
                if not self.first.done():
                    self.first.set_result(payload)
                elif self.on_text is not None:
                    self.on_text(self, payload, now)
            elif opcode == 0x9:
                self._send(0xA, payload)
            elif opcode == 0x8:
                self.closed = True
                if self.transport is not None:
                    self.transport.close()

    def frame(self, payload: bytes, opcode: int = 0x1) -> bytes:
        """The masked frame for ``payload`` on this connection (reusable: the key is fixed)."""
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        key = int.from_bytes((self.mask * (n // 4 + 1))[:n], "little")
        masked = (int.from_bytes(payload, "little") ^ key).to_bytes(n, "little")
        return header + self.mask + masked

    def _send(self, opcode: int, payload: bytes) -> None:
        self.send_frame(self.frame(payload, opcode))

    def send_frame(self, frame: bytes) -> None:
        """Queue a ready frame; frames queued in one loop iteration leave in one write."""
        if not self.pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self.pending.append(frame)

    def _flush(self) -> None:
        data, self.pending = self.pending, []
        if self.transport is not None and not self.transport.is_closing() and data:
            self.transport.write(b"".join(data))

    def send_text(self, text: str | bytes) -> None:
        self._send(0x1, text.encode() if isinstance(text, str) else text)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()


async def raw_connect(
    port: int, on_text: Callable[[RawWebSocket, bytes, float], None] | None = None
) -> RawWebSocket:
    loop = asyncio.get_running_loop()
    _, ws = await asyncio.wait_for(
        loop.create_connection(lambda: RawWebSocket(on_text), HOST, port), CONNECT_TIMEOUT_S
    )
    await asyncio.wait_for(ws.open, CONNECT_TIMEOUT_S)
    return ws


async def raw_join(
    port: int,
    secret: str,
    room: str,
    participant: str,
    on_text: Callable[[RawWebSocket, bytes, float], None] | None = None,
) -> RawWebSocket:
    """Connect and ``hello``; return once the server has answered (``welcome``)."""
    from signaling.tokens import mint_token

    ws = await raw_connect(port, on_text)
    token = mint_token(
        secret, room=room, participant=participant, name=participant, role="clinician"
    )
    ws.send_text(json.dumps({"type": "hello", "room": room, "token": token}))
    reply = await asyncio.wait_for(ws.first, CONNECT_TIMEOUT_S)
    if b'"welcome"' not in reply:
        raise RuntimeError(f"join refused: {reply[:200]!r}")
    return ws
