"""One client socket on the server side, and how frames reach it without ever waiting.

Delivering a frame to a room must never wait for a client. Two ways to honour that:

- **Direct** (a :class:`~signaling.transport.DirectTransport`, e.g. the standalone
  ``websockets`` server): ``send`` writes the frame into the socket's buffer at once. No queue
  and no task per socket, which is what lets one process hold many thousands of idle
  connections. A client that stops reading lets that buffer grow; past
  ``send_queue x BYTES_PER_QUEUED_FRAME`` bytes it is dropped (close 4507).
- **Queued** (any other transport, e.g. Starlette, whose send is a coroutine): ``send`` puts
  the frame on a queue drained by a writer task of its own. The queue is bounded by the same
  byte budget as the direct write buffer, not by a count of frames: the socket's own reader
  runs ahead of its writer (a burst of frames that arrived together is read and answered
  before the writer task gets a turn), so a client that reads everything but sent 100 pings
  at once has 100 small pongs queued for a moment. A bound of 64 frames dropped that client
  as a slow consumer (issue 14); 100 pongs are 3 KB. Only a client that stops reading lets the
  queue reach the budget (the writer then waits on the socket) and is dropped.

Closing goes after the frames already sent or queued, so a fatal ``error`` frame always
reaches the client before the close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from signaling.limits import TokenBucket
from signaling.protocol import CLOSE_FOR_ERROR, CloseCode, Error, ErrorCode, Message, serialize
from signaling.rooms import Room
from signaling.transport import Transport, TransportClosedError

log = logging.getLogger(__name__)

#: The send bound is in bytes (characters when queued): this many per frame of ``send_queue``.
#: Frames are mostly candidates (~250 bytes) with the odd SDP (~5 KB); 4 KiB per frame keeps a
#: client on a slow link safe through an offer and its candidates and still bounds a stuck one.
BYTES_PER_QUEUED_FRAME = 4096


@dataclass(frozen=True, slots=True)
class _Close:
    code: int
    reason: str


class Connection:
    """One socket: how to write to it, and what session it carries."""

    __slots__ = (
        "_closer",
        "_closing",
        "_direct",
        "_limit",
        "_queue",
        "_queued",
        "_wake",
        "_writer",
        "bucket",
        "ended",
        "last_seen",
        "participant",
        "room",
        "session",
        "strikes",
        "transport",
    )

    def __init__(self, transport: Transport, *, send_queue: int, bucket: TokenBucket) -> None:
        self.transport = transport
        self.session: str | None = None
        self.room: Room | None = None
        self.participant: str | None = None
        self.bucket = bucket
        self.strikes = 0  # rate-limit refusals in a row
        self.ended = False  # left, failed or replaced: read no further
        self.last_seen = asyncio.get_running_loop().time()  # for the idle timeout
        self._closing = False
        self._closer: asyncio.Task[None] | None = None
        self._direct: Callable[[str, int | None], bool] | None = getattr(
            transport, "send_nowait", None
        )
        # A plain deque and one future the idle writer waits on, not an asyncio.Queue: the
        # queued path is the in-app hot path, and a Queue costs a future and a wake-up per
        # frame; this wakes the writer once per burst, which then writes all it finds.
        self._queue: deque[str | _Close] | None = None
        self._wake: asyncio.Future[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._queued = 0  # characters of the frames queued and not yet written
        self._limit = send_queue * BYTES_PER_QUEUED_FRAME
        if self._direct is None:
            self._queue = deque()
            self._writer = asyncio.create_task(self._write())

    @property
    def direct(self) -> bool:
        """True when frames are written at once rather than through a queue and a task."""
        return self._direct is not None

    def send(self, text: str, *, force: bool = False) -> None:
        """Send a frame without waiting; drop the client if it is too far behind.

        ``force`` skips the bound, for a replay burst right after a resume (itself bounded by
        the replay buffer).
        """
        if self._closing:
            return
        if self._direct is not None:
            try:
                written = self._direct(text, None if force else self._limit)
            except TransportClosedError:
                return  # gone: the reader sees it too and ends the session's socket
            if not written:
                self._drop_slow()
            return
        assert self._queue is not None
        if not force and self._queued + len(text) > self._limit:
            self._drop_slow()
            return
        self._queued += len(text)
        self._push(text)

    def _push(self, item: str | _Close) -> None:
        assert self._queue is not None
        self._queue.append(item)
        wake = self._wake
        if wake is not None:
            self._wake = None
            if not wake.done():
                wake.set_result(None)

    def _drop_slow(self) -> None:
        log.info("dropping slow client session=%s", self.session)
        self.abort(CloseCode.SLOW_CONSUMER, "slow consumer")

    def send_message(self, message: Message) -> None:
        self.send(serialize(message))

    def fail(self, code: ErrorCode, message: str, *, rid: str | None = None) -> None:
        """Send a fatal ``error`` then close with the matching close code, in that order."""
        self.fail_with(CLOSE_FOR_ERROR[code], code, message, rid=rid)

    def fail_with(
        self, close: int, code: ErrorCode, message: str, *, rid: str | None = None
    ) -> None:
        if self._closing:
            return
        self.ended = True
        self.send(serialize(Error(code=code, message=message, fatal=True, rid=rid)), force=True)
        self.close(close, code.value)

    def close(self, code: int, reason: str) -> None:
        """Close after the frames already sent or queued."""
        if self._closing:
            return
        self._closing = True
        if self._queue is not None:
            self._push(_Close(code, reason))
        else:
            self._closer = asyncio.create_task(self.transport.close(code, reason))

    def abort(self, code: int, reason: str) -> None:
        """Close now, discarding queued frames (the client is not reading them anyway)."""
        if self._closer is not None:
            return
        self._closing = True
        if self._writer is not None:
            self._writer.cancel()
        self._closer = asyncio.create_task(self.transport.close(code, reason))

    async def finish(self, grace_s: float) -> None:
        """Let queued frames and the close go out within ``grace_s``, else cut them off."""
        self.close(CloseCode.NORMAL, "")
        if self._writer is not None:
            await asyncio.wait([self._writer], timeout=grace_s)
            if not self._writer.done():
                self.abort(CloseCode.SLOW_CONSUMER, "slow consumer")
        if self._closer is not None:
            with contextlib.suppress(Exception):
                await self._closer  # bounded: Transport.close must give up by itself
        if self._writer is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    async def _write(self) -> None:
        queue = self._queue
        assert queue is not None
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not queue:
                    self._wake = loop.create_future()
                    await self._wake
                    continue
                item = queue.popleft()
                if isinstance(item, _Close):
                    await self.transport.close(item.code, item.reason)
                    return
                await self.transport.send(item)
                self._queued -= len(item)
        except TransportClosedError:
            pass
        except Exception:
            log.exception("writer failed session=%s", self.session)
