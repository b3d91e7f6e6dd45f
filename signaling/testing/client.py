"""A signalling client over ``websockets``: the protocol page, implemented from the client side.

:class:`SignalingClient` joins a room (``hello``), keeps track of the highest ``seq`` it has
processed, answers the heartbeat, and when its socket drops it **resumes** (``resume`` with
``last_seq``; the server replays what was missed) or, if that fails and it can get a fresh
token, makes a **full reconnect** (``hello`` again). Every frame from the server other than
``ack`` and ``pong`` is handed, in order, to an ``on_frame`` coroutine: that is where a WebRTC
peer (:mod:`signaling.testing.peer`) reacts to offers, answers and candidates.

Every wait has a timeout. ``on_frame`` must not wait for a reply from the server (it runs in
the task that reads those replies); it may :meth:`SignalingClient.send`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import logging
import random
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

log = logging.getLogger(__name__)

Frame = dict[str, Any]
FrameHandler = Callable[[Frame], Awaitable[None]]
TokenFactory = Callable[[], str | Awaitable[str]]

#: Close codes after which the client must not come back on its own (protocol page §11).
NO_RETRY_CLOSE_CODES = frozenset({1000, 4400, 4401, 4403, 4409})
#: Replies that answer a request by its ``rid``.
REPLY_TYPES = frozenset({"ack", "pong", "error", "welcome", "resumed"})


class SignalingError(Exception):
    """The server refused a request (an ``error`` frame) or the connection could not be made."""

    def __init__(self, code: str, message: str, frame: Frame | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.frame = frame


class Notifier:
    """Wake up whoever waits for a condition on this client's (or peer's) state."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float) -> None:
        """Return once ``predicate()`` holds; ``TimeoutError`` after ``timeout_s``."""
        async with asyncio.timeout(timeout_s):
            while True:
                event = self._event
                if predicate():
                    return
                await event.wait()


class SignalingClient:
    """One participant's signalling connection, with resume and full reconnect.

    Use: ``client = SignalingClient(url, room, token, on_frame=...)``, ``await client.join()``,
    then :meth:`send` / :meth:`request`, and ``await client.close()`` (or :meth:`leave`).
    ``token_factory``, when given, yields a fresh join token for a full reconnect.
    """

    def __init__(
        self,
        url: str,
        room: str,
        token: str,
        *,
        on_frame: FrameHandler | None = None,
        token_factory: TokenFactory | None = None,
        auto_resume: bool = True,
        timeout_s: float = 10.0,
        client_name: str = "telemed-test-client",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.url = url
        # For wss:// behind a proxy with its own certificate authority (None: the system's).
        self.ssl_context = ssl_context
        self.room = room
        self._token = token
        self._on_frame = on_frame
        self._token_factory = token_factory
        self.auto_resume = auto_resume
        self.timeout_s = timeout_s
        self.client_name = client_name
        self.changed = Notifier()
        self.session = ""
        self.resume_token = ""
        self.participant = ""
        self.last_seq = 0
        self.limits: dict[str, Any] = {}
        self.peers: dict[str, Frame] = {}
        self.welcome: Frame = {}
        self.errors: list[Frame] = []
        self.failures: list[BaseException] = []  # exceptions raised by on_frame
        self.resumes = 0
        self.resumes_refused = 0  # resume_failed: the server no longer knows the session
        self.full_reconnects = 0
        self.replay_pending = 0
        #: Room messages received, by type, and every peer state announced (participant,
        #: state): what the other side of a call saw of a peer's reconnection.
        self.kinds: Counter[str] = Counter()
        self.peer_states: list[tuple[str, str]] = []
        self.close_code: int | None = None
        self.connected = False
        self.gave_up = False
        self._ws: ClientConnection | None = None
        self._rids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[Frame]] = {}
        self._runner: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._stopping = False

    # ------------------------------------------------------------ public

    async def join(self) -> Frame:
        """Connect and send ``hello``; return ``welcome`` once ``on_frame`` has processed it."""
        ws = await self._connect()
        welcome = await self._hello(ws, self._token)
        self._runner = asyncio.create_task(self._run(), name=f"signal-client-{self.participant}")
        return welcome

    async def send(self, type_: str, /, **members: Any) -> str:
        """Send one message with a fresh ``rid``; return the rid. Dropped when disconnected."""
        rid = members.pop("rid", None) or f"c{next(self._rids)}"
        ws = self._ws
        if ws is None:
            return str(rid)
        with contextlib.suppress(ConnectionClosed):
            frame = json.dumps({"type": type_, "rid": rid, **members})
            await asyncio.wait_for(ws.send(frame), self.timeout_s)
        return str(rid)

    async def request(self, type_: str, /, **members: Any) -> Frame:
        """Send and wait for the reply with the same ``rid`` (``ack``, ``pong``...).

        Raises :class:`SignalingError` on an ``error`` reply. Not for use inside ``on_frame``.
        """
        rid = f"c{next(self._rids)}"
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        try:
            await self.send(type_, rid=rid, **members)
            reply = await asyncio.wait_for(future, self.timeout_s)
        finally:
            self._pending.pop(rid, None)
        if reply["type"] == "error":
            raise SignalingError(str(reply.get("code")), str(reply.get("message")), reply)
        return reply

    def drop(self) -> None:
        """Lose the connection without a closing handshake, as a network failure would."""
        if self._ws is not None:
            self._ws.transport.abort()

    async def wait_until(
        self, predicate: Callable[[], bool], timeout_s: float | None = None
    ) -> None:
        await self.changed.wait_for(predicate, self.timeout_s if timeout_s is None else timeout_s)

    async def leave(self) -> None:
        """Leave for good (``leave``; peers get ``peer-left`` at once) and close."""
        self._stopping = True
        if self._ws is not None and self.connected:
            with contextlib.suppress(SignalingError, TimeoutError, ConnectionClosed):
                await self.request("leave")
        await self.close()

    async def close(self) -> None:
        """Close the socket and stop; no resume follows."""
        self._stopping = True
        for task in (self._heartbeat, self._runner):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, self.timeout_s)
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(), self.timeout_s)
        self.connected = False
        self.changed.notify()

    # ------------------------------------------------------------ connection

    async def _connect(self) -> ClientConnection:
        tls: dict[str, Any] = {} if self.ssl_context is None else {"ssl": self.ssl_context}
        try:
            return await connect(
                self.url,
                compression=None,
                open_timeout=self.timeout_s,
                close_timeout=self.timeout_s,
                ping_interval=None,  # the protocol's own ping keeps us alive
                max_size=None,
                proxy=None,
                **tls,
            )
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            raise SignalingError("connect_failed", str(exc)) from exc

    async def _first_reply(self, ws: ClientConnection, message: Frame) -> Frame:
        """Send the first message of a session and read its reply (or the refusal)."""
        try:
            await ws.send(json.dumps(message))
            reply = json.loads(await asyncio.wait_for(ws.recv(), self.timeout_s))
        except (ConnectionClosed, TimeoutError) as exc:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), self.timeout_s)
            raise SignalingError("connect_failed", f"no reply to {message['type']}") from exc
        if not isinstance(reply, dict) or reply.get("type") == "error":
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), self.timeout_s)
            frame = reply if isinstance(reply, dict) else {}
            raise SignalingError(str(frame.get("code")), str(frame.get("message")), frame)
        return reply

    async def _hello(self, ws: ClientConnection, token: str) -> Frame:
        message = {
            "type": "hello",
            "rid": f"c{next(self._rids)}",
            "room": self.room,
            "token": token,
            "client": self.client_name,
        }
        welcome = await self._first_reply(ws, message)
        if welcome.get("type") != "welcome":
            raise SignalingError("bad_reply", f"expected welcome, got {welcome.get('type')}")
        self._ws = ws
        self.welcome = welcome
        self.session = welcome["session"]
        self.resume_token = welcome["resume_token"]
        self.participant = welcome["participant"]["participant"]
        self.limits = dict(welcome.get("limits") or {})
        self.last_seq = int(welcome["seq"])
        self.peers = {p["participant"]: p for p in welcome["peers"]}
        self.replay_pending = 0
        self._attached()
        await self._deliver(welcome)
        return welcome

    async def resume(self) -> Frame:
        """One resume attempt on a new socket; :class:`SignalingError` if it fails."""
        ws = await self._connect()
        message = {
            "type": "resume",
            "rid": f"c{next(self._rids)}",
            "session": self.session,
            "resume_token": self.resume_token,
            "last_seq": self.last_seq,
        }
        resumed = await self._first_reply(ws, message)
        if resumed.get("type") != "resumed":
            raise SignalingError("bad_reply", f"expected resumed, got {resumed.get('type')}")
        self._ws = ws
        self.resume_token = resumed["resume_token"]
        self.peers = {p["participant"]: p for p in resumed["peers"]}
        self.replay_pending = int(resumed.get("replayed", 0))
        self.resumes += 1
        self._attached()
        await self._deliver(resumed)
        if self._runner is None or self._runner.done():  # a manual resume (auto_resume off)
            self._runner = asyncio.create_task(self._run())
        return resumed

    def _attached(self) -> None:
        self.connected = True
        self.close_code = None
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.create_task(self._beat())
        self.changed.notify()

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(float(self.limits.get("heartbeat_s", 10)) * 0.8)
            if self.connected:
                await self.send("ping")

    async def _run(self) -> None:
        """Read frames; after a drop, resume or reconnect; until closed for good."""
        while not self._stopping:
            ws = self._ws
            assert ws is not None
            try:
                async for text in ws:
                    await self._process(json.loads(text))
            except ConnectionClosed:
                pass
            self.connected = False
            self.close_code = ws.close_code
            self.changed.notify()
            if self._stopping or not self.auto_resume or self.close_code in NO_RETRY_CLOSE_CODES:
                return
            if not await self._reconnect():
                self.gave_up = True
                self.changed.notify()
                return

    async def _reconnect(self) -> bool:
        """Resume within the grace period, else reconnect with a new token (protocol §9)."""
        deadline = time.monotonic() + float(self.limits.get("grace_s", 30))
        delay = 0.0
        while not self._stopping and time.monotonic() < deadline:
            if delay:
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter
            delay = min(max(delay * 2, 0.5), 5.0)
            try:
                await self.resume()
                return True
            except SignalingError as exc:
                if exc.code == "resume_failed":
                    self.resumes_refused += 1
                    break
                log.info("resume attempt failed: %s", exc)
        if self._token_factory is None or self._stopping:
            return False
        for _ in range(3):
            try:
                token = self._token_factory()
                if inspect.isawaitable(token):
                    token = await token
                await self._hello(await self._connect(), str(token))
                self.full_reconnects += 1
                self.changed.notify()
                return True
            except SignalingError as exc:
                log.info("full reconnect failed: %s", exc)
                await asyncio.sleep(0.5)
        return False

    # ------------------------------------------------------------ frames

    async def _process(self, frame: Frame) -> None:
        kind = frame.get("type")
        rid = frame.get("rid")
        if kind in REPLY_TYPES and isinstance(rid, str):
            future = self._pending.get(rid)
            if future is not None and not future.done():
                future.set_result(frame)
        if kind == "error":
            self.errors.append(frame)
            log.info("server error: %s", frame)
        if kind in ("ack", "pong", "error"):
            self.changed.notify()
            return
        seq = frame.get("seq")
        if isinstance(seq, int):
            self.last_seq = max(self.last_seq, seq)
            if self.replay_pending:
                self.replay_pending -= 1
        self.kinds[str(kind)] += 1
        peer = frame.get("peer")
        if kind in ("peer-joined", "peer-updated") and isinstance(peer, dict):
            if self.peers.get(peer["participant"], {}).get("state") != peer.get("state"):
                self.peer_states.append((str(peer["participant"]), str(peer.get("state"))))
            self.peers[peer["participant"]] = peer
        elif kind == "peer-left":
            self.peers.pop(str(frame.get("participant")), None)
        await self._deliver(frame)
        self.changed.notify()

    async def _deliver(self, frame: Frame) -> None:
        if self._on_frame is None:
            return
        try:
            await self._on_frame(frame)
        except Exception as exc:
            log.exception("on_frame failed for %s", frame.get("type"))
            self.failures.append(exc)
