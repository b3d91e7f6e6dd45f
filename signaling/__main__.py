"""Standalone signalling server: ``python -m signaling --port 8765 --secret S [--redis-url URL]``.

(``telemed signal`` is the same server keyed and prefixed like the application.)

Several instances may share one Redis (``--redis-url``): tokens are then single-use across
all of them and a room's participants may connect to different instances. Session events are
written to standard output as JSON lines (one per event) for a supervisor or log shipper; the
application, when it embeds the hub, receives them through a callback instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from dataclasses import asdict

from redis.asyncio import Redis

from signaling.broker import Broker, RedisBroker
from signaling.events import SessionEvent
from signaling.server import HubConfig, SignalingHub, serve
from signaling.sessions import SessionStore
from signaling.tokens import JtiStore, RedisJtiStore


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m signaling", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    p.add_argument("--port", type=int, required=True, help="TCP port; 0 picks a free one")
    p.add_argument(
        "--secret",
        default=os.environ.get("SIGNALING_SECRET"),
        help="token signing secret, at least 16 bytes (default: $SIGNALING_SECRET, which keeps "
        "it out of the process list)",
    )
    p.add_argument("--redis-url", help="share rooms and used tokens with other instances")
    p.add_argument(
        "--redis-prefix",
        default=os.environ.get("SIGNALING_REDIS_PREFIX", "signal:"),
        help="starts every Redis channel and key (default: $SIGNALING_REDIS_PREFIX, else "
        "'signal:'); deployments sharing one Redis need different ones, since pub/sub ignores "
        "the database number in the URL",
    )
    p.add_argument("--grace", type=float, default=HubConfig().grace_s, help="grace period, s")
    p.add_argument("--log-level", default="INFO")
    return p


def _print_event(event: SessionEvent) -> None:
    record = asdict(event)
    record["at"] = event.at.isoformat()
    print(json.dumps({"event": "session", **record}, default=str), flush=True)


async def run(args: argparse.Namespace) -> None:
    broker: Broker | None = None
    jti_store: JtiStore | None = None
    redis: Redis | None = None
    sessions: SessionStore | None = None
    if args.redis_url:
        redis_broker = RedisBroker(
            args.redis_url, prefix=f"{args.redis_prefix}room:", sequenced=True
        )
        await redis_broker.ping()  # fail at start-up, not at the first call
        broker = redis_broker
        redis = Redis.from_url(args.redis_url)
        jti_store = RedisJtiStore(redis, prefix=f"{args.redis_prefix}jti:")
        sessions = SessionStore(redis, prefix=args.redis_prefix)
    hub = SignalingHub(
        args.secret,
        config=HubConfig(grace_s=args.grace),
        broker=broker,
        sessions=sessions,
        jti_store=jti_store,
        on_event=_print_event,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with hub:
        server = await serve(hub, args.host, args.port)
        port = next(iter(server.sockets)).getsockname()[1]
        print(json.dumps({"event": "listening", "host": args.host, "port": port}), flush=True)
        await stop.wait()
        server.close()
        await server.wait_closed()
    if broker is not None:
        await broker.close()
    if redis is not None:
        await redis.aclose()


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if not args.secret:
        sys.exit("a secret is required: --secret or $SIGNALING_SECRET")
    if len(args.secret.encode()) < 16:
        sys.exit("the secret must be at least 16 bytes")
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
