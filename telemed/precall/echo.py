"""The echo peer of the network test: aiortc peer connections in the application's loop.

The browser offers two data channels (non-trickle: one complete SDP each way):

- ``probe``: unordered, ``maxRetransmits: 0``. Every message (at most ``probe_bytes``) is
  sent straight back, so the browser measures round trips and counts losses.
- ``bulk``: reliable and ordered, for throughput. The browser uploads binary chunks, then
  sends ``{"type": "up-done"}``; we answer ``{"type": "up-result", "bytes", "ms"}`` measured
  from the first chunk's arrival to the last's (the first chunk's bytes excluded). Then
  ``{"type": "down"}``: we send chunks for at most ``down_max_ms`` and ``down_max_bytes``,
  keeping no more than ``buffer_bytes`` queued, then ``{"type": "down-done", "bytes"}``.
  ``{"type": "bye"}`` closes the connection.

Everything is bounded: at most ``max_peers`` test peers per process (more get 429), one per
user (a new offer replaces the user's previous peer), a hard ``timeout_s`` after which a
peer is closed whatever it is doing, the plan's byte caps (a client that uploads more is cut
off), one download per peer. ``close_all`` ends them all when the application stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import json
import logging
from collections.abc import Coroutine, Sequence
from typing import Any

import ifaddr  # (aioice's own way of listing this machine's addresses)
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcdatachannel import RTCDataChannel

from telemed.errors import Conflict, TooManyRequests, ValidationFailed
from telemed.i18n import N_
from telemed.precall.schemas import NetworkTestPlan
from telemed.precall.service import PLAN
from telemed.settings import Settings

log = logging.getLogger(__name__)

PROBE_CHANNEL = "probe"
BULK_CHANNEL = "bulk"
MAX_PEERS = 4
TIMEOUT_S = 30.0
CLOSE_TIMEOUT_S = 5.0
MAX_CONTROL_CHARS = 200
BUSY_RETRY_S = 60
REPLACED = "the test was replaced by another one of yours; run it again"


class EchoPeer:
    """One browser's test connection and what it has used of the plan."""

    def __init__(self, owner: int, pc: RTCPeerConnection) -> None:
        self.owner = owner
        self.pc = pc
        self.echoed = 0
        self.uploaded = 0  # bytes in all, first chunk included
        self.up_first: float | None = None
        self.up_last: float | None = None
        self.up_first_bytes = 0
        self.downloaded = False
        self.closed = False
        self.tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


def check_offer(sdp: str) -> None:
    """422 unless the offer is an SDP with data channels only (no audio or video)."""
    media = [line for line in sdp.splitlines() if line.startswith("m=")]
    if not sdp.startswith("v=0") or not media:
        raise ValidationFailed(N_("the offer is not an SDP session description"), field="sdp")
    if any(not line.startswith("m=application ") for line in media):
        raise ValidationFailed(
            N_("the network test uses data channels only: no audio or video in the offer"),
            field="sdp",
        )


def _same_address(a: str, b: str) -> bool:
    try:
        first, second = ipaddress.ip_address(a), ipaddress.ip_address(b)
    except ValueError:
        return a == b
    mapped = getattr(first, "ipv4_mapped", None) or first
    other = getattr(second, "ipv4_mapped", None) or second
    return mapped == other


@functools.cache
def _own_addresses() -> frozenset[str]:
    """This machine's interface addresses (read once per process)."""
    found: set[str] = set()
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            found.add(ip.ip if isinstance(ip.ip, str) else ip.ip[0])
    return frozenset(found)


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def only_candidates_at(sdp: str, address: str) -> str:
    """The offer with only the ICE candidates at ``address`` (the one the request came from).

    Our peer sends connectivity checks to every candidate an offer lists; left as written,
    an offer listing internal hosts would make the server send UDP to them. A browser's
    server-reflexive candidate is the address its requests come from (a host candidate,
    when it is on the server's own network). A browser hides its host addresses behind
    mDNS names (``<uuid>.local``), which only answer on the server's own link, where the
    requester then is; those are kept too, or a browser next to the server (a clinic on the
    hospital's LAN, the tests) could not connect. A request from the loopback address comes
    from this machine, whose browser lists this machine's own interface addresses (never
    loopback): those are kept for it, and nothing else. 422 when no candidate is left."""
    own = _own_addresses() if _is_loopback(address) else frozenset()
    kept: list[str] = []
    found = 0
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            parts = line.split()
            if len(parts) < 8 or not (
                _same_address(parts[4], address)
                or parts[4].lower().endswith(".local")
                or parts[4] in own
            ):
                continue
            found += 1
        kept.append(line)
    if not found:
        raise ValidationFailed(
            N_("the offer lists no ICE candidate at the address of this request (%(address)s)"),
            address=address,
            field="sdp",
        )
    return "\r\n".join(kept) + "\r\n"


class EchoPool:
    """The test peers of this process."""

    def __init__(
        self,
        *,
        plan: NetworkTestPlan = PLAN,
        max_peers: int = MAX_PEERS,
        timeout_s: float = TIMEOUT_S,
        ice_servers: Sequence[RTCIceServer] = (),
    ) -> None:
        self.plan = plan
        self.max_peers = max_peers
        self.timeout_s = timeout_s
        self.ice_servers = list(ice_servers)
        self._peers: dict[int, EchoPeer] = {}  # by owner (user id)
        self._closing: set[asyncio.Task[None]] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> EchoPool:
        """Our side gathers host candidates, and server-reflexive ones if STUN is configured;
        the browser gets TURN too, so it can reach us through the relay."""
        stun = [RTCIceServer(urls=list(settings.stun_urls))] if settings.stun_urls else []
        return cls(ice_servers=stun)

    @property
    def active(self) -> int:
        return len(self._peers)

    async def answer(self, owner: int, offer_sdp: str, client_address: str) -> str:
        """The complete SDP answer of a new echo peer for ``owner``'s offer, sent from
        ``client_address``: our peer talks to that address only.

        429 when ``max_peers`` tests are running; 422 for an offer we cannot use.
        """
        check_offer(offer_sdp)
        offer_sdp = only_candidates_at(offer_sdp, client_address)
        previous = self._peers.get(owner)
        if previous is not None:
            self.close(previous)  # the same user again (e.g. a reload): replace
        if len(self._peers) >= self.max_peers:
            raise TooManyRequests(
                N_("The network test is busy; try again in a minute."),
                retry_after_seconds=BUSY_RETRY_S,
            )
        # Reserve the slot before the first await: the check above and this are atomic.
        pc = RTCPeerConnection(RTCConfiguration(iceServers=list(self.ice_servers)))
        peer = EchoPeer(owner, pc)
        self._peers[owner] = peer
        self._bind(peer)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())  # gathers every candidate
        except Exception as exc:  # aiortc raises several kinds for a bad SDP
            if peer.closed:
                raise Conflict(REPLACED) from exc
            self.close(peer)
            raise ValidationFailed(
                N_("the offer could not be used: %(error)s"), error=exc, field="sdp"
            ) from exc
        if peer.closed or pc.localDescription is None:
            raise Conflict(REPLACED)
        peer.spawn(self._expire(peer))
        return pc.localDescription.sdp

    def close(self, peer: EchoPeer) -> None:
        """Forget ``peer`` and close its connection in the background (idempotent)."""
        if peer.closed:
            return
        peer.closed = True
        if self._peers.get(peer.owner) is peer:
            del self._peers[peer.owner]
        current = asyncio.current_task()
        ending = [task for task in peer.tasks if task is not current]
        for task in ending:
            task.cancel()
        ending.append(asyncio.ensure_future(self._close_pc(peer.pc)))
        for task in ending:  # close_all waits for these
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close_all(self) -> None:
        """Close every test peer (application shutdown)."""
        for peer in list(self._peers.values()):
            self.close(peer)
        if self._closing:
            await asyncio.wait(set(self._closing), timeout=CLOSE_TIMEOUT_S + 1)

    @staticmethod
    async def _close_pc(pc: RTCPeerConnection) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(pc.close(), CLOSE_TIMEOUT_S)

    async def _expire(self, peer: EchoPeer) -> None:
        await asyncio.sleep(self.timeout_s)
        log.info("network test of user %s closed after %s s", peer.owner, self.timeout_s)
        self.close(peer)

    # ------------------------------------------------------------ the channels

    def _bind(self, peer: EchoPeer) -> None:
        pc = peer.pc

        @pc.on("connectionstatechange")
        def _state() -> None:
            if pc.connectionState in ("failed", "closed"):
                self.close(peer)

        @pc.on("datachannel")
        def _channel(channel: RTCDataChannel) -> None:
            if channel.label == PROBE_CHANNEL:
                self._bind_probe(peer, channel)
            elif channel.label == BULK_CHANNEL:
                self._bind_bulk(peer, channel)
            else:
                channel.close()

    def _bind_probe(self, peer: EchoPeer, channel: RTCDataChannel) -> None:
        limit = self.plan.probes * 4  # room for a retry, not for a flood

        @channel.on("message")
        def _echo(message: str | bytes) -> None:
            if peer.echoed < limit and len(message) <= self.plan.probe_bytes:
                peer.echoed += 1
                channel.send(message)

    def _bind_bulk(self, peer: EchoPeer, channel: RTCDataChannel) -> None:
        plan = self.plan
        cap = plan.up_max_bytes + 4 * plan.chunk_bytes
        loop = asyncio.get_running_loop()

        @channel.on("message")
        def _message(message: str | bytes) -> None:
            if isinstance(message, bytes):
                now = loop.time()
                if peer.up_first is None:
                    peer.up_first, peer.up_first_bytes = now, len(message)
                peer.up_last = now
                peer.uploaded += len(message)
                if peer.uploaded > cap:
                    log.info("network test of user %s uploaded too much", peer.owner)
                    self.close(peer)
                return
            kind = _control(message)
            if kind == "up-done":
                channel.send(json.dumps(_up_result(peer)))
            elif kind == "down" and not peer.downloaded:
                peer.downloaded = True
                peer.spawn(self._download(channel))
            elif kind == "bye":
                self.close(peer)

    async def _download(self, channel: RTCDataChannel) -> None:
        plan = self.plan
        loop = asyncio.get_running_loop()
        chunk = bytes(plan.chunk_bytes)
        low = asyncio.Event()
        channel.bufferedAmountLowThreshold = plan.buffer_bytes // 2
        channel.on("bufferedamountlow", low.set)
        deadline = loop.time() + plan.down_max_ms / 1000
        sent = 0
        while sent < plan.down_max_bytes and channel.readyState == "open":
            left = deadline - loop.time()
            if left <= 0:
                break
            if channel.bufferedAmount >= plan.buffer_bytes:
                low.clear()
                try:
                    await asyncio.wait_for(low.wait(), left)
                except TimeoutError:
                    break
                continue
            size = min(plan.chunk_bytes, plan.down_max_bytes - sent)
            channel.send(chunk[:size])
            sent += size
            await asyncio.sleep(0)  # let the transport run between chunks
        if channel.readyState == "open":
            channel.send(json.dumps({"type": "down-done", "bytes": sent}))


def _control(message: str) -> str | None:
    if len(message) > MAX_CONTROL_CHARS:
        return None
    try:
        value = json.loads(message)
    except ValueError:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    return kind if isinstance(kind, str) else None


def _up_result(peer: EchoPeer) -> dict[str, object]:
    if peer.up_first is None or peer.up_last is None:
        return {"type": "up-result", "bytes": 0, "ms": 0, "total": 0}
    return {
        "type": "up-result",
        "bytes": peer.uploaded - peer.up_first_bytes,
        "ms": round((peer.up_last - peer.up_first) * 1000, 3),
        "total": peer.uploaded,
    }
