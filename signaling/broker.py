"""Fan-out between server instances: publish to a room, receive what others published.

Participants of one room may be connected to different server instances. Each instance
publishes what happens to its own participants (presence, departures, relayed messages) on the
room's channel and applies what the other instances publish (see ``signaling.server``). The
broker only moves opaque strings; it has no idea what a room is.

Ordering matters (a peer must be announced before its offer arrives), so both implementations
deliver one publisher's messages to every subscriber in publication order. Delivery is
at-most-once: Redis pub/sub keeps nothing for an instance that is briefly disconnected, which is
acceptable because clients recover through resume or a full reconnect.

:class:`InMemoryBroker` serves the embedded default (one process) and tests with several
"instances" in one process; :class:`RedisBroker` serves real deployments.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections import defaultdict, deque

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import NoScriptError

log = logging.getLogger(__name__)


class Broker(abc.ABC):
    """Publish/subscribe by room. One instance of a broker per server instance."""

    @abc.abstractmethod
    async def publish(self, room: str, data: str) -> None:
        """Send ``data`` to every subscriber of ``room``, including this broker if subscribed."""

    async def publish_many(self, items: list[tuple[str, str]]) -> None:
        """``publish(room, data)`` for each ``(room, data)``, in order; brokers that can send
        them in one go (Redis: a pipeline, one round trip) do so."""
        for room, data in items:
            await self.publish(room, data)

    @abc.abstractmethod
    async def subscribe(self, room: str) -> None:
        """Start receiving what is published to ``room``."""

    @abc.abstractmethod
    async def unsubscribe(self, room: str) -> None:
        """Stop receiving ``room``; unknown rooms are ignored."""

    @abc.abstractmethod
    async def receive(self) -> tuple[str, str]:
        """Wait for the next ``(room, data)`` published to a subscribed room."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections; the broker cannot be used afterwards."""


class InMemoryBus:
    """The shared medium of several :class:`InMemoryBroker` objects in one process."""

    def __init__(self) -> None:
        self.subscribers: defaultdict[str, set[InMemoryBroker]] = defaultdict(set)


class InMemoryBroker(Broker):
    """In-process broker. Brokers created on the same :class:`InMemoryBus` see each other."""

    def __init__(self, bus: InMemoryBus | None = None) -> None:
        self._bus = bus or InMemoryBus()
        # Unbounded on purpose: the consumer is the server's own listener task, which never
        # waits on a client, and a bounded queue here would have to drop room state.
        self._queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._rooms: set[str] = set()

    async def publish(self, room: str, data: str) -> None:
        for broker in self._bus.subscribers.get(room, ()):
            broker._queue.put_nowait((room, data))

    async def subscribe(self, room: str) -> None:
        self._rooms.add(room)
        self._bus.subscribers[room].add(self)

    async def unsubscribe(self, room: str) -> None:
        self._rooms.discard(room)
        subscribers = self._bus.subscribers.get(room)
        if subscribers is not None:
            subscribers.discard(self)
            if not subscribers:
                del self._bus.subscribers[room]

    async def receive(self) -> tuple[str, str]:
        return await self._queue.get()

    async def close(self) -> None:
        for room in list(self._rooms):
            await self.unsubscribe(room)


class RedisBroker(Broker):
    """Redis pub/sub, one channel per room (``PREFIX + room``).

    Publishing goes through a single connection: Redis keeps the order of one connection's
    publications, a pool of connections would not. Subscriptions use another connection, which
    redis-py re-subscribes by itself after a reconnect.

    ``subscribe`` returns only once Redis has confirmed the subscription. Without that, a
    message published on another connection right afterwards (say, another instance answering
    our "who is in this room?") could reach Redis before our SUBSCRIBE and be lost. Reading the
    confirmation and reading messages share one connection, so both happen under one lock, in
    short polls; messages read while waiting for a confirmation are kept for :meth:`receive`.

    ``sequenced`` (shared sessions, ``signaling.sessions``): Redis numbers each publication of
    a room (:data:`SEQUENCE`) and subscribers receive ``"<number> <data>"``, in the same round
    trip as plain publications.
    """

    POLL_S = 0.05
    CONFIRM_TIMEOUT_S = 5.0
    #: How long a room's sequence counter outlives its last publication.
    SEQ_TTL_MS = 7 * 24 * 3600 * 1000

    def __init__(self, url: str, *, prefix: str = "signal:room:", sequenced: bool = False) -> None:
        self._prefix = prefix
        self._sequenced = sequenced
        self._seq_prefix = prefix.rstrip(":") + ":seq:"
        self._sha: str | None = None
        self._publisher: Redis = Redis.from_url(url, single_connection_client=True)
        self._subscriber: Redis = Redis.from_url(url)
        self._pubsub: PubSub = self._subscriber.pubsub()
        self._rooms: set[str] = set()
        self._publish_lock = asyncio.Lock()
        self._read_lock = asyncio.Lock()
        self._pending: deque[tuple[str, str]] = deque()
        self._control = prefix.rstrip(":") + ":_control"
        self._started = False

    async def publish(self, room: str, data: str) -> None:
        await self.publish_many([(room, data)])

    async def publish_many(self, items: list[tuple[str, str]]) -> None:
        # One connection, one pipeline without MULTI: Redis applies the commands in order.
        async with self._publish_lock:
            if not self._sequenced:
                pipe = self._publisher.pipeline(transaction=False)
                for room, data in items:
                    pipe.publish(self._prefix + room, data)
                await pipe.execute()
                return
            try:
                await self._publish_sequenced(items)
            except NoScriptError:  # Redis restarted and forgot the script: load it again
                self._sha = None
                await self._publish_sequenced(items)

    async def _publish_sequenced(self, items: list[tuple[str, str]]) -> None:
        """Each publication numbered by Redis (``SEQUENCE``), in the same round trip: EVALSHA
        queued directly, since redis-py's ``Script`` in a pipeline would ask Redis whether it
        knows the script before every batch (one more round trip)."""
        if self._sha is None:
            self._sha = str(await self._publisher.script_load(SEQUENCE))
        pipe = self._publisher.pipeline(transaction=False)
        for room, data in items:
            pipe.evalsha(
                self._sha, 2, self._seq_prefix + room, self._prefix + room, data, self.SEQ_TTL_MS
            )
        await pipe.execute()

    async def subscribe(self, room: str) -> None:
        async with self._read_lock:
            await self._start()
            if room not in self._rooms:
                self._rooms.add(room)
                await self._pubsub.subscribe(self._prefix + room)
                await self._confirm("subscribe", self._prefix + room)

    async def unsubscribe(self, room: str) -> None:
        async with self._read_lock:
            if room in self._rooms:
                self._rooms.discard(room)
                await self._pubsub.unsubscribe(self._prefix + room)
                await self._confirm("unsubscribe", self._prefix + room)
                self._pending = deque(m for m in self._pending if m[0] != room)

    async def receive(self) -> tuple[str, str]:
        while True:
            if self._pending:
                return self._pending.popleft()
            async with self._read_lock:
                await self._start()
                message = await self._pubsub.get_message(timeout=self.POLL_S)
                self._keep(message)

    async def ping(self) -> bool:
        """True when Redis answers; used at start-up to fail fast on a wrong URL."""
        return bool(await self._publisher.ping())

    async def close(self) -> None:
        try:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]  # typed from redis 8
        finally:
            await self._subscriber.aclose()
            await self._publisher.aclose()

    async def _start(self) -> None:
        # A pubsub without any subscription has no connection to read from; a control
        # channel of our own keeps one open from the start. Called with the read lock held.
        if not self._started:
            await self._pubsub.subscribe(self._control)
            await self._confirm("subscribe", self._control)
            self._started = True

    async def _confirm(self, kind: str, channel: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.CONFIRM_TIMEOUT_S
        while loop.time() < deadline:
            message = await self._pubsub.get_message(timeout=self.POLL_S)
            if (
                message is not None
                and message.get("type") == kind
                and text_of(message["channel"]) == channel
            ):
                return
            self._keep(message)
        raise TimeoutError(f"Redis did not confirm {kind} {channel}")

    def _keep(self, message: dict[str, object] | None) -> None:
        if message is None or message.get("type") != "message":
            return
        channel = text_of(message["channel"])
        if channel.startswith(self._prefix) and channel != self._control:
            room = channel[len(self._prefix) :]
            if room in self._rooms:
                self._pending.append((room, text_of(message["data"])))


#: Numbers a publication with the room's counter and publishes ``"<seq> <data>"``: every
#: subscriber of the room sees the publications in the order of their numbers, whichever
#: instance made them (Redis runs one script at a time, and delivers a channel in order).
SEQUENCE = """
local seq = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', KEYS[2], string.format('%d', seq) .. ' ' .. ARGV[1])
return seq
"""


def text_of(value: object) -> str:
    """A value redis-py returns (bytes unless decoding was asked for) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)
