"""Benchmark of the signalling server: memory per connection, relay rate, latency, set-up, resume.

Run from the repository root::

    python -m bench.signaling [--connections 10000] [--duration 5] [--rounds 2]
                              [--setups 20] [--resumes 5] [--loop asyncio|uvloop] [--check]

(``--connections 0``, ``--pairs 0``, ``--rate 0``, ``--setups 0`` or ``--resumes 0`` skip a
phase.) It prints human-readable lines, then one JSON line last. The server under test always
runs in a process of its own (``--role server``: the ``SignalingHub`` served by
``signaling.server.serve()``, as ``python -m signaling`` does); the load comes from this
process and, for the idle connections, from ``--client-procs`` helper processes. Every process
raises its open-file limit to the hard limit. Phases:

1. **Memory**: ``--connections`` idle, authenticated connections (two per room; each a
   ``hello`` answered by ``welcome``, then a protocol ``ping`` every 8 s as the heartbeat asks)
   held by one server process. ``rss_kb_per_connection`` is the growth of the server's resident
   set (``VmRSS``) from after a warm-up to when every connection is in, over their number.
2. **Latency** at a fixed offered load (``--rate``, 4,000 messages/s) from ``--latency-pairs``
   (100) pairs, i.e. 20 messages/s per connection, under the default limits: ``relay_p50_ms``
   and ``relay_p99_ms`` from send to receipt; ``baseline_relay_p99_ms`` is the same through the
   bare relay of phase 5, for scale (what the library and the machine cost anyway). A message
   not delivered within ``--drain`` seconds after the last was sent is lost (``relay_lost``):
   it still counts in the percentiles, with the time it had waited when we stopped waiting (a
   lower bound of its latency), so a server that drops 1 % of the messages cannot show a good
   p99. A ``--rate`` that would put a connection over the rate limit is refused.
3. **Set-up**: two aiortc peers (``signaling.testing.peer``, synthetic audio and video), from
   the first ``hello`` to both peer connections ``connected``: ``setup_p50_ms``,
   ``setup_p95_ms`` over ``--setups`` calls.
4. **Resume**: in a call, one side's signalling socket is dropped; the other side changes its
   media mode while it is away; ``resume_ms`` (median of ``--resumes``) runs from the drop to
   the moment the resumed client has the missed message replayed (``resume_replayed`` >= 1).
   The client reconnects at once: this is the server's part of a resume, not a client's
   back-off, nor the time a client takes to notice a dead socket.
5. **Relay rate**: ``--pairs`` pairs, each socket keeping ``--window`` ``candidate`` messages in
   flight to its partner (closed loop: a message received lets one more go).
   ``relay_msgs_per_s`` is messages delivered per second through our server;
   ``baseline_relay_msgs_per_s`` the same client against a bare ``websockets`` relay (the first
   frame pairs the socket, later frames are forwarded verbatim, nothing parsed): what the
   library itself does on this machine. Our server runs with the product's configuration
   (``HubConfig()``: 50 messages/s per connection, burst 100), rate limit included: a relay
   that only keeps up with the limit lifted says nothing about the product. A closed loop on a
   few sockets would run into that limit, so every socket is paced by the server's own token
   bucket (:class:`signaling.limits.TokenBucket`) at 90 % of the limit, and the load comes from
   many sockets instead (1,000 pairs: at most 90,000 messages/s offered, more than either
   server relays on our machines). ``relay_held_back`` is the share of sends the pacing delayed:
   when it is over 10 %, the limit and not the server set the rate, and ``relay_ratio`` is not
   measured (more ``--pairs``). ``relay_refused`` counts messages our server refused as over
   the limit although the client kept under it (it must be 0). The same paced client drives the
   bare relay. Messages carry no ``rid``. The servers alternate for ``--rounds`` rounds and each
   keeps its best. ``relay_cpu_us_per_msg`` and ``baseline_cpu_us_per_msg`` are the servers'
   CPU time per message, steadier than rates on a shared machine; the lines printed also show
   how much of a core each server got.

**The deployed path** (``deploy/nginx`` sends ``/ws/`` to the application): phases 2 and 5 run
a second time against the hub as the application mounts it (``signaling.asgi`` on a Starlette
route under uvicorn, as ``telemed serve`` runs it: a send queue and a writer task per socket
instead of direct writes), in a server process of its own (``--kind app``). Its figures carry
an ``_app`` suffix (``relay_p99_ms_app``, ``relay_lost_app``, ``relay_msgs_per_s_app``,
``relay_ratio_app``: against the same bare relay, ``relay_refused_app``) and are held to the
same goals.

**Two instances** (issue 14, item 3): phases 2 and 5 run a third time against two ``ours``
instances sharing rooms through Redis (``--redis-url``, a key prefix of the run's own; ``''``
skips these runs), each room's first peer on one instance and its second on the other, so
every message crosses the broker: ``relay_p99_ms_brokered``, ``relay_lost_brokered``,
``relay_msgs_per_s_brokered`` (CPU per message is both instances', Redis not counted),
``relay_ratio_brokered`` (against the same bare relay) and ``relay_refused_brokered``. The
single-instance figures of the same run are its baseline.

**Garbage-collection pauses** (issue 14, item 5): after the memory phase's connections are
in, the server runs a full collection as Python's thresholds would (``full_gc_ms``: what it
still has to scan once ``signaling.gcpolicy`` has frozen the long-lived objects), and reports
``gc_pause_max_ms``, the longest collection it ran during the whole phase (connections
opening, held, and that one), timed inside the server process by ``gc.callbacks``, with its
generation, the number of collections and of frozen objects.

``loadavg_start``/``loadavg_end`` record the machine's load around the run: on a shared 2-core
machine, other work shows up in the latencies first.

Goals (``GOALS``, judged by :mod:`bench._goals`; ``--check`` makes a miss the exit status):
10,000 connections held with none failed at <= 25 KB each; relay p99 <= 50 ms at 4,000
messages/s (at a lower ``--rate`` it is not measured) with no message lost; relay >= 0.8 x the
bare relay with nothing refused; set-up p95 <= 250 ms; resume <= 2 s with the missed message
replayed; the worst GC pause and a full collection <= 50 ms; across two instances the same
p99 and no loss, and relay >= 0.5 x the bare relay (two processes and a Redis round trip per
message, against one process). A skipped phase lists its goals as not measured (with the
option that skipped it), so a reduced run never reads as "goals met".

The load clients are the minimal WebSocket client of :mod:`bench._ws` (handshake, one masking
key per connection, frames written once per loop iteration): on a 2-core machine the load
generator must cost far less per message than the server, which ``websockets`` as a client
would not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import resource
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._goals import Goal, Goals, add_arguments, finish, tightened_goals
from bench._ws import HOST, RawWebSocket, raw_join

GOALS = (
    Goal("connections", ">=", 10_000),
    Goal("connections_failed", "<=", 0),
    Goal("rss_kb_per_connection", "<=", 25.0),
    Goal("full_gc_ms", "<=", 50.0),
    Goal("gc_pause_max_ms", "<=", 50.0),
    Goal("relay_p99_ms", "<=", 50.0),
    Goal("relay_lost", "<=", 0),
    Goal("setup_p95_ms", "<=", 250.0),
    Goal("resume_ms", "<=", 2000.0),
    Goal("resume_replayed", ">=", 1),
    Goal("relay_ratio", ">=", 0.8),
    Goal("relay_refused", "<=", 0),
    Goal("relay_p99_ms_app", "<=", 50.0),
    Goal("relay_lost_app", "<=", 0),
    Goal("relay_ratio_app", ">=", 0.8),
    Goal("relay_refused_app", "<=", 0),
    Goal("relay_p99_ms_brokered", "<=", 50.0),
    Goal("relay_lost_brokered", "<=", 0),
    Goal("relay_ratio_brokered", ">=", 0.5),
    Goal("relay_refused_brokered", "<=", 0),
)
# Which goals each phase measures, under the option that skips it (0).
PHASE_GOALS = {
    "connections": (
        "connections", "connections_failed", "rss_kb_per_connection", "full_gc_ms",
        "gc_pause_max_ms",
    ),
    "rate": (
        "relay_p99_ms", "relay_lost", "relay_p99_ms_app", "relay_lost_app",
        "relay_p99_ms_brokered", "relay_lost_brokered",
    ),
    "setups": ("setup_p95_ms",),
    "resumes": ("resume_ms", "resume_replayed"),
    "pairs": (
        "relay_ratio", "relay_refused", "relay_ratio_app", "relay_refused_app",
        "relay_ratio_brokered", "relay_refused_brokered",
    ),
}  # fmt: skip
BROKERED_GOALS = (
    "relay_p99_ms_brokered", "relay_lost_brokered", "relay_ratio_brokered",
    "relay_refused_brokered",
)  # fmt: skip
RATIO_SUFFIXES = (
    ("relay_ratio", ""), ("relay_ratio_app", "_app"), ("relay_ratio_brokered", "_brokered"),
)  # fmt: skip
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
GOAL_RATE = 4000.0  # the offered load the relay_p99_ms goal is about (messages/s)
PACE_SHARE = 0.9  # the relay-rate client keeps each socket at 90 % of the per-connection limit
HELD_BACK_MAX = 0.1  # above this share of sends held back by the pacing, the limit set the rate
PHASE_TIMEOUT_S = 300.0


def raise_nofile() -> int:
    """Raise this process's open-file limit to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1_048_576
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def run_loop(main: Coroutine[Any, Any, None], loop: str) -> None:
    """Run ``main`` on the standard asyncio loop or on uvloop."""
    if loop == "uvloop":
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


# ---------------------------------------------------------------- server processes


async def run_ours(port: int, secret: str, redis_url: str | None, prefix: str) -> None:
    """Our hub with the product's configuration (``HubConfig()``), limits included; with
    ``redis_url``, one of several instances sharing rooms through a :class:`RedisBroker`, as
    ``python -m signaling --redis-url`` runs it."""
    from redis.asyncio import Redis

    from signaling.broker import Broker, RedisBroker
    from signaling.server import HubConfig, SignalingHub, serve
    from signaling.sessions import SessionStore

    broker: Broker | None = None
    sessions: SessionStore | None = None
    if redis_url:
        # As deployed: publications numbered by Redis, sessions shared (resume anywhere).
        broker = RedisBroker(redis_url, prefix=f"{prefix}room:", sequenced=True)
        sessions = SessionStore(Redis.from_url(redis_url), prefix=prefix)
    try:
        async with SignalingHub(
            secret, config=HubConfig(), broker=broker, sessions=sessions
        ) as hub:
            server = await serve(hub, HOST, port)
            bound = next(iter(server.sockets)).getsockname()[1]
            print(json.dumps({"port": bound, "pid": os.getpid()}), flush=True)
            await _serve_commands(lambda: {**hub.stats(), **hub.gc_stats()})
            server.close()
            await asyncio.wait_for(server.wait_closed(), 30)
    finally:
        if broker is not None:
            await broker.close()


async def run_app(port: int, secret: str) -> None:
    """The same hub as the application mounts it on ``/ws/signal`` (``signaling.asgi``), on
    uvicorn with the options of ``telemed serve``: the path ``deploy/`` serves."""
    import socket

    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    from signaling.asgi import serve_starlette
    from signaling.server import HubConfig, SignalingHub

    async with SignalingHub(secret, config=HubConfig()) as hub:

        async def signal(websocket: WebSocket) -> None:
            await serve_starlette(hub, websocket)

        app = Starlette(routes=[WebSocketRoute("/", signal)])
        config = uvicorn.Config(
            app, host=HOST, port=port, log_level="warning", ws_per_message_deflate=False,
            lifespan="off", backlog=4096,
        )  # fmt: skip
        server = uvicorn.Server(config)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
        sock.listen(4096)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        print(json.dumps({"port": sock.getsockname()[1], "pid": os.getpid()}), flush=True)
        await _serve_commands(lambda: hub.stats())
        server.should_exit = True
        await asyncio.wait_for(task, 30)


async def run_baseline(port: int) -> None:
    """A bare ``websockets`` relay: the first frame names a room, later ones go to the partner."""
    from websockets.asyncio.server import ServerConnection
    from websockets.asyncio.server import serve as ws_serve
    from websockets.exceptions import ConnectionClosed

    rooms: dict[str, list[ServerConnection]] = {}

    async def handler(ws: ServerConnection) -> None:
        first = json.loads(await ws.recv())
        members = rooms.setdefault(str(first["room"]), [])
        members.append(ws)
        await ws.send('{"type":"welcome"}')
        try:
            async for message in ws:
                for other in members:
                    if other is not ws:
                        await other.send(message)
        except ConnectionClosed:
            pass
        finally:
            members.remove(ws)

    async with ws_serve(handler, HOST, port, compression=None, max_queue=16) as server:
        bound = next(iter(server.sockets)).getsockname()[1]
        print(json.dumps({"port": bound, "pid": os.getpid()}), flush=True)
        await _serve_commands(lambda: {"rooms": len(rooms)})


async def _serve_commands(stats: Callable[[], dict[str, Any]]) -> None:
    """Answer ``stats`` lines on stdin with a JSON line; return at EOF."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        command = line.strip()
        if command == b"stats":
            # Frozen objects (the server's GC policy) are out of get_objects() but still there.
            tracked = len(gc.get_objects()) + gc.get_freeze_count()
            extra = {"rss_kb": rss_kb(os.getpid()), "gc_objects": tracked}
            print(json.dumps({**extra, **stats()}), flush=True)
        elif command == b"gc":
            started = time.perf_counter()
            gc.collect()
            gc_ms = (time.perf_counter() - started) * 1000
            print(json.dumps({**stats(), "gc_ms": gc_ms}), flush=True)


@dataclass
class ServerProcess:
    """A server role in its own process; ``stats()`` asks it for counts and its RSS."""

    process: subprocess.Popen[bytes]
    port: int
    pid: int

    @classmethod
    def start(
        cls, kind: str, secret: str, loop: str = "asyncio", *, redis: tuple[str, str] | None = None
    ) -> ServerProcess:
        """``redis``: (URL, key prefix) of the Redis an ``ours`` instance shares rooms through."""
        command = [sys.executable, "-m", "bench.signaling", "--role", "server"]
        if redis is not None:
            command += ["--redis-url", redis[0], "--redis-prefix", redis[1]]
        process = subprocess.Popen(
            [*command, "--kind", kind, "--loop", loop],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "BENCH_SIGNALING_SECRET": secret},
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"{kind} server did not start")
        info = json.loads(line)
        return cls(process, int(info["port"]), int(info["pid"]))

    def stats(self) -> dict[str, Any]:
        return self.command("stats")

    def command(self, name: str) -> dict[str, Any]:
        """``stats`` (RSS, GC-tracked objects, hub counts) or ``gc`` (time a full collection)."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(name.encode() + b"\n")
        self.process.stdin.flush()
        return dict(json.loads(self.process.stdout.readline()))

    def stop(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def brokered(secret: str, loop: str, redis_url: str) -> Iterator[list[ServerProcess]]:
    """Two ``ours`` instances sharing rooms through Redis (a key prefix of their own)."""
    redis = (redis_url, f"bench-{secrets.token_hex(4)}:")
    with contextlib.ExitStack() as stack:
        yield [
            stack.enter_context(ServerProcess.start("ours", secret, loop, redis=redis))
            for _ in range(2)
        ]


# ---------------------------------------------------------------- phase 1: idle connections


async def hold_idle(port: int, secret: str, count: int, prefix: str, concurrency: int) -> None:
    """Client role: open ``count`` idle connections (two per room), report, hold until EOF."""
    gate = asyncio.Semaphore(concurrency)
    sockets: list[RawWebSocket] = []

    async def one(i: int) -> None:
        async with gate:
            ws = await raw_join(port, secret, f"{prefix}-{i // 2}", f"p{i % 2}")
            sockets.append(ws)

    started = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(count)), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    print(
        json.dumps(
            {
                "ready": len(sockets),
                "failed": len(failures),
                "error": repr(failures[0]) if failures else None,
                "seconds": time.perf_counter() - started,
            }
        ),
        flush=True,
    )

    async def heartbeat() -> None:
        ping = b'{"type":"ping"}'
        while True:
            for k, ws in enumerate(sockets):
                ws.send_text(ping)
                if k % 500 == 499:
                    await asyncio.sleep(0)
            await asyncio.sleep(8)

    beat = asyncio.create_task(heartbeat())
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.read()  # until EOF
    beat.cancel()
    alive = sum(not ws.closed for ws in sockets)
    for ws in sockets:
        ws.close()
    print(json.dumps({"alive_at_end": alive}), flush=True)


def memory_phase(
    server: ServerProcess, secret: str, connections: int, procs: int
) -> dict[str, Any]:
    # Warm up the code paths (imports, first room, first token) before the baseline reading.
    asyncio.run(_warm_up(server.port, secret))
    time.sleep(0.5)
    before = server.stats()
    per = [connections // procs + (1 if i < connections % procs else 0) for i in range(procs)]
    clients = [
        subprocess.Popen(
            [
                sys.executable, "-m", "bench.signaling", "--role", "idle",
                "--port", str(server.port), "--count", str(n), "--prefix", f"idle{i}",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "BENCH_SIGNALING_SECRET": secret},
        )
        for i, n in enumerate(per)
    ]  # fmt: skip
    reports = []
    try:
        for client in clients:
            assert client.stdout is not None
            line = client.stdout.readline()
            if not line:
                raise RuntimeError("idle client died")
            reports.append(json.loads(line))
        ready = sum(r["ready"] for r in reports)
        time.sleep(2.0)  # let the server settle (writer queues drained, nothing in flight)
        after = server.stats()
        # A full collection, as Python's cyclic GC runs one when its thresholds say so: how
        # long the server stalls then. Without the server's GC policy it looks at every object
        # of every connection; with it, only at what is not frozen. Then the worst pause of
        # any collection the server ran during the whole phase (connections opening, held,
        # and this one), timed inside the server by gc.callbacks.
        collected = server.command("gc")
        full_gc_ms = collected["gc_ms"]
        gc_pause_max_ms = collected.get("gc_pause_max_ms")
        seconds = max(r["seconds"] for r in reports)
    finally:
        ends = []
        for client in clients:
            assert client.stdin is not None
            assert client.stdout is not None
            client.stdin.close()
            ends.append(json.loads(client.stdout.readline() or "{}"))
            client.wait(60)
    delta = after["rss_kb"] - before["rss_kb"]
    result = {
        "connections": ready,
        "connections_failed": sum(r["failed"] for r in reports),
        "server_connections": after["connections"],
        "alive_at_end": sum(e.get("alive_at_end", 0) for e in ends),
        "rss_kb_before": before["rss_kb"],
        "rss_kb_after": after["rss_kb"],
        "rss_kb_per_connection": round(delta / max(ready, 1), 2),
        "gc_objects_per_connection": round(
            (after["gc_objects"] - before["gc_objects"]) / max(ready, 1), 1
        ),
        "connect_per_s": round(ready / seconds, 1),
        "full_gc_ms": round(full_gc_ms, 1),
        "gc_pause_max_ms": gc_pause_max_ms,
        "gc_pause_max_generation": collected.get("gc_pause_max_generation"),
        "gc_collections": collected.get("gc_collections"),
        "gc_frozen": collected.get("gc_frozen"),
    }
    errors = [r["error"] for r in reports if r["error"]]
    if errors:
        result["connect_error"] = errors[0]
    return result


async def _warm_up(port: int, secret: str) -> None:
    tag = secrets.token_hex(4)
    sockets = [await raw_join(port, secret, f"warm-{tag}-{i // 2}", f"p{i % 2}") for i in range(20)]
    for ws in sockets:
        ws.send_text(b'{"type":"leave"}')
    await asyncio.sleep(0.2)
    for ws in sockets:
        ws.close()


# ---------------------------------------------------------------- phases 2 and 3: relay


def candidate_frame(to: str, ident: int) -> bytes:
    """A trickled candidate as a browser sends it (about 230 bytes); ``ident`` tags it."""
    return (
        f'{{"type":"candidate","to":"{to}","candidate":{{"candidate":"candidate:{ident} 1 udp '
        '2122260223 192.168.1.5 54400 typ host generation 0 ufrag q7Zs network-id 1",'
        '"sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"q7Zs"}}'
    ).encode()


async def open_pairs(
    ports: int | Sequence[int], secret: str, pairs: int, on_text: Any
) -> list[RawWebSocket]:
    """``pairs`` rooms with two joined sockets each: [a0, b0, a1, b1, ...].

    With two ``ports`` (two instances sharing a broker) each room's ``a`` joins the first
    and its ``b`` the second, so every message crosses the broker."""
    tag = secrets.token_hex(4)
    gate = asyncio.Semaphore(100)
    where = [ports] if isinstance(ports, int) else list(ports)

    async def one(i: int) -> RawWebSocket:
        async with gate:
            port = where[i % 2 % len(where)]
            return await raw_join(port, secret, f"relay-{tag}-{i // 2}", f"p{i % 2}", on_text)

    sockets = await asyncio.gather(*(one(i) for i in range(2 * pairs)))
    await asyncio.sleep(0.3)  # peer-joined notices arrive and are ignored
    return list(sockets)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Throughput:
    msgs_per_s: float
    #: Server CPU time per relayed message: steadier than the rate on a shared machine.
    cpu_us_per_msg: float
    #: Share of one core the server used while measured (near 100: the server was the limit).
    server_cpu_pct: float
    #: Share of one core the load client used (near 100: the client was the limit).
    client_cpu_pct: float
    #: Share of the measured sends the pacing delayed (high: the rate limit set the rate).
    held_back: float
    #: ``rate_limited`` errors the server sent back (over the whole run).
    refused: int


async def throughput(
    ports: int | Sequence[int],
    pids: int | Sequence[int],
    secret: str,
    pairs: int,
    window: int,
    duration: float,
) -> Throughput:
    """Closed loop: each socket keeps ``window`` messages in flight to its partner, paced.

    A socket that receives a message sends one back when its token bucket (the server's own
    :class:`TokenBucket`, at ``PACE_SHARE`` of the product's rate, burst ``window``) allows;
    otherwise the send waits for a pacing tick. Sends held back so are counted: in a run that
    measures the server they are rare, since the server cannot relay as fast as the sockets
    may send. With several ``ports`` and ``pids`` (brokered instances), the CPU is theirs in
    all (Redis not counted) and a core means one of any of them."""
    from signaling.limits import TokenBucket
    from signaling.server import HubConfig

    limits = HubConfig()
    frames: dict[RawWebSocket, bytes] = {}  # each socket's message, masked once
    buckets: dict[RawWebSocket, TokenBucket] = {}
    owed: dict[RawWebSocket, int] = {}  # sends waiting for their socket's bucket
    counting = {"on": False, "n": 0, "stop": False, "wanted": 0, "held": 0, "refused": 0}

    def on_text(ws: RawWebSocket, payload: bytes, now: float) -> None:
        if b'"candidate"' not in payload:
            if b'"rate_limited"' in payload:
                counting["refused"] += 1
            return
        if counting["on"]:
            counting["n"] += 1
            counting["wanted"] += 1
        if counting["stop"]:
            return
        # One delivered to ws: ws sends one back, now if its bucket allows and none is waiting.
        if ws not in owed and buckets[ws].allow():
            ws.send_frame(frames[ws])
        else:
            owed[ws] = owed.get(ws, 0) + 1
            if counting["on"]:
                counting["held"] += 1

    async def pace() -> None:
        while not counting["stop"]:
            await asyncio.sleep(0.005)
            for ws in list(owed):
                bucket, due = buckets[ws], owed[ws]
                while due and bucket.allow():
                    ws.send_frame(frames[ws])
                    due -= 1
                if due:
                    owed[ws] = due
                else:
                    del owed[ws]

    rate = PACE_SHARE * limits.rate_per_s
    sockets = await open_pairs(ports, secret, pairs, on_text)
    for i, ws in enumerate(sockets):
        frames[ws] = ws.frame(candidate_frame("p1" if i % 2 == 0 else "p0", 1))
        buckets[ws] = TokenBucket(rate, min(window, limits.burst), time.perf_counter)
    for ws in sockets:
        for _ in range(window):
            if buckets[ws].allow():
                ws.send_frame(frames[ws])
            else:
                owed[ws] = owed.get(ws, 0) + 1
    pacer = asyncio.create_task(pace())
    await asyncio.sleep(1.0)  # warm-up
    counting["on"] = True
    server_pids = [pids] if isinstance(pids, int) else list(pids)

    def server_cpu() -> float:
        return sum(cpu_seconds(p) for p in server_pids)

    cpu0, own0, started = server_cpu(), time.process_time(), time.perf_counter()
    await asyncio.sleep(duration)
    counting["on"] = False
    cpu, elapsed = server_cpu() - cpu0, time.perf_counter() - started
    own = time.process_time() - own0
    counting["stop"] = True
    await pacer
    await asyncio.sleep(0.5)
    for ws in sockets:
        ws.close()
    n = max(counting["n"], 1)
    return Throughput(
        n / elapsed,
        cpu / n * 1e6,
        cpu / elapsed * 100,
        own / elapsed * 100,
        held_back=counting["held"] / max(counting["wanted"], 1),
        refused=counting["refused"],
    )


async def latency(
    ports: int | Sequence[int],
    secret: str,
    pairs: int,
    rate: float,
    duration: float,
    drain: float = 5.0,
) -> tuple[list[float], int, int]:
    """Open loop at ``rate`` messages/s in all; returns latencies (ms), sent, lost.

    Every measured message has a latency in the list: a lost one (not delivered ``drain``
    seconds after the last was sent) with the time it had waited then, a lower bound, so that
    losses push the percentiles up instead of leaving them out."""
    sent_at: dict[int, float] = {}
    samples: list[float] = []
    measuring = {"from": 0, "to": 0}
    all_sent = False
    drained = asyncio.Event()

    def on_text(ws: RawWebSocket, payload: bytes, now: float) -> None:
        start = payload.find(b"candidate:")
        if start < 0:
            return
        start += 10
        ident = int(payload[start : payload.index(b" ", start)])
        t0 = sent_at.pop(ident, None)
        if t0 is not None and measuring["from"] <= ident < measuring["to"]:
            samples.append((now - t0) * 1000)
        if all_sent and not sent_at:
            drained.set()

    sockets = await open_pairs(ports, secret, pairs, on_text)
    names = ["p1" if i % 2 == 0 else "p0" for i in range(len(sockets))]
    warm_up = 1.0
    total = int(rate * (warm_up + duration))
    measuring["from"], measuring["to"] = int(rate * warm_up), total
    started = time.perf_counter()
    ident = 0
    order = list(range(len(sockets)))
    random.shuffle(order)
    while ident < total:
        due = min(total, int((time.perf_counter() - started) * rate))
        while ident < due:
            k = order[ident % len(order)]
            sent_at[ident] = time.perf_counter()
            sockets[k].send_text(candidate_frame(names[k], ident))
            ident += 1
        await asyncio.sleep(0.002)
    all_sent = True
    if sent_at:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(drained.wait(), drain)
    gave_up = time.perf_counter()  # no await from here on: nothing more is received
    waited = [
        (gave_up - t0) * 1000
        for i, t0 in sent_at.items()
        if measuring["from"] <= i < measuring["to"]
    ]
    samples.extend(waited)
    for ws in sockets:
        ws.close()
    return samples, measuring["to"] - measuring["from"], len(waited)


# ---------------------------------------------------------------- phases 4 and 5: aiortc


async def setups(port: int, secret: str, count: int) -> list[float]:
    from signaling.testing.peer import AiortcPeer, call
    from signaling.tokens import mint_token

    url = f"ws://{HOST}:{port}/"
    times: list[float] = []
    for i in range(count):
        room = f"setup-{secrets.token_hex(4)}-{i}"
        a = AiortcPeer(
            url, room, mint_token(secret, room=room, participant="a", name="A", role="clinician")
        )
        b = AiortcPeer(
            url, room, mint_token(secret, room=room, participant="b", name="B", role="specialist")
        )
        started = time.perf_counter()
        try:
            await call(a, b, timeout_s=15)
            times.append((time.perf_counter() - started) * 1000)
        finally:
            await a.close()
            await b.close()
    return times


async def resumes(port: int, secret: str, count: int) -> list[tuple[float, int]]:
    from signaling.testing.peer import AiortcPeer, call
    from signaling.tokens import mint_token

    url = f"ws://{HOST}:{port}/"
    room = f"resume-{secrets.token_hex(4)}"
    a = AiortcPeer(
        url, room, mint_token(secret, room=room, participant="a", name="A", role="clinician"),
        auto_resume=False,
    )  # fmt: skip
    b = AiortcPeer(
        url, room, mint_token(secret, room=room, participant="b", name="B", role="specialist")
    )
    results: list[tuple[float, int]] = []
    try:
        await call(a, b, timeout_s=15)
        for i in range(count):
            mode = "low" if i % 2 == 0 else "normal"
            started = time.perf_counter()
            a.drop()
            await b.signaling.wait_until(lambda: b.signaling.peers["a"]["state"] == "reconnecting")
            await b.set_media(mode)  # missed by a: the server keeps it for the replay
            resumed = await a.signaling.resume()

            def caught_up(expected: str = mode) -> bool:
                return a.link().media == expected and a.signaling.replay_pending == 0

            await a.signaling.wait_until(caught_up)
            results.append(((time.perf_counter() - started) * 1000, int(resumed["replayed"])))
            await b.signaling.wait_until(lambda: b.signaling.peers["a"]["state"] == "active")
    finally:
        await a.close()
        await b.close()
    return results


# ---------------------------------------------------------------- orchestration


def run(args: argparse.Namespace) -> dict[str, Any]:
    secret = secrets.token_hex(24)
    limit = raise_nofile()
    print(f"open-file limit {limit}; {os.cpu_count()} CPUs; python {sys.version.split()[0]}")
    summary: dict[str, Any] = {"bench": "signaling", "loop": args.loop}
    # The machine is shared: the load around the run is part of reading its figures.
    summary["loadavg_start"] = round(os.getloadavg()[0], 2)

    if args.connections:
        with ServerProcess.start("ours", secret, args.loop) as server:
            print(f"memory: opening {args.connections} idle connections ...", flush=True)
            mem = memory_phase(server, secret, args.connections, args.client_procs)
        summary.update(mem)
        print(
            f"memory: {mem['connections']} connections held "
            f"({mem['connections_failed']} failed, {mem['connect_per_s']}/s to open), "
            f"server RSS {mem['rss_kb_before']} -> {mem['rss_kb_after']} KB: "
            f"{mem['rss_kb_per_connection']} KB and {mem['gc_objects_per_connection']} "
            f"GC-tracked objects per connection; a full GC takes {mem['full_gc_ms']} ms, the "
            f"worst GC pause in the server was {mem['gc_pause_max_ms']} ms "
            f"({mem['gc_collections']} collections, {mem['gc_frozen']} objects frozen)"
        )

    # A fresh server for the rest: tearing down 10,000 connections leaves cyclic garbage (in
    # websockets' protocol objects) that the next full collection would charge to latency.
    if args.rate or args.setups or args.resumes:
        with ServerProcess.start("ours", secret, args.loop) as server:
            _latency_setup_resume(server, secret, args, summary)
    if args.rate:
        with ServerProcess.start("app", secret, args.loop) as server:
            _latency_of([server], "_app", "in-app (/ws/signal on uvicorn)", secret, args, summary)
    if args.rate and args.redis_url:
        with brokered(secret, args.loop, args.redis_url) as pair:
            _latency_of(pair, "_brokered", "across two instances (Redis)", secret, args, summary)
    if args.pairs:
        _relay_rate(secret, args, summary)
    if args.rate:
        # The bare relay at the same offered load: what the library and the machine add.
        with ServerProcess.start("baseline", secret, args.loop) as relay:
            samples, _, lost = asyncio.run(
                latency(
                    relay.port, secret, args.latency_pairs, args.rate, args.duration, args.drain
                )
            )
        summary.update(
            baseline_relay_p50_ms=round(percentile(samples, 50), 2),
            baseline_relay_p99_ms=round(percentile(samples, 99), 2),
            baseline_relay_lost=lost,
        )
        print(
            f"latency of the bare relay at {args.rate:.0f} msg/s: "
            f"p50 {summary['baseline_relay_p50_ms']} ms, p99 {summary['baseline_relay_p99_ms']} "
            f"ms ({lost} lost)"
        )

    summary["loadavg_end"] = round(os.getloadavg()[0], 2)
    return summary


def _latency_of(
    servers: list[ServerProcess],
    suffix: str,
    label: str,
    secret: str,
    args: argparse.Namespace,
    summary: dict[str, Any],
) -> None:
    """Phase 2 against ``servers`` (two: each room's peers on different instances)."""
    samples, sent, lost = asyncio.run(
        latency(
            [s.port for s in servers], secret, args.latency_pairs, args.rate, args.duration,
            args.drain,
        )
    )  # fmt: skip
    p50, p99 = round(percentile(samples, 50), 2), round(percentile(samples, 99), 2)
    summary[f"relay_p50_ms{suffix}"], summary[f"relay_p99_ms{suffix}"] = p50, p99
    summary[f"relay_lost{suffix}"] = lost
    print(f"latency {label} at {args.rate:.0f} msg/s: p50 {p50} ms, p99 {p99} ms "
          f"({sent} measured, {lost} lost)")  # fmt: skip


def _latency_setup_resume(
    server: ServerProcess, secret: str, args: argparse.Namespace, summary: dict[str, Any]
) -> None:
    if args.rate:
        samples, sent, lost = asyncio.run(
            latency(server.port, secret, args.latency_pairs, args.rate, args.duration, args.drain)
        )
        summary.update(
            relay_p50_ms=round(percentile(samples, 50), 2),
            relay_p99_ms=round(percentile(samples, 99), 2),
            relay_latency_rate=args.rate,
            relay_lost=lost,
        )
        print(
            f"latency at {args.rate:.0f} msg/s: p50 {summary['relay_p50_ms']} ms, "
            f"p99 {summary['relay_p99_ms']} ms ({sent} measured, {lost} lost, counted with "
            "the time they waited)"
        )
    if args.setups:
        times = asyncio.run(setups(server.port, secret, args.setups))
        summary.update(
            setup_p50_ms=round(percentile(times, 50), 1),
            setup_p95_ms=round(percentile(times, 95), 1),
        )
        print(f"set-up hello -> connected: p50 {summary['setup_p50_ms']} ms, "
              f"p95 {summary['setup_p95_ms']} ms over {len(times)} calls")  # fmt: skip
    if args.resumes:
        res = asyncio.run(resumes(server.port, secret, args.resumes))
        summary.update(
            resume_ms=round(statistics.median(t for t, _ in res), 1),
            resume_max_ms=round(max(t for t, _ in res), 1),
            resume_replayed=min(r for _, r in res),
        )
        print(f"resume drop -> replayed: median {summary['resume_ms']} ms, "
              f"max {summary['resume_max_ms']} ms ({len(res)} resumes)")  # fmt: skip


def _relay_rate(secret: str, args: argparse.Namespace, summary: dict[str, Any]) -> None:
    from signaling.server import HubConfig

    # Alternate the two servers and keep each one's best round: the machine is shared, and
    # a burst of someone else's load should not decide the ratio.
    rates: dict[str, list[Throughput]] = {"ours": [], "app": [], "baseline": []}
    if args.redis_url:
        rates["brokered"] = []
    for _ in range(args.rounds):
        for kind, got in rates.items():
            with contextlib.ExitStack() as stack:
                if kind == "brokered":
                    servers = stack.enter_context(brokered(secret, args.loop, args.redis_url))
                else:
                    servers = [stack.enter_context(ServerProcess.start(kind, secret, args.loop))]
                got.append(
                    asyncio.run(
                        throughput(
                            [s.port for s in servers], [s.pid for s in servers], secret,
                            args.pairs, args.window, args.duration,
                        )
                    )
                )  # fmt: skip
            t = got[-1]
            print(f"relay through {kind}: {t.msgs_per_s:,.0f} msg/s, server "
                  f"{t.cpu_us_per_msg:.1f} us CPU per message at {t.server_cpu_pct:.0f}% "
                  f"of a core (client {t.client_cpu_pct:.0f}%; {args.pairs} pairs, "
                  f"window {args.window}; {100 * t.held_back:.1f}% of sends held back by the "
                  f"pacing, {t.refused} refused)")  # fmt: skip
    ours = max(rates["ours"], key=lambda t: t.msgs_per_s)
    base = max(rates["baseline"], key=lambda t: t.msgs_per_s)
    summary["relay_msgs_per_s"] = round(ours.msgs_per_s)
    summary["baseline_relay_msgs_per_s"] = round(base.msgs_per_s)
    summary["relay_offered_max_msgs_per_s"] = round(
        2 * args.pairs * PACE_SHARE * HubConfig().rate_per_s
    )
    summary["relay_cpu_us_per_msg"] = round(min(t.cpu_us_per_msg for t in rates["ours"]), 1)
    summary["baseline_cpu_us_per_msg"] = round(min(t.cpu_us_per_msg for t in rates["baseline"]), 1)
    summary["relay_ratio"] = round(
        summary["relay_msgs_per_s"] / max(summary["baseline_relay_msgs_per_s"], 1), 3
    )
    summary["relay_cpu_ratio"] = round(
        summary["baseline_cpu_us_per_msg"] / max(summary["relay_cpu_us_per_msg"], 1e-9), 3
    )
    summary["relay_held_back"] = round(ours.held_back, 3)
    summary["baseline_relay_held_back"] = round(base.held_back, 3)
    summary["relay_refused"] = sum(t.refused for t in rates["ours"])
    app = max(rates["app"], key=lambda t: t.msgs_per_s)
    summary["relay_msgs_per_s_app"] = round(app.msgs_per_s)
    summary["relay_cpu_us_per_msg_app"] = round(min(t.cpu_us_per_msg for t in rates["app"]), 1)
    summary["relay_ratio_app"] = round(
        summary["relay_msgs_per_s_app"] / max(summary["baseline_relay_msgs_per_s"], 1), 3
    )
    summary["relay_held_back_app"] = round(app.held_back, 3)
    summary["relay_refused_app"] = sum(t.refused for t in rates["app"])
    if args.redis_url:
        brk = max(rates["brokered"], key=lambda t: t.msgs_per_s)
        summary["relay_msgs_per_s_brokered"] = round(brk.msgs_per_s)
        summary["relay_cpu_us_per_msg_brokered"] = round(
            min(t.cpu_us_per_msg for t in rates["brokered"]), 1
        )
        summary["relay_ratio_brokered"] = round(
            summary["relay_msgs_per_s_brokered"] / max(summary["baseline_relay_msgs_per_s"], 1), 3
        )
        summary["relay_held_back_brokered"] = round(brk.held_back, 3)
        summary["relay_refused_brokered"] = sum(t.refused for t in rates["brokered"])
        print(f"relay across two instances / bare websockets: "
              f"{summary['relay_ratio_brokered']}")  # fmt: skip
    print(f"relay ratio ours / bare websockets: {summary['relay_ratio']} "
          f"(CPU per message: {summary['relay_cpu_ratio']}); in-app / bare websockets: "
          f"{summary['relay_ratio_app']}")  # fmt: skip


def judge(goals: Goals, summary: dict[str, Any], args: argparse.Namespace) -> None:
    """Every goal, met or missed from the summary, or not measured with the reason."""
    for option, names in PHASE_GOALS.items():
        if not getattr(args, option):
            for name in names:
                goals.not_measured(name, f"phase skipped (--{option} 0)")
            continue
        for name in names:
            if name in BROKERED_GOALS and not args.redis_url:
                goals.not_measured(name, "two-instance runs skipped (--redis-url '')")
            else:
                goals.judge(name, summary.get(name), "no figure from the phase")
    if args.connections and not summary["connections"]:
        goals.not_measured("rss_kb_per_connection", "no connection was opened")
    if args.rate and args.rate < GOAL_RATE:
        for name in ("relay_p99_ms", "relay_p99_ms_app", "relay_p99_ms_brokered"):
            goals.not_measured(
                name,
                f"the goal is at {GOAL_RATE:g} messages/s offered; this run offered {args.rate:g}",
            )
    if args.pairs:
        for name, suffix in RATIO_SUFFIXES:
            if f"relay_held_back{suffix}" not in summary:
                continue  # no figure: judged above as such
            held = max(summary[f"relay_held_back{suffix}"], summary["baseline_relay_held_back"])
            if held > HELD_BACK_MAX:
                goals.not_measured(
                    name,
                    f"the rate limit, not the server, set the rate: {100 * held:.0f}% of sends "
                    f"waited for the pacing (at most "
                    f"{summary['relay_offered_max_msgs_per_s']:,} messages/s offered); "
                    "raise --pairs",
                )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.signaling", description=(__doc__ or "").splitlines()[0]
    )
    p.add_argument("--connections", type=int, default=10_000, help="idle connections (0: skip)")
    p.add_argument("--client-procs", type=int, default=1, help="processes holding them")
    p.add_argument("--pairs", type=int, default=1000, help="pairs for the relay rate (0: skip)")
    p.add_argument("--window", type=int, default=8, help="messages in flight per socket")
    p.add_argument("--rounds", type=int, default=3, help="relay rounds per server (best kept)")
    p.add_argument(
        "--rate", type=float, default=GOAL_RATE, help="offered load for latency (0: skip)"
    )
    p.add_argument("--latency-pairs", type=int, default=100)
    p.add_argument(
        "--redis-url",
        default=None,
        help=f"Redis for the two-instance (brokered) runs of phases 2 and 5 (default "
        f"{DEFAULT_REDIS_URL}; '': skip them)",
    )
    p.add_argument("--redis-prefix", default="bench:", help=argparse.SUPPRESS)
    p.add_argument("--duration", type=float, default=5.0, help="seconds per relay measurement")
    p.add_argument(
        "--drain",
        type=float,
        default=5.0,
        help="seconds to wait for the last messages of the latency phase before they are lost",
    )
    p.add_argument("--setups", type=int, default=20, help="aiortc calls set up (0: skip)")
    p.add_argument("--resumes", type=int, default=5, help="resumes measured (0: skip)")
    p.add_argument(
        "--loop",
        choices=["asyncio", "uvloop"],
        default="asyncio",
        help="event loop of the servers under test (ours and the baseline alike)",
    )
    p.add_argument(
        "--role", choices=["bench", "server", "idle"], default="bench", help=argparse.SUPPRESS
    )
    p.add_argument(
        "--kind", choices=["ours", "app", "baseline"], default="ours", help=argparse.SUPPRESS
    )
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--prefix", default="idle", help=argparse.SUPPRESS)
    add_arguments(p, GOALS)
    args = p.parse_args(argv)
    for name in ("connections", "pairs", "setups", "resumes"):
        if getattr(args, name) < 0:
            p.error(f"--{name} must not be negative (0 skips the phase)")
    if args.rate < 0:
        p.error("--rate must not be negative (0 skips the phase)")
    for name in ("client_procs", "window", "rounds", "latency_pairs"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.duration <= 0 or args.drain <= 0:
        p.error("--duration and --drain must be positive")
    if args.role == "bench" and args.rate:
        from signaling.server import HubConfig

        per_connection = args.rate / (2 * args.latency_pairs)
        allowed = PACE_SHARE * HubConfig().rate_per_s
        if per_connection > allowed:
            p.error(
                f"--rate {args.rate:g} over {args.latency_pairs} pairs is {per_connection:g} "
                f"messages/s per connection, over {allowed:g} (90 % of the server's rate "
                "limit): the phase would measure refusals; raise --latency-pairs"
            )
    if args.role == "bench" and args.redis_url is None:
        args.redis_url = DEFAULT_REDIS_URL
    args.goals = tightened_goals(p, GOALS, args.goal)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role == "server":
        raise_nofile()
        secret = os.environ["BENCH_SIGNALING_SECRET"]
        if args.kind == "baseline":
            run_loop(run_baseline(args.port), args.loop)
        elif args.kind == "app":
            run_loop(run_app(args.port, secret), args.loop)
        else:
            run_loop(run_ours(args.port, secret, args.redis_url, args.redis_prefix), args.loop)
        return 0
    if args.role == "idle":
        raise_nofile()
        asyncio.run(
            hold_idle(args.port, os.environ["BENCH_SIGNALING_SECRET"], args.count, args.prefix, 200)
        )
        return 0
    summary = run(args)
    goals: Goals = args.goals
    judge(goals, summary, args)
    return finish(summary, goals, check=args.check)


if __name__ == "__main__":
    sys.exit(main())
