"""Shared fixtures for the signalling tests: a real Redis and coturn when they are there.

A test that needs Redis or coturn skips on a developer machine without it, but fails under
``CI=true``: CI must never turn green by silently skipping the scale-out or relay tests.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator

import pytest
from coturn_helpers import Coturn, start_coturn, turnserver_path
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tests.conftest import require_service

REDIS_URL = os.environ.get("SIGNALING_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_url() -> str:
    """The URL of a live Redis, or skip (fail under CI=true) when there is none.

    Synchronous so that parametrized fixtures can ask for it with ``getfixturevalue``.
    """
    client = SyncRedis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        require_service("Redis", f"not reachable at {REDIS_URL}: {exc}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    client: Redis = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def key_prefix() -> str:
    """A prefix unique to this test so that parallel or repeated runs never share keys."""
    return f"test-signal-{secrets.token_hex(6)}:"


@pytest.fixture(scope="module")
def coturn() -> Iterator[Coturn]:
    """Debian's coturn on a free loopback port; skip without it (fail under CI=true)."""
    executable = turnserver_path()
    if executable is None:
        require_service("turnserver", "not installed (apt-get install coturn)")
    with start_coturn(executable) as server:
        yield server
