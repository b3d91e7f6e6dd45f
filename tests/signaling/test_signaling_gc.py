"""The garbage-collection policy (``signaling.gcpolicy``) must not keep closed sockets alive.

Freezing moves live objects where no collection looks; a socket that was frozen while open
must still be freed once it closes. Counted in objects, not time: the server's connection
objects (frozen or not) go back to none after each round of connect / tick / disconnect, and
the number of objects the collector knows of does not grow from round to round.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
from dataclasses import replace

from websockets.asyncio.server import ServerConnection
from websockets.server import ServerProtocol

from signaling.gcpolicy import FULL_COLLECTION_THRESHOLD, GcPolicy, PauseRecorder, break_cycles
from signaling.server import SignalingHub
from tests.signaling.signaling_helpers import TEST_CONFIG, TIMEOUT, Client, running, token

ROUNDS = 4
PER_ROUND = 20  # sockets, two per room


def _server_objects() -> int:
    """Live server-side connection objects, frozen ones included (no collection runs)."""
    frozen = gc.get_freeze_count()
    gc.unfreeze()
    try:
        return sum(type(o) in (ServerConnection, ServerProtocol) for o in gc.get_objects())
    finally:
        if frozen:
            gc.freeze()


async def _until_freed(hub: SignalingHub) -> None:
    """Wait for the handlers to finish and the server's connection objects to be freed (by
    reference counting: no collection runs here). Nothing signals that, hence the polling."""
    async with asyncio.timeout(TIMEOUT):
        for _ in itertools.count():
            if not hub.stats()["connections"] and not _server_objects():
                return
            await asyncio.sleep(0.02)


def _tracked() -> int:
    return len(gc.get_objects()) + gc.get_freeze_count()


async def _round(url: str, policy: GcPolicy) -> None:
    clients = [await Client.connect(url) for _ in range(PER_ROUND)]
    for i, client in enumerate(clients):
        room = f"gc-{i // 2}"  # the same rooms each round: rooms outlive their sockets
        await client.hello(token(f"p{i % 2}", room=room), room=room)
    policy.tick()  # the open sockets are frozen now
    for client in clients:
        await client.send(type="leave")
    for client in clients:
        await client.ws.close()
        await asyncio.wait_for(client.ws.wait_closed(), TIMEOUT)
        break_cycles(client.ws)  # the test's own client connections, likewise
        Client.opened.remove(client)


async def test_closed_sockets_are_freed_although_they_were_frozen() -> None:
    policy = GcPolicy.acquire(thaw_interval_s=None)
    try:
        async with running(replace(TEST_CONFIG, gc_freeze=True)) as server:
            counts = []
            for _ in range(ROUNDS):
                await _round(server.url, policy)
                await _until_freed(server.hub)
                while not server.events.empty():  # the test's own record of session events
                    server.events.get_nowait()
                policy.tick()
                counts.append(_tracked())
            # Round 0 warms caches up, and a later round may still fill one once (42 objects
            # in one round, then flat, in a full suite's worker); a leak of the 32 cyclic
            # objects a socket left behind before would add 640 objects every round.
            assert counts[-1] - counts[1] < 5 * PER_ROUND, counts
    finally:
        GcPolicy.release()


def test_the_pause_recorder_times_every_collection() -> None:
    recorder = PauseRecorder()
    gc.callbacks.append(recorder)
    try:
        gc.collect(0)
        gc.collect()
    finally:
        gc.callbacks.remove(recorder)
    assert recorder.collections == 2
    assert recorder.worst_ms > 0
    assert recorder.worst_generation in (0, 2)


def test_the_policy_leaves_full_collections_to_its_ticks_and_restores_the_thresholds() -> None:
    """A burst of connections between two ticks must not start a full collection of its
    own (a 50 ms pause in bench.signaling): the oldest threshold is raised while a hub holds
    the policy, and the process's own thresholds come back when the last hub stops."""
    before = gc.get_threshold()
    GcPolicy.acquire(thaw_interval_s=None)
    try:
        assert gc.get_threshold()[:2] == before[:2]
        assert gc.get_threshold()[2] == FULL_COLLECTION_THRESHOLD > before[2]
    finally:
        GcPolicy.release()
    assert gc.get_threshold() == before
