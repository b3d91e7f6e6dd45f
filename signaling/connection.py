"""One client socket on the server side: a bounded send queue drained by its own writer task.

Why a queue and a task per socket: delivering a frame to a room must never wait for a client.
``send`` only enqueues; when a client stops reading, its queue fills and the connection is
dropped (close 4507) instead of making the sender, or the room, wait. Closing goes through the
same queue so that a fatal ``error`` frame always reaches the client before the close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from signaling.limits import TokenBucket
from signaling.protocol import CLOSE_FOR_ERROR, CloseCode, Error, ErrorCode, Message, serialize
from signaling.rooms import Room
from signaling.transport import Transport, TransportClosedError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Close:
    code: int
    reason: str


class Connection:
    """One socket: its send queue and writer task, and what session it carries."""

    def __init__(self, transport: Transport, *, send_queue: int, bucket: TokenBucket) -> None:
        self.transport = transport
        self.session: str | None = None
        self.room: Room | None = None
        self.participant: str | None = None
        self.bucket = bucket
        self.strikes = 0  # rate-limit refusals in a row
        self.ended = False  # left, failed or replaced: read no further
        self._limit = send_queue
        self._queue: asyncio.Queue[str | _Close] = asyncio.Queue()
        self._closing = False
        self._writer = asyncio.create_task(self._write())
        self._closer: asyncio.Task[None] | None = None

    def send(self, text: str, *, force: bool = False) -> None:
        """Queue a frame without waiting; drop the client if its queue is full.

        ``force`` skips the bound, for a replay burst right after a resume (itself bounded by
        the replay buffer).
        """
        if self._closing:
            return
        if not force and self._queue.qsize() >= self._limit:
            log.info("dropping slow client session=%s", self.session)
            self.abort(CloseCode.SLOW_CONSUMER, "slow consumer")
            return
        self._queue.put_nowait(text)

    def send_message(self, message: Message) -> None:
        self.send(serialize(message))

    def fail(self, code: ErrorCode, message: str, *, rid: str | None = None) -> None:
        """Send a fatal ``error`` then close with the matching close code, in queue order."""
        self.fail_with(CLOSE_FOR_ERROR[code], code, message, rid=rid)

    def fail_with(
        self, close: int, code: ErrorCode, message: str, *, rid: str | None = None
    ) -> None:
        if self._closing:
            return
        self.ended = True
        self._queue.put_nowait(serialize(Error(code=code, message=message, fatal=True, rid=rid)))
        self.close(close, code.value)

    def close(self, code: int, reason: str) -> None:
        """Close after the frames already queued have been written."""
        if not self._closing:
            self._closing = True
            self._queue.put_nowait(_Close(code, reason))

    def abort(self, code: int, reason: str) -> None:
        """Close now, discarding queued frames (the client is not reading them anyway)."""
        if self._closer is not None:
            return
        self._closing = True
        self._writer.cancel()
        self._closer = asyncio.create_task(self.transport.close(code, reason))

    async def finish(self, grace_s: float) -> None:
        """Let queued frames and the close go out within ``grace_s``, else cut them off."""
        self.close(CloseCode.NORMAL, "")
        await asyncio.wait([self._writer], timeout=grace_s)
        if not self._writer.done():
            self.abort(CloseCode.SLOW_CONSUMER, "slow consumer")
        if self._closer is not None:
            with contextlib.suppress(Exception):
                await self._closer  # bounded: Transport.close must give up by itself
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer

    async def _write(self) -> None:
        try:
            while True:
                item = await self._queue.get()
                if isinstance(item, _Close):
                    await self.transport.close(item.code, item.reason)
                    return
                await self.transport.send(item)
        except TransportClosedError:
            pass
        except Exception:
            log.exception("writer failed session=%s", self.session)
