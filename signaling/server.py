"""The signalling server: sockets in, room rules applied, frames and events out.

:class:`SignalingHub` holds the rooms of one server instance and drives each socket through
:meth:`SignalingHub.handle`, whatever library carries it (see ``signaling.transport``). The
standalone server (:func:`serve`) uses ``websockets``; the application mounts the same hub on a
Starlette route (``signaling.asgi``).

Design points, each from the protocol page or the architecture:

- Delivering to a room never awaits a client (``signaling.connection``): frames are written
  straight into the socket's buffer (standalone server) or put on a bounded queue (other
  transports), so one slow or stuck client cannot stall the others: when it is too far behind
  it is dropped (close 4507) and may resume.
- No timer or task per idle socket beyond what the WebSocket library keeps: the idle timeout
  is enforced by one reaper task that looks at every socket's last receive time.
- The room rules live in :mod:`signaling.rooms`; this module only carries out their effects.
- With a broker, instances tell each other about their members and relay messages; each
  instance only ever writes to its own sockets. Publications go through one outbox task, so a
  slow Redis delays fan-out but never a client's reader.
- With a session store as well (``signaling.sessions``), a session may be resumed on any
  instance: the store is written once per ``welcome`` and ``resume``, and the sweeper renews
  this instance's liveness and reads the others'. A relayed message still costs no Redis
  command but its publication, numbered by Redis in the same round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, cast

from websockets.asyncio.server import Server, ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.http11 import Request, Response

from signaling import envelope
from signaling.broker import Broker
from signaling.connection import Connection
from signaling.events import EventCallback, SessionEvent
from signaling.gcpolicy import GcPolicy, break_cycles
from signaling.limits import TokenBucket
from signaling.protocol import (
    MAX_MESSAGE_BYTES,
    Ack,
    Answer,
    CandidateMessage,
    ClientMessage,
    CloseCode,
    Error,
    ErrorCode,
    Hello,
    IceRestart,
    Identity,
    Leave,
    LeaveReason,
    Limits,
    Media,
    Offer,
    Ping,
    Pong,
    ProtocolError,
    Quality,
    Relayed,
    Resume,
    Resumed,
    Sequenced,
    Welcome,
    parse_client,
)
from signaling.rooms import Effects, MemberInfo, Room, RoomError, RoomEvent
from signaling.sessions import SessionRecord, SessionStore
from signaling.tokens import JtiStore, MemoryJtiStore, TokenError, TokenVerifier, verify_and_consume
from signaling.transport import (
    DirectWebsocketsTransport,
    Transport,
    TransportClosedError,
    WebsocketsTransport,
    WriteCoalescer,
)

log = logging.getLogger(__name__)

#: Publications the outbox sends to the broker in one go (one round trip to Redis).
PUBLISH_BATCH = 256

#: Shared sessions: a frame's ``seq`` is the broker's number of the last publication times
#: this, plus the frames an instance made since (``signaling.rooms``). 2**16 frames between
#: two publications of a room is far more than one instance makes; 2**53 / 2**16 publications
#: per room stay exact in JavaScript numbers.
SEQ_SCALE = 1 << 16

# websockets' hook: answer an HTTP request before the upgrade, or None to go on.
ProcessRequest = Callable[[ServerConnection, Request], Response | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class HubConfig:
    """Tunables; the defaults are the ones documented in the protocol page."""

    max_message_bytes: int = MAX_MESSAGE_BYTES
    send_queue: int = 64
    rate_per_s: float = 50.0
    burst: int = 100
    rate_strikes: int = 20
    hello_timeout_s: float = 10.0
    heartbeat_s: float = 10.0
    idle_timeout_s: float = 30.0
    grace_s: float = 30.0
    replay_limit: int = 256
    empty_room_ttl_s: float = 30.0
    sweep_interval_s: float = 1.0
    close_timeout_s: float = 2.0
    outbox_limit: int = 10_000
    #: Freeze long-lived objects out of the garbage collector's way at every sweep
    #: (``signaling.gcpolicy``); False leaves the collector as Python sets it. A thaw (one
    #: full collection of everything) every ``gc_thaw_interval_s`` frees what was frozen
    #: and became garbage since (None: never).
    gc_freeze: bool = True
    gc_freeze_interval_s: float = 0.0  # 0: at every sweep
    gc_thaw_interval_s: float | None = 6 * 3600.0
    #: Shared sessions: this instance's liveness key lives this long, renewed every sweep;
    #: the members of an instance whose key lapsed are shown ``reconnecting``.
    node_ttl_s: float = 3.0

    def limits(self) -> Limits:
        return Limits(
            max_message_bytes=self.max_message_bytes,
            rate_per_s=self.rate_per_s,
            burst=self.burst,
            heartbeat_s=self.heartbeat_s,
            idle_timeout_s=self.idle_timeout_s,
            grace_s=self.grace_s,
        )


class SignalingHub:
    """The rooms and sockets of one server instance.

    Use as ``async with SignalingHub(...) as hub:`` (or ``await hub.start()`` /
    ``await hub.stop()``) and give every accepted socket to :meth:`handle`.
    """

    def __init__(
        self,
        secret: bytes | str,
        *,
        config: HubConfig | None = None,
        jti_store: JtiStore | None = None,
        broker: Broker | None = None,
        sessions: SessionStore | None = None,
        on_event: EventCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        node_id: str | None = None,
    ) -> None:
        self.config = config or HubConfig()
        self.node_id = node_id or secrets.token_hex(6)
        self._verifier = TokenVerifier(secret, clock=wall_clock)
        # Not `or`: an empty store has len() 0 and would be replaced by a private one.
        self._jti = jti_store if jti_store is not None else MemoryJtiStore(clock=wall_clock)
        self._broker = broker
        # Shared sessions need the broker to number publications (RedisBroker(sequenced=True)).
        self._store = sessions if broker is not None else None
        self._scale = SEQ_SCALE if self._store is not None else 1
        self._refreshed = 0.0  # when the session records' lifetimes were last renewed
        self._background: set[asyncio.Task[None]] = set()
        self._marks: dict[str, asyncio.Future[None]] = {}
        self._on_event = on_event
        self._clock = clock
        self._wall = wall_clock
        self.rooms: dict[str, Room] = {}
        self._opening: dict[str, asyncio.Task[Room]] = {}
        self._connections: dict[str, Connection] = {}  # session id -> its current socket
        self._session_rooms: dict[str, str] = {}  # local session id -> room id
        self._events: asyncio.Queue[SessionEvent] = asyncio.Queue()
        self._outbox: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._handlers: set[asyncio.Task[Any]] = set()
        # Called after every sweep (each ``sweep_interval_s``), e.g. to copy ``stats()``
        # into a monitoring system this package knows nothing of.
        self.on_tick: Callable[[], None] | None = None
        self._gc: GcPolicy | None = None

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self.config.gc_freeze and self._gc is None:
            self._gc = GcPolicy.acquire(
                self.config.gc_thaw_interval_s, self.config.gc_freeze_interval_s
            )
        if self._store is not None:
            await self._store.beat(self.node_id, self._node_ttl())
        self._tasks.append(asyncio.create_task(self._sweeper(), name="signal-sweeper"))
        self._tasks.append(asyncio.create_task(self._dispatch_events(), name="signal-events"))
        self._tasks.append(asyncio.create_task(self._reap_idle(), name="signal-idle"))
        if self._broker is not None:
            self._tasks.append(asyncio.create_task(self._listen(), name="signal-listen"))
            self._tasks.append(asyncio.create_task(self._publish_loop(), name="signal-publish"))

    async def stop(self) -> None:
        """Close every socket (1001) and stop background tasks. Pending events are delivered."""
        for conn in list(self._connections.values()):
            conn.ended = True
            conn.close(CloseCode.GOING_AWAY, "server shutting down")
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=self.config.close_timeout_s + 1)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.config.close_timeout_s):
                await self._events.join()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._background:
            await asyncio.wait(self._background, timeout=self.config.close_timeout_s)
        if self._store is not None:
            # Our members' peers see them reconnecting now, not when our key would lapse;
            # their clients resume on the other instances.
            with contextlib.suppress(Exception):
                await self._store.stop(self.node_id)
        if self._gc is not None:
            self._gc = None
            GcPolicy.release()

    def gc_stats(self) -> dict[str, float]:
        """The worst garbage-collection pause so far and the permanent generation's size (empty
        when ``gc_freeze`` is off)."""
        return self._gc.stats() if self._gc is not None else {}

    def stats(self) -> dict[str, int]:
        """Counts for monitoring: open sockets in a session, sessions held, rooms."""
        return {
            "connections": len(self._connections),
            "sessions": len(self._session_rooms),
            "rooms": len(self.rooms),
        }

    async def __aenter__(self) -> SignalingHub:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _sweeper(self) -> None:
        while True:
            await asyncio.sleep(self.config.sweep_interval_s)
            try:
                await self.sweep()
            except Exception:
                log.exception("sweep failed")
            if self._gc is not None:
                self._gc.tick()
            if self.on_tick is not None:
                try:
                    self.on_tick()
                except Exception:
                    log.exception("on_tick callback failed")

    async def _reap_idle(self) -> None:
        """Close sockets that sent nothing for ``idle_timeout_s`` (close 4408).

        Checked every quarter of the timeout, so a socket goes between 1 and 1.25 times the
        timeout after its last frame. One task for all sockets instead of a timer per receive.
        """
        timeout = self.config.idle_timeout_s
        interval = min(max(timeout / 4, 0.05), 5.0)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            cutoff = loop.time() - timeout
            for conn in [c for c in self._connections.values() if c.last_seen <= cutoff]:
                try:
                    conn.fail(ErrorCode.TIMEOUT, "nothing received in time")
                    self._disconnected(conn)
                except Exception:
                    log.exception("idle timeout failed session=%s", conn.session)

    async def sweep(self) -> None:
        """End grace periods that are over and forget rooms that stayed empty.

        Runs every ``sweep_interval_s``; public so that tests with a hand-moved clock can run
        it at the moment they choose.
        """
        now = self._clock()
        if self._store is not None:
            try:
                await self._liveness(now)
            except Exception:  # Redis away: grace periods still end below
                log.exception("liveness check failed")
        for room in list(self.rooms.values()):
            for participant in room.due(now):
                member = room.members[participant]
                session = member.session
                self._session_rooms.pop(session, None)
                self._forget(session, member.epoch)
                self._apply(room, room.depart(participant, "gone"))
                self._publish(
                    room.id, "gone", participant=participant, session=session, reason="gone"
                )
            for participant in room.lapsed_due(now):
                self._apply(room, room.drop_lapsed(participant))
            if room.expired(now, self.config.empty_room_ttl_s):
                del self.rooms[room.id]
                if self._broker is not None:
                    await self._broker.unsubscribe(room.id)

    async def _liveness(self, now: float) -> None:
        """Renew our liveness key (and, every third of the grace period, the lifetime of the
        session records we hold); show the members of instances whose key lapsed as
        reconnecting. Two round trips to Redis per sweep, whatever the traffic."""
        assert self._store is not None
        sessions: list[str] = []
        if now - self._refreshed >= self.config.grace_s / 3:
            self._refreshed = now
            sessions = list(self._session_rooms)
        await self._store.beat(self.node_id, self._node_ttl(), sessions, self._record_ttl())
        nodes = set().union(*(room.remote_nodes() for room in self.rooms.values()))
        alive = await self._store.alive(nodes)
        dead = nodes - alive
        for room in list(self.rooms.values()):
            if dead:
                self._apply(room, room.lapse(dead, now=now, grace=self.config.grace_s))
            if alive:
                self._apply(room, room.revive(alive))

    def _node_ttl(self) -> float:
        """Our liveness key must outlast the interval between two sweeps that renew it."""
        return max(self.config.node_ttl_s, 2 * self.config.sweep_interval_s)

    def _record_ttl(self) -> float:
        """A session record outlives its last renewal by the grace period, the time our death
        takes to be noticed, and one renewal interval."""
        return self.config.grace_s * 4 / 3 + self._node_ttl()

    def _forget(self, session: str, epoch: int) -> None:
        if self._store is not None:
            self._background_task(self._store.forget(session, epoch))

    def _background_task(self, work: Any) -> None:
        async def run() -> None:
            try:
                await work
            except Exception:
                log.exception("session store update failed")

        task = asyncio.create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ------------------------------------------------------------ one socket

    async def handle(self, transport: Transport) -> None:
        """Serve one accepted socket until it closes. Never raises for client behaviour."""
        conn = Connection(
            transport,
            send_queue=self.config.send_queue,
            bucket=TokenBucket(self.config.rate_per_s, self.config.burst, self._clock),
        )
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            if await self._open_session(conn):
                await self._serve(conn)
        except TransportClosedError:
            pass
        except Exception:
            log.exception("connection handler failed session=%s", conn.session)
            conn.fail(ErrorCode.INTERNAL, "internal error")
        finally:
            self._disconnected(conn)
            await conn.finish(self.config.close_timeout_s + 1)
            if task is not None:
                self._handlers.discard(task)

    async def _receive(self, conn: Connection, within_s: float) -> str | None:
        """Next text frame, or None after failing the connection (timeout, binary frame)."""
        try:
            async with asyncio.timeout(within_s):
                data = await conn.transport.receive()
        except TimeoutError:
            conn.fail(ErrorCode.TIMEOUT, "nothing received in time")
            return None
        conn.last_seen = asyncio.get_running_loop().time()
        if isinstance(data, bytes):
            conn.fail_with(CloseCode.UNSUPPORTED_DATA, ErrorCode.BAD_MESSAGE, "text frames only")
            return None
        return data

    async def _open_session(self, conn: Connection) -> bool:
        """First message: ``hello`` or ``resume``. True when the socket is now in a session."""
        text = await self._receive(conn, self.config.hello_timeout_s)
        if text is None:
            return False
        try:
            message = parse_client(text, max_bytes=self.config.max_message_bytes)
        except ProtocolError as exc:
            conn.fail(exc.code, exc.message)
            return False
        try:
            if isinstance(message, Hello):
                await self._hello(conn, message)
            elif isinstance(message, Resume):
                await self._resume(conn, message)
            else:
                conn.fail(ErrorCode.NOT_AUTHENTICATED, "the first message must be hello or resume")
                return False
        except (TokenError, RoomError) as exc:
            conn.fail(exc.code, exc.message, rid=message.rid)
            return False
        return True

    async def _hello(self, conn: Connection, hello: Hello) -> None:
        claims = await verify_and_consume(self._verifier, self._jti, hello.token, room=hello.room)
        room = await self._open_room(claims.room)
        identity = Identity(participant=claims.participant, name=claims.name, role=claims.role)
        session = secrets.token_urlsafe(16)
        resume_token = secrets.token_urlsafe(24)
        if self._store is not None:
            # Before the client has the token: a resume anywhere must find the session.
            await self._store.open(
                SessionRecord(session=session, room=room.id, **identity.to_dict()),
                resume_token,
                node=self.node_id,
                ttl_s=self._record_ttl(),
            )
        previous = room.members.get(identity.participant)
        try:
            member, fx = room.admit(
                identity,
                capacity=claims.capacity,
                session=session,
                resume_token=resume_token,
                at=self._wall(),
            )
        except RoomError:
            self._forget(session, 0)
            raise
        if previous is not None:
            self._forget(previous.session, previous.epoch)  # taken over: its token is void
        self._attach(conn, room, member.participant, session)
        conn.send_message(
            Welcome(
                session=session,
                resume_token=member.resume_token,
                room=room.id,
                participant=identity,
                peers=room.peers_of(member),
                seq=room.seq,
                limits=self.config.limits(),
                rid=hello.rid,
            )
        )
        self._apply(room, fx)
        self._publish(room.id, "presence", member=member.info().to_dict())

    async def _resume(self, conn: Connection, message: Resume) -> None:
        if self._store is not None:
            await self._resume_shared(conn, message)
            return
        room_id = self._session_rooms.get(message.session)
        room = self.rooms.get(room_id) if room_id is not None else None
        if room is None:
            raise RoomError(ErrorCode.RESUME_FAILED, "unknown or expired session")
        member, reply, replay, fx = room.resume(
            message.session, message.resume_token, message.last_seq, secrets.token_urlsafe(24)
        )
        self._resumed(conn, message, room, member.participant, reply, replay, fx)

    async def _resume_shared(self, conn: Connection, message: Resume) -> None:
        """Resume a session held here or by any instance: the store checks the token and
        hands the session to us (atomically: of two instances one wins, the token is void
        everywhere); then it is a local resume, or an adoption from the shadow buffer."""
        assert self._store is not None
        session = message.session
        room = self._room_of(session)
        if room is None:
            raise RoomError(ErrorCode.RESUME_FAILED, "unknown or expired session")
        member = room.by_session(session)
        if member is not None and not member.local:
            room.adoptable(session, message.last_seq)  # fail before using the token up
        new_token = secrets.token_urlsafe(24)
        adopted = await self._store.adopt(
            session, message.resume_token, new_token, node=self.node_id, ttl_s=self._record_ttl()
        )
        if adopted is None:
            raise RoomError(ErrorCode.RESUME_FAILED, "unknown session or wrong resume token")
        if member is not None and not member.local:
            await self._barrier(room.id)
        room = self._room_of(session)  # the room may have changed while Redis answered
        member = room.by_session(session) if room is not None else None
        if room is None or member is None:
            raise RoomError(ErrorCode.RESUME_FAILED, "unknown or expired session")
        if member.local:
            member, reply, replay, fx = room.resume(
                session, member.resume_token, message.last_seq, new_token, epoch=adopted.epoch
            )
        else:
            member, reply, replay, fx = room.adopt(
                session, message.last_seq, new_token, epoch=adopted.epoch
            )
        self._resumed(conn, message, room, member.participant, reply, replay, fx)

    async def _barrier(self, room_id: str) -> None:
        """Until our own publications to the room so far have come back from the broker:
        messages we relayed to a remote member are in its shadow buffer only then."""
        mark = secrets.token_hex(8)
        done = asyncio.get_running_loop().create_future()
        self._marks[mark] = done
        try:
            self._publish(room_id, "mark", mark=mark)
            async with asyncio.timeout(self.config.close_timeout_s * 2):
                await done
        except TimeoutError:
            raise RoomError(ErrorCode.RESUME_FAILED, "the broker did not answer") from None
        finally:
            self._marks.pop(mark, None)

    def _room_of(self, session: str) -> Room | None:
        """The room of a session held here, or of a remote member with that session."""
        room_id = self._session_rooms.get(session)
        if room_id is not None:
            return self.rooms.get(room_id)
        for room in self.rooms.values():
            if room.by_session(session) is not None:
                return room
        return None

    def _resumed(
        self,
        conn: Connection,
        message: Resume,
        room: Room,
        participant: str,
        reply: Resumed,
        replay: list[str],
        fx: Effects,
    ) -> None:
        """Carry out a resume (local or adopted): the old socket goes, the reply and the
        replay are sent before anything else can reach the new socket."""
        member = room.members[participant]
        previous = self._connections.get(message.session)
        if previous is not None and previous is not conn:
            previous.fail(ErrorCode.REPLACED, "the session resumed on another socket")
        self._attach(conn, room, participant, message.session)
        conn.send_message(replace(reply, rid=message.rid))
        for text in replay:
            conn.send(text, force=True)
        self._apply(room, fx)
        self._publish(room.id, "presence", member=member.info().to_dict())

    def _attach(self, conn: Connection, room: Room, participant: str, session: str) -> None:
        conn.room, conn.participant, conn.session = room, participant, session
        self._connections[session] = conn
        self._session_rooms[session] = room.id

    async def _serve(self, conn: Connection) -> None:
        """Read frames until the socket closes, the client leaves, or we close it."""
        # The hot loop of the server: locals instead of attribute look-ups, and no timer per
        # receive (the idle timeout is _reap_idle's job).
        transport, bucket, loop = conn.transport, conn.bucket, asyncio.get_running_loop()
        max_bytes = self.config.max_message_bytes
        while not conn.ended:
            text = await transport.receive()
            conn.last_seen = loop.time()
            if isinstance(text, bytes):
                conn.fail_with(
                    CloseCode.UNSUPPORTED_DATA, ErrorCode.BAD_MESSAGE, "text frames only"
                )
                return
            if not bucket.allow():
                conn.strikes += 1
                if conn.strikes >= self.config.rate_strikes:
                    conn.fail(ErrorCode.RATE_LIMITED, "too many messages")
                    return
                conn.send_message(
                    Error(
                        code=ErrorCode.RATE_LIMITED,
                        message="slow down; message dropped",
                        rid=_rid_of(text),
                    )
                )
                continue
            conn.strikes = 0
            try:
                message = parse_client(text, max_bytes=max_bytes)
            except ProtocolError as exc:
                if exc.code is ErrorCode.TOO_BIG:
                    conn.fail(exc.code, exc.message)
                    return
                conn.send_message(Error(code=exc.code, message=exc.message, rid=_rid_of(text)))
                continue
            try:
                self._dispatch(conn, message)
            except RoomError as exc:
                conn.send_message(Error(code=exc.code, message=exc.message, rid=message.rid))
            except Exception:
                log.exception("failed to process %s session=%s", message.TYPE, conn.session)
                conn.send_message(
                    Error(code=ErrorCode.INTERNAL, message="internal error", rid=message.rid)
                )

    def _dispatch(self, conn: Connection, message: ClientMessage) -> None:
        room, participant = conn.room, conn.participant
        assert room is not None  # set by _open_session
        assert participant is not None
        if conn.session is None or self._connections.get(conn.session) is not conn:
            return  # a frame that arrived just after this socket was replaced
        rid = message.rid
        if type(message) in _RELAYED:
            relayed = cast(Relayed, message)  # checked by the line above, more cheaply
            encoded = Sequenced.relayed(relayed, participant)  # once, for every instance
            self._apply(room, room.relay(participant, relayed, encoded=encoded))
            if self._broker is not None:
                self._enqueue(
                    room.id,
                    envelope.relay(
                        self.node_id, participant, relayed.to, relayed.TYPE, encoded, room.seq
                    ),
                )
        elif isinstance(message, Media):
            self._apply(room, room.set_media(participant, message.mode))
            self._publish(room.id, "presence", member=room.members[participant].info().to_dict())
        elif isinstance(message, Quality):
            member = room.members[participant]
            self._emit(
                room.id,
                RoomEvent(
                    "quality",
                    participant,
                    member.role,
                    member.session,
                    {"stats": dict(message.stats)},
                ),
            )
        elif isinstance(message, Ping):
            conn.send_message(Pong(rid=rid))
            return
        elif isinstance(message, Leave):
            session = conn.session
            assert session is not None
            conn.ended = True
            self._connections.pop(session, None)
            self._session_rooms.pop(session, None)
            if rid is not None:
                conn.send_message(Ack(rid=rid))
            self._forget(session, room.members[participant].epoch)
            self._apply(room, room.depart(participant, "left"))
            self._publish(room.id, "gone", participant=participant, session=session, reason="left")
            conn.close(CloseCode.NORMAL, "left")
            return
        elif isinstance(message, Hello | Resume):
            raise RoomError(ErrorCode.ALREADY_JOINED, "this socket is already in a session")
        if rid is not None:
            conn.send_message(Ack(rid=rid))

    def _disconnected(self, conn: Connection) -> None:
        """The socket ended: hold the participant's place for the grace period."""
        session, room = conn.session, conn.room
        if session is None or room is None or self._connections.get(session) is not conn:
            return  # never joined, or replaced/resumed elsewhere, or already left
        del self._connections[session]
        fx = room.detach(session, now=self._clock(), grace=self.config.grace_s)
        self._apply(room, fx)
        member = room.by_session(session)
        if member is not None:
            self._publish(room.id, "presence", member=member.info().to_dict())

    # ------------------------------------------------------------ effects

    def _apply(self, room: Room, fx: Effects) -> None:
        for session, text in fx.sends:
            conn = self._connections.get(session)
            if conn is not None:
                conn.send(text)
        for kick in fx.kicks:
            self._session_rooms.pop(kick.session, None)
            conn = self._connections.pop(kick.session, None)
            if conn is not None:
                conn.fail(kick.code, kick.message)
        for event in fx.events:
            self._emit(room.id, event)

    def _emit(self, room_id: str, event: RoomEvent) -> None:
        if self._on_event is None:
            return
        self._events.put_nowait(
            SessionEvent(
                kind=event.kind,
                room=room_id,
                participant=event.participant,
                role=event.role,
                session=event.session,
                at=datetime.fromtimestamp(self._wall(), UTC),
                node=self.node_id,
                detail=event.detail,
            )
        )

    async def _dispatch_events(self) -> None:
        while True:
            event = await self._events.get()
            try:
                if self._on_event is not None:
                    result = self._on_event(event)
                    if inspect.isawaitable(result):
                        await result
            except Exception:
                log.exception("session event callback failed for %s", event.kind)
            finally:
                self._events.task_done()

    # ------------------------------------------------------------ rooms and other instances

    async def _open_room(self, room_id: str) -> Room:
        """The room, created (and subscribed to, and announced) on first use."""
        room = self.rooms.get(room_id)
        if room is not None:
            return room
        opening = self._opening.get(room_id)
        if opening is None:
            opening = asyncio.create_task(self._create_room(room_id))
            self._opening[room_id] = opening
            opening.add_done_callback(lambda _: self._opening.pop(room_id, None))
        return await asyncio.shield(opening)

    async def _create_room(self, room_id: str) -> Room:
        if self._broker is not None:
            # Subscribe before anyone learns of our member, so no reply can be missed.
            await self._broker.subscribe(room_id)
        room = Room(room_id, replay_limit=self.config.replay_limit, scale=self._scale)
        self.rooms[room_id] = room
        self._publish(room_id, "sync")
        return room

    def _publish(self, room_id: str, kind: str, **body: Any) -> None:
        if self._broker is not None:
            self._enqueue(room_id, envelope.control(self.node_id, kind, body))

    def _enqueue(self, room_id: str, data: str) -> None:
        if self._outbox.qsize() >= self.config.outbox_limit:
            log.error("broker outbox full; dropping a publication for room %s", room_id)
            return
        self._outbox.put_nowait((room_id, data))

    async def _publish_loop(self) -> None:
        """Send the outbox in order, what has gathered meanwhile in one batch (one round trip
        to Redis for up to ``PUBLISH_BATCH`` publications rather than one each)."""
        assert self._broker is not None
        outbox = self._outbox
        while True:
            batch = [await outbox.get()]
            while len(batch) < PUBLISH_BATCH and not outbox.empty():
                batch.append(outbox.get_nowait())
            try:
                await self._broker.publish_many(batch)
            except Exception:
                log.exception("broker publish failed for %d publications", len(batch))

    async def _listen(self) -> None:
        assert self._broker is not None
        backoff = 0.1
        while True:
            try:
                room_id, data = await self._broker.receive()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("broker receive failed; retrying in %.1fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            try:
                self._on_broker(room_id, data)
            except Exception:
                log.exception("bad broker message for room %s", room_id)

    def _on_broker(self, room_id: str, data: str) -> None:
        room = self.rooms.get(room_id)
        if room is None:
            return
        number, data = envelope.split(data)
        got = envelope.read(data)
        if got is None:
            return
        seq = room.observe(number) if number is not None and self._scale > 1 else None
        mine = got.node == self.node_id
        if isinstance(got, envelope.RelayEnvelope):
            if mine and seq is None:
                return
            fx = room.forward(
                got.sender,
                got.to,
                got.encoded,
                seq=seq,
                origin=got.node,
                origin_seq=got.seq,
                deliver=not mine,  # our own: delivered when sent, now for the shadows
            )
            self._apply(room, fx)
            return
        if mine:
            done = self._marks.get(str(got.body.get("mark")))
            if done is not None and not done.done():
                done.set_result(None)
            return
        kind, payload = got.kind, got.body
        if kind == "sync":
            for member in room.local_members():
                self._publish(room_id, "presence", member=member.info().to_dict())
        elif kind == "presence":
            info = MemberInfo.from_dict(payload["member"])
            self._apply(room, room.apply_presence(info, got.node))
        elif kind == "gone":
            reason: LeaveReason = "left" if payload.get("reason") == "left" else "gone"
            fx = room.apply_departure(str(payload["participant"]), str(payload["session"]), reason)
            self._apply(room, fx)


_RELAYED: frozenset[type[ClientMessage]] = frozenset({Offer, Answer, CandidateMessage, IceRestart})


def _rid_of(text: str) -> str | None:
    """Best effort to echo the ``rid`` of a frame we could not accept."""
    try:
        value = json.loads(text).get("rid")
    except (ValueError, AttributeError, RecursionError):
        return None
    return value if isinstance(value, str) and 0 < len(value) <= 64 else None


async def serve(
    hub: SignalingHub,
    host: str | None = "127.0.0.1",
    port: int = 0,
    *,
    ping_interval_s: float | None = None,
    ping_timeout_s: float | None = 20.0,
    direct: bool = True,
    process_request: ProcessRequest | None = None,
) -> Server:
    """Start a standalone ``websockets`` server that gives each socket to ``hub``.

    Compression is off (it costs tens of KB per connection); the library enforces the message
    size limit itself (close 1009). WebSocket-level pings are off by default: the protocol's
    own heartbeat (a client message every ``heartbeat_s``, close after ``idle_timeout_s``)
    already finds dead peers, and the library's keepalive would add a task, a timer and about
    a dozen objects for the garbage collector to every idle connection. Frames are written
    directly (:class:`~signaling.transport.DirectWebsocketsTransport`) unless ``direct`` is
    False or the installed ``websockets`` lacks what that needs; then each socket gets a send
    queue and a writer task. Close it with ``server.close(); await server.wait_closed()``.

    ``process_request`` is handed to ``websockets`` as is: it sees each HTTP request before
    the upgrade and may answer it instead (a ``Response``), e.g. ``/metrics`` or a health
    check on the same port; ``None`` lets the handshake go on.
    """

    coalescer = WriteCoalescer()

    async def handler(connection: ServerConnection) -> None:
        close_timeout_s = hub.config.close_timeout_s
        transport: Transport
        if direct and DirectWebsocketsTransport.supports_direct(connection):
            transport = DirectWebsocketsTransport(
                connection, close_timeout_s=close_timeout_s, coalescer=coalescer
            )
        else:
            transport = WebsocketsTransport(connection, close_timeout_s=close_timeout_s)
        await hub.handle(transport)
        # Closed within close_timeout_s by handle(); then nothing reads these objects again.
        await connection.wait_closed()
        break_cycles(connection)

    return await ws_serve(
        handler,
        host,
        port,
        compression=None,
        max_size=hub.config.max_message_bytes,
        ping_interval=ping_interval_s,
        ping_timeout=ping_timeout_s,
        close_timeout=hub.config.close_timeout_s,
        max_queue=16,
        process_request=process_request,
    )
