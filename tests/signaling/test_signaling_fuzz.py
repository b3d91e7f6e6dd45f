"""Hypothesis against live rooms: whatever a joined participant sends, the server answers
with protocol frames or closes with a documented code, the other participant's session
goes on, and a room next door hears nothing (issue 13, reliability tests in the suite).

Each example starts a hub on a loopback port (the standalone server, and the application's
path: the hub under uvicorn on a Starlette route), joins two participants to one room and a
bystander to another, and lets the first send what hypothesis draws: text that is not JSON,
binary frames, JSON of any shape, and messages of the protocol's own types with fields of
the wrong kind or out of range, addressed to anyone. The clock is frozen, so the rate limit
is the documented burst and nothing expires while an example runs.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from signaling_helpers import TEST_CONFIG, Client, join, running
from websockets.exceptions import ConnectionClosed

from signaling.protocol import CloseCode
from tests.helpers import MonotonicClock

CLIENT_TYPES = [
    "hello",
    "resume",
    "offer",
    "answer",
    "candidate",
    "ice-restart",
    "media",
    "quality",
    "ping",
    "leave",
]
SERVER_TYPES = {
    "welcome",
    "resumed",
    "peer-joined",
    "peer-updated",
    "peer-left",
    "offer",
    "answer",
    "candidate",
    "ice-restart",
    "pong",
    "ack",
    "error",
}
DOCUMENTED_CLOSES = {int(code) for code in CloseCode}
ROOM_NEXT_DOOR = "consult-2"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
# A message of one of the protocol's types: the right field names, any values.
fields = st.fixed_dictionaries(
    {"type": st.sampled_from(CLIENT_TYPES)},
    optional={
        "to": st.sampled_from(["u-2", "u-1", "nobody", ""]) | json_values,
        "sdp": st.text(max_size=200) | json_values,
        "candidate": st.text(max_size=100) | json_values,
        "mode": st.sampled_from(["normal", "low", "audio-only", "loud"]) | json_values,
        "rid": st.text(max_size=70) | json_values,
        "room": st.sampled_from(["consult-1", ROOM_NEXT_DOOR]) | json_values,
        "token": st.text(max_size=50) | json_values,
        "session": st.text(max_size=30) | json_values,
        "last_seq": st.integers() | json_values,
        "sdpMLineIndex": st.integers() | json_values,
        "rtt_ms": st.floats(allow_nan=False) | json_values,
    },
)
frames = st.one_of(
    fields.map(json.dumps),
    st.dictionaries(st.text(max_size=12), json_values, max_size=5).map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=300),
    st.binary(max_size=300),
)


async def _drain(client: Client) -> list[dict[str, Any]]:
    """Ping, then read up to the pong: every frame before it must be the protocol's."""
    rid = await client.send(type="ping", rid="drain")
    seen: list[dict[str, Any]] = []
    while True:
        frame = await client.recv()
        assert frame.get("type") in SERVER_TYPES, frame
        if frame["type"] == "pong" and frame.get("rid") == rid:
            return seen
        seen.append(frame)


async def _scenario(path: str, sent: list[str | bytes]) -> None:
    async with running(TEST_CONFIG, clock=MonotonicClock(), path=path) as srv:
        sender, _ = await join(srv.url, "u-1")
        peer, _ = await join(srv.url, "u-2")
        bystander, _ = await join(srv.url, "u-3", room=ROOM_NEXT_DOOR)
        closed = False
        for frame in sent:
            try:
                await sender.send_raw(frame)
            except ConnectionClosed:
                closed = True
                break
        if not closed:
            try:
                await _drain(sender)
            except ConnectionClosed:
                closed = True
        if closed:
            code = await sender.closed()
            assert code in DOCUMENTED_CLOSES, code
        # The other participant's session goes on: whatever reached it is the protocol's.
        await _drain(peer)
        assert await _drain(bystander) == [], "the room next door heard something"
        for client in (sender, peer, bystander):
            if not closed or client is not sender:
                await client.close()


@pytest.mark.parametrize("path", ["direct", "in-app"])
def test_whatever_a_participant_sends_the_rooms_hold(path: str) -> None:
    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(sent=st.lists(frames, min_size=1, max_size=12))
    def check(sent: list[str | bytes]) -> None:
        asyncio.run(_scenario(path, sent))

    check()
