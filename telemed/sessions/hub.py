"""The signalling hub as the application embeds it (``/ws/signal``) or runs it standalone.

In-process broker and used-token store by default; Redis for both when
``TELEMED_REDIS_URL`` is set, so several instances share rooms, single-use tokens and
sessions (a client resumes on any instance, ``signaling.sessions``). Session
events go to :func:`telemed.sessions.service.record_event` in a worker thread: the database
never blocks the event loop that carries the calls.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy import Engine

from signaling.broker import Broker, InMemoryBroker, RedisBroker
from signaling.events import EventCallback, SessionEvent
from signaling.server import HubConfig, SignalingHub
from signaling.sessions import SessionStore
from signaling.tokens import JtiStore, MemoryJtiStore, RedisJtiStore
from telemed.sessions import service
from telemed.settings import Settings


@dataclass
class HubRuntime:
    """The hub and the connections it owns; ``start``/``stop`` from a lifespan."""

    hub: SignalingHub
    broker: Broker
    redis: Redis | None = None

    async def start(self) -> None:
        if isinstance(self.broker, RedisBroker):
            await self.broker.ping()  # fail at start-up, not at the first call
        await self.hub.start()

    async def stop(self) -> None:
        await self.hub.stop()
        with contextlib.suppress(Exception):
            await self.broker.close()
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.aclose()


def event_recorder(engine: Engine) -> EventCallback:
    """The hub's ``on_event``: store the event, off the event loop."""

    async def record(event: SessionEvent) -> None:
        await asyncio.to_thread(service.record_event, engine, event)

    return record


def build_hub(
    settings: Settings,
    on_event: EventCallback | None,
) -> HubRuntime:
    """A hub keyed with the application's signalling secret; no I/O until ``start``."""
    broker: Broker
    jti_store: JtiStore
    redis: Redis | None = None
    sessions: SessionStore | None = None
    if settings.redis_url:
        # Rooms (relayed frames and presence), used tokens and sessions, all under the
        # deployment's prefix.
        prefix = settings.redis_key_prefix
        broker = RedisBroker(settings.redis_url, prefix=f"{prefix}room:", sequenced=True)
        redis = Redis.from_url(settings.redis_url)
        jti_store = RedisJtiStore(redis, prefix=f"{prefix}jti:")
        sessions = SessionStore(redis, prefix=prefix)
    else:
        broker = InMemoryBroker()
        jti_store = MemoryJtiStore()
    hub = SignalingHub(
        service.signaling_secret(settings),
        # In the application, requests in flight are frozen along with the sockets; freezing
        # once a minute rather than every second keeps what their cycles hold until the thaw
        # small (signaling.gcpolicy).
        config=HubConfig(grace_s=settings.signal_grace_seconds, gc_freeze_interval_s=60.0),
        broker=broker,
        sessions=sessions,
        jti_store=jti_store,
        on_event=on_event,
    )
    return HubRuntime(hub=hub, broker=broker, redis=redis)
