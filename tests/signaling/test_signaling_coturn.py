"""Relay-only calls through Debian's coturn, with credentials from ``signaling.turn``.

coturn runs on loopback with ``use-auth-secret`` (the ``coturn`` fixture); two aiortc peers with
``iceTransportPolicy=relay`` can then only reach each other through TURN allocations made with
our TURN REST credentials, so a connected call with media proves that the credentials, the
``iceServers`` list and the relay all work together.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from aioice.stun import TransactionFailed
from aioice.turn import create_turn_endpoint
from coturn_helpers import Coturn
from signaling_helpers import ROOM, running, token

from signaling.testing.peer import AiortcPeer, call
from signaling.turn import TurnConfig, ice_servers, turn_credentials, turn_password

TIMEOUT = 10.0
FRAMES = 5


def turn_config(server: Coturn, *, udp: bool = True, tcp: bool = True) -> TurnConfig:
    # No STUN (it would only add a timeout on loopback) and no TLS (the test coturn has none).
    return TurnConfig(
        secret=server.secret,
        host=server.host,
        port=server.port,
        tls_port=None,
        udp=udp,
        tcp=tcp,
        stun_urls=(),
    )


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_two_peers_call_through_coturn_with_relay_only_ice(
    coturn: Coturn, transport: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="aioice")
    config = turn_config(coturn, udp=transport == "udp", tcp=transport == "tcp")
    async with running() as server:
        peers = [
            AiortcPeer(
                server.url,
                ROOM,
                token(participant, role=role),
                ice_servers=ice_servers(config, participant),
                relay_only=True,
                timeout_s=TIMEOUT,
            )
            for participant, role in (("u-clin", "clinician"), ("u-spec", "specialist"))
        ]
        clin, spec = peers
        try:
            try:
                await call(clin, spec, timeout_s=TIMEOUT)
            except TimeoutError:
                pytest.fail(f"no relayed connection; coturn log:\n{coturn.log()}")
            for receiver in peers:
                await receiver.wait_frames("video", FRAMES)
                await receiver.wait_frames("audio", FRAMES)
                # Relay-only: the peer offered relayed candidates and nothing else...
                assert receiver.local_candidate_types() == {"relay"}
                # ...and the pair ICE nominated is relay to relay (aiortc shows it through
                # aioice's state; should a release hide it, this list comes back empty).
                assert receiver.selected_pair_types() == [("relay", "relay")]
                assert receiver.failures == []
        finally:
            for p in peers:
                await p.close()


async def allocate(server: Coturn, username: str, password: str, transport: str = "udp") -> Any:
    """Ask coturn for a relay allocation; return the relayed address or raise."""
    turn, _ = await asyncio.wait_for(
        create_turn_endpoint(
            asyncio.DatagramProtocol,
            (server.host, server.port),
            username=username,
            password=password,
            transport=transport,
        ),
        TIMEOUT,
    )
    try:
        return turn.get_extra_info("sockname")
    finally:
        turn.close()
        with contextlib.suppress(Exception):
            await asyncio.sleep(0)  # let the Refresh(lifetime=0) go out


async def test_coturn_accepts_our_credentials_and_refuses_others(coturn: Coturn) -> None:
    good = turn_credentials(coturn.secret, "u-clin", ttl_s=600)
    relayed = await allocate(coturn, good.username, good.password)
    assert relayed[0] == coturn.host

    with pytest.raises(TransactionFailed, match="401"):
        await allocate(
            coturn, good.username, turn_password("another-secret-0123456", good.username)
        )
    # A well-signed credential whose expiry has passed.
    expired = turn_credentials(coturn.secret, "u-clin", ttl_s=600, now=1_000_000_000)
    with pytest.raises(TransactionFailed, match="401"):
        await allocate(coturn, expired.username, expired.password)
