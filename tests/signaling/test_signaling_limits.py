"""The documented limits hold on every path a socket can take, the application's included.

Issue 14: on the in-app ``/ws/signal`` (a send queue and a writer task per socket) a client that
read everything but sent the documented burst of 100 pings got a dozen pongs and then close
4507 "slow consumer", and floods ended the same way instead of ``rate_limited`` then 4429. The
server's clock is frozen, so the token bucket never refills: exactly ``burst`` frames are
served, then ``rate_strikes`` refusals, the last one fatal.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from signaling_helpers import TEST_CONFIG, Client, running, token

from tests.helpers import MonotonicClock

CONFIG = replace(TEST_CONFIG, rate_per_s=50.0, burst=100, rate_strikes=20)  # documented values


@pytest.mark.parametrize("path", ["direct", "in-app"])
@pytest.mark.parametrize(
    ("kind", "count"), [("ping", 120), ("ping", 400), ("malformed", 300)], ids=str
)
async def test_bursts_are_answered_then_refused_then_closed_4429(
    path: str, kind: str, count: int
) -> None:
    async with running(CONFIG, clock=MonotonicClock(), path=path) as srv:
        # max_queue=None: the client library reads the socket continuously, whatever we do.
        client = await Client.connect(srv.url, max_queue=None)
        await client.hello(token("u-1"))
        frames = [
            json.dumps({"type": "ping", "rid": f"p{i}"}) if kind == "ping" else '{"type": '
            for i in range(count)
        ]
        for frame in frames:  # back to back: nothing is read in between
            await client.send_raw(frame)
        for i in range(CONFIG.burst):
            if kind == "ping":
                await client.expect("pong", rid=f"p{i}")
            else:
                await client.expect("error", code="bad_json", fatal=False)
        for _ in range(CONFIG.rate_strikes - 1):
            await client.expect("error", code="rate_limited", fatal=False)
        assert await client.refused("rate_limited") == 4429
