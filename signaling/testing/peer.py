"""An aiortc WebRTC peer that calls other participants through the signalling server.

:class:`AiortcPeer` is a complete protocol client (through
:class:`~signaling.testing.client.SignalingClient`) with one ``RTCPeerConnection`` per other
participant, sending synthetic audio (silence) and video (small frames) and counting the frames
it receives. Tests, the benchmark and the browser tests use it as "the other side of the call".

How it negotiates, given what aiortc can and cannot do:

- **Who offers.** The side that is *impolite* toward a peer (``peer.polite`` false) offers as
  soon as it learns of the peer (``welcome``, ``peer-joined``), so two aiortc peers never
  collide. A browser on the other side may offer too (perfect negotiation).
- **One complete SDP.** aiortc gathers every candidate before ``setLocalDescription`` returns
  and sends no trickled candidates; it accepts the browser's trickled ``candidate`` messages,
  including end-of-candidates (``""`` or ``null``).
- **No rollback, no restartIce.** Where a browser would roll back a colliding offer (the polite
  side) or restart ICE, this peer closes the connection and builds a new one; on
  ``ice-restart`` it rebuilds and offers again. An incoming offer with new ICE credentials
  (the other side restarted ICE) also gets a new connection.
- **Data channel** (``data_channel=True``): the call page's, label ``chat``, negotiated with
  id 0 on every connection (docs/signaling-protocol.md, §13).
- **Reconnects.** ``peer-joined`` with ``rejoined: true`` means the other side has a new
  session and a new connection: rebuild. A resume (``resumed``) keeps every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import re
import ssl
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import (
    AudioStreamTrack,
    MediaStreamError,
    MediaStreamTrack,
    VideoStreamTrack,
)
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.rtcdatachannel import RTCDataChannel
from aiortc.rtcicetransport import RTCIceCandidate
from aiortc.sdp import candidate_from_sdp
from av import VideoFrame

from signaling.testing.client import Frame, SignalingClient, TokenFactory
from signaling.turn import IceServer

log = logging.getLogger(__name__)

_UFRAG = re.compile(r"^a=ice-ufrag:(\S+)", re.MULTILINE)
_CANDIDATE_TYPE = re.compile(r"^a=candidate:\S+ \d+ \S+ \d+ \S+ \d+ typ (\w+)", re.MULTILINE)
CLOSE_TIMEOUT_S = 5.0


def rtc_ice_servers(servers: Sequence[IceServer]) -> list[RTCIceServer]:
    """The ``iceServers`` handed to browsers (:func:`signaling.turn.ice_servers`) for aiortc.

    aiortc uses the first STUN URL and the first TURN URL whose transport it supports.
    """
    return [
        RTCIceServer(
            urls=list(server["urls"]),
            username=server.get("username"),
            credential=server.get("credential"),
        )
        for server in servers
    ]


class SyntheticVideoTrack(VideoStreamTrack):
    """Small grey frames at 30 fps: real encoded video at a fraction of the CPU of 640x480."""

    def __init__(self, width: int = 160, height: int = 120) -> None:
        super().__init__()
        self._size = (width, height)
        self._planes: list[bytes] | None = None

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(width=self._size[0], height=self._size[1], format="yuv420p")
        if self._planes is None:
            self._planes = [bytes([128]) * p.buffer_size for p in frame.planes]
        for plane, data in zip(frame.planes, self._planes, strict=True):
            plane.update(data)
        frame.pts = pts
        frame.time_base = fractions.Fraction(time_base.numerator, time_base.denominator)
        return frame


@dataclass(eq=False)
class Link:
    """This peer's connection to one other participant (rebuilt, never renegotiated in ICE)."""

    participant: str
    polite: bool
    state: str = "active"
    media: str = "normal"
    pc: RTCPeerConnection | None = None
    #: How many peer connections have been built for this participant.
    generation: int = 0
    has_tracks: bool = False
    pending: list[RTCIceCandidate | None] = field(default_factory=list)
    #: Frames received from this participant, by kind, over all generations.
    frames: Counter[str] = field(default_factory=Counter)
    messages: list[str] = field(default_factory=list)
    channel: RTCDataChannel | None = None
    connected_at: float | None = None

    @property
    def connection_state(self) -> str:
        return "none" if self.pc is None else self.pc.connectionState


class AiortcPeer:
    """A participant with an aiortc peer connection to every other participant.

    ``ice_servers`` is what the application hands the call page (see :mod:`signaling.turn`);
    the default, none, is right on loopback (a STUN server would only add a timeout).
    ``relay_only`` sets ``iceTransportPolicy`` to ``relay``: every path goes through TURN.
    """

    def __init__(
        self,
        url: str,
        room: str,
        token: str,
        *,
        ice_servers: Sequence[IceServer] = (),
        relay_only: bool = False,
        audio: bool = True,
        video: bool = True,
        data_channel: bool = False,
        token_factory: TokenFactory | None = None,
        auto_resume: bool = True,
        timeout_s: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.signaling = SignalingClient(
            url,
            room,
            token,
            on_frame=self._on_frame,
            token_factory=token_factory,
            auto_resume=auto_resume,
            timeout_s=timeout_s,
            client_name="telemed-aiortc-peer",
            ssl_context=ssl_context,
        )
        self.ice_servers = list(ice_servers)
        self.relay_only = relay_only
        self.audio = audio
        self.video = video
        self.data_channel = data_channel
        self.timeout_s = timeout_s
        self.links: dict[str, Link] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._consumers: set[asyncio.Task[None]] = set()

    @property
    def participant(self) -> str:
        return self.signaling.participant

    @property
    def failures(self) -> list[BaseException]:
        """Exceptions raised while handling server frames (a healthy call has none)."""
        return self.signaling.failures

    # ------------------------------------------------------------ public

    async def join(self) -> Frame:
        """``hello``; returns ``welcome``. Offers to the peers already there, if impolite."""
        return await self.signaling.join()

    def link(self, participant: str | None = None) -> Link:
        """The link to ``participant``, or to the only other participant."""
        if participant is None:
            if len(self.links) != 1:
                raise LookupError(f"{len(self.links)} links: name the participant")
            return next(iter(self.links.values()))
        return self.links[participant]

    def _find(self, participant: str | None) -> Link | None:
        try:
            return self.link(participant)
        except (LookupError, KeyError):
            return None

    async def wait_connected(
        self, participant: str | None = None, timeout_s: float | None = None
    ) -> Link:
        """Wait until the peer connection to ``participant`` is ``connected``."""

        def ready() -> bool:
            link = self._find(participant)
            return link is not None and link.connection_state == "connected"

        await self.signaling.wait_until(ready, timeout_s)
        return self.link(participant)

    async def wait_frames(
        self,
        kind: str,
        count: int,
        participant: str | None = None,
        timeout_s: float | None = None,
    ) -> int:
        """Wait until ``count`` frames of ``kind`` (``audio``/``video``) have arrived in all."""

        def enough() -> bool:
            link = self._find(participant)
            return link is not None and link.frames[kind] >= count

        await self.signaling.wait_until(enough, timeout_s)
        return self.link(participant).frames[kind]

    async def wait_message(
        self, count: int = 1, participant: str | None = None, timeout_s: float | None = None
    ) -> list[str]:
        """Wait for ``count`` data-channel messages in all; return them."""

        def enough() -> bool:
            link = self._find(participant)
            return link is not None and len(link.messages) >= count

        await self.signaling.wait_until(enough, timeout_s)
        return list(self.link(participant).messages)

    def send_message(self, text: str, participant: str | None = None) -> None:
        """Send ``text`` on the data channel (``data_channel=True`` and connected)."""
        channel = self.link(participant).channel
        if channel is None or channel.readyState != "open":
            raise RuntimeError("the data channel is not open")
        channel.send(text)

    def local_candidate_types(self, participant: str | None = None) -> set[str]:
        """Candidate types (``host``, ``srflx``, ``relay``) in our current local SDP."""
        pc = self.link(participant).pc
        if pc is None or pc.localDescription is None:
            return set()
        return set(_CANDIDATE_TYPE.findall(pc.localDescription.sdp))

    def selected_pair_types(self, participant: str | None = None) -> list[tuple[str, str]]:
        """``(local type, remote type)`` of the nominated candidate pair of each transport.

        aiortc has no ``getStats`` for candidate pairs, so this reads aioice's state; it
        returns an empty list if a future version hides it.
        """
        pc = self.link(participant).pc
        if pc is None:
            return []
        pairs: list[tuple[str, str]] = []
        for transceiver in pc.getTransceivers():
            ice = transceiver.receiver.transport.transport
            nominated = getattr(getattr(ice, "_connection", None), "_nominated", None) or {}
            for pair in nominated.values():
                pairs.append((pair.local_candidate.type, pair.remote_candidate.type))
        return sorted(set(pairs))

    async def set_media(self, mode: str) -> None:
        """Announce a new sending profile (``normal``, ``low``, ``audio-only``)."""
        await self.signaling.request("media", mode=mode)

    async def restart_ice(self, participant: str | None = None) -> None:
        """What aiortc can do instead of ``restartIce()``: a new connection, a new offer."""
        await self._offer(self.link(participant))

    def drop(self) -> None:
        """Drop the signalling socket (not the media): the client resumes by itself."""
        self.signaling.drop()

    async def leave(self) -> None:
        await self.signaling.leave()
        await self._close_all()

    async def close(self) -> None:
        await self.signaling.close()
        await self._close_all()

    async def __aenter__(self) -> AiortcPeer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ peer connections

    def _configuration(self) -> RTCConfiguration:
        return RTCConfiguration(
            iceServers=rtc_ice_servers(self.ice_servers),
            iceTransportPolicy=(
                RTCIceTransportPolicy.RELAY if self.relay_only else RTCIceTransportPolicy.ALL
            ),
        )

    def _rebuild(self, link: Link) -> RTCPeerConnection:
        """Close ``link``'s connection (in the background) and give it a fresh one."""
        self._discard(link)
        pc = RTCPeerConnection(self._configuration())
        link.pc = pc
        link.generation += 1
        link.has_tracks = False
        link.connected_at = None
        changed = self.signaling.changed

        @pc.on("connectionstatechange")
        def _state() -> None:
            if link.pc is pc:
                if pc.connectionState == "connected" and link.connected_at is None:
                    link.connected_at = time.monotonic()
                log.debug("%s -> %s: %s", self.participant, link.participant, pc.connectionState)
                changed.notify()
                if pc.connectionState == "failed" and not link.polite:
                    task = asyncio.create_task(self._offer(link))
                    self._consumers.add(task)
                    task.add_done_callback(self._consumers.discard)

        @pc.on("track")
        def _track(track: MediaStreamTrack) -> None:
            task = asyncio.create_task(self._consume(link, pc, track))
            self._consumers.add(task)
            task.add_done_callback(self._consumers.discard)

        @pc.on("datachannel")
        def _channel(channel: RTCDataChannel) -> None:
            self._bind_channel(link, channel)

        if self.data_channel:
            # The call page's channel: negotiated out of band (id 0), created by both sides on
            # every connection, so that neither waits for the other to open it.
            self._bind_channel(link, pc.createDataChannel("chat", negotiated=True, id=0))
        return pc

    def _add_tracks(self, link: Link, pc: RTCPeerConnection, *, answering: bool = False) -> None:
        """Our audio and video; when answering, only the kinds the offer has m-lines for."""
        if link.has_tracks:
            return
        link.has_tracks = True
        offered = {t.kind for t in pc.getTransceivers()} if answering else {"audio", "video"}
        if self.audio and "audio" in offered:
            pc.addTrack(AudioStreamTrack())
        if self.video and "video" in offered:
            pc.addTrack(SyntheticVideoTrack())

    def _bind_channel(self, link: Link, channel: RTCDataChannel) -> None:
        link.channel = channel
        changed = self.signaling.changed

        @channel.on("message")
        def _message(message: str | bytes) -> None:
            link.messages.append(message if isinstance(message, str) else message.decode())
            changed.notify()

        @channel.on("open")
        def _open() -> None:
            changed.notify()

    async def _consume(self, link: Link, pc: RTCPeerConnection, track: MediaStreamTrack) -> None:
        changed = self.signaling.changed
        while True:
            try:
                await track.recv()
            except MediaStreamError:
                return
            if link.pc is pc:
                link.frames[track.kind] += 1
                changed.notify()

    def _discard(self, link: Link) -> None:
        pc, link.pc, link.channel = link.pc, None, None
        if pc is not None:
            task = asyncio.create_task(self._close_pc(pc))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close_pc(pc: RTCPeerConnection) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(pc.close(), CLOSE_TIMEOUT_S)

    async def _close_all(self) -> None:
        for link in self.links.values():
            self._discard(link)
        self.links.clear()
        if self._closing:
            await asyncio.wait(set(self._closing), timeout=CLOSE_TIMEOUT_S + 1)
        for task in list(self._consumers):
            task.cancel()
        if self._consumers:
            await asyncio.wait(set(self._consumers), timeout=CLOSE_TIMEOUT_S)

    async def _offer(self, link: Link) -> None:
        link.pending.clear()  # candidates for an earlier negotiation
        pc = self._rebuild(link)
        self._add_tracks(link, pc)
        await pc.setLocalDescription(await pc.createOffer())
        if link.pc is pc and pc.localDescription is not None:
            await self.signaling.send("offer", to=link.participant, sdp=pc.localDescription.sdp)

    # ------------------------------------------------------------ signalling frames

    def _link_for(self, peer: dict[str, Any]) -> Link:
        participant = str(peer["participant"])
        link = self.links.get(participant)
        if link is None:
            link = self.links[participant] = Link(participant, bool(peer["polite"]))
        link.polite = bool(peer["polite"])
        link.state = str(peer.get("state", "active"))
        link.media = str(peer.get("media", "normal"))
        return link

    async def _on_frame(self, frame: Frame) -> None:
        kind = frame["type"]
        if kind == "welcome":
            # A new session (first join or full reconnect): every connection starts over.
            for link in self.links.values():
                self._discard(link)
            self.links.clear()
            for peer in frame["peers"]:
                link = self._link_for(peer)
                if not link.polite:
                    await self._offer(link)
        elif kind == "resumed":
            if not frame.get("moved"):
                for peer in frame["peers"]:
                    if peer["participant"] in self.links:
                        self._link_for(peer)
                return
            # The session moved to another instance (protocol §9): the peer-* messages missed
            # are not replayed, so who came or went meanwhile shows here.
            present = {str(peer["participant"]) for peer in frame["peers"]}
            for participant in [p for p in self.links if p not in present]:
                self._discard(self.links.pop(participant))
            for peer in frame["peers"]:
                known = peer["participant"] in self.links
                link = self._link_for(peer)
                if not known and not link.polite:
                    await self._offer(link)
        elif kind == "peer-joined":
            link = self._link_for(frame["peer"])
            if frame.get("rejoined") or link.pc is not None:
                self._discard(link)
            if not link.polite:
                await self._offer(link)
        elif kind == "peer-updated":
            self._link_for(frame["peer"])
        elif kind == "peer-left":
            gone = self.links.pop(str(frame["participant"]), None)
            if gone is not None:
                self._discard(gone)
        elif kind == "offer":
            await self._on_offer(str(frame["from"]), str(frame["sdp"]))
        elif kind == "answer":
            await self._on_answer(str(frame["from"]), str(frame["sdp"]))
        elif kind == "candidate":
            await self._on_candidate(str(frame["from"]), frame.get("candidate"))
        elif kind == "ice-restart":
            asked = self.links.get(str(frame["from"]))
            if asked is not None:
                await self._offer(asked)

    def _known(self, participant: str) -> Link:
        link = self.links.get(participant)
        if link is None:
            # A message may overtake the peer's announcement across instances; the sender
            # offered, so it is the impolite side and we are polite toward it.
            peer = self.signaling.peers.get(participant, {"participant": participant})
            link = self._link_for({**peer, "polite": peer.get("polite", True)})
        return link

    async def _on_offer(self, sender: str, sdp: str) -> None:
        link = self._known(sender)
        pc = link.pc
        if pc is not None and pc.signalingState == "have-local-offer":
            if not link.polite:
                return  # impolite: ignore the colliding offer, ours wins
            pc = None  # polite: accept theirs; aiortc cannot roll back, so start over
        elif pc is not None and (
            pc.connectionState in ("failed", "closed")
            or (
                pc.remoteDescription is not None and _ufrag(pc.remoteDescription.sdp) != _ufrag(sdp)
            )
        ):
            pc = None  # the other side restarted ICE: aiortc cannot, start over
        if pc is None:
            pc = self._rebuild(link)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        self._add_tracks(link, pc, answering=True)
        await self._flush(link, pc)
        await pc.setLocalDescription(await pc.createAnswer())
        if link.pc is pc and pc.localDescription is not None:
            await self.signaling.send("answer", to=sender, sdp=pc.localDescription.sdp)

    async def _on_answer(self, sender: str, sdp: str) -> None:
        link = self.links.get(sender)
        if link is None or link.pc is None or link.pc.signalingState != "have-local-offer":
            return  # an answer to an offer we have since abandoned
        pc = link.pc
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        await self._flush(link, pc)

    async def _on_candidate(self, sender: str, value: object) -> None:
        link = self._known(sender)
        candidate: RTCIceCandidate | None = None
        if isinstance(value, dict) and value.get("candidate"):
            pc = link.pc
            fragment = value.get("usernameFragment")
            if (
                fragment
                and pc is not None
                and pc.remoteDescription is not None
                and fragment != _ufrag(pc.remoteDescription.sdp)
            ):
                return  # for an earlier ICE generation
            text = str(value["candidate"]).removeprefix("candidate:")
            candidate = candidate_from_sdp(text)
            candidate.sdpMid = value.get("sdpMid")
            candidate.sdpMLineIndex = value.get("sdpMLineIndex")
            if candidate.sdpMid is None and candidate.sdpMLineIndex is None:
                candidate.sdpMLineIndex = 0
        if link.pc is None or link.pc.remoteDescription is None:
            link.pending.append(candidate)
            return
        await link.pc.addIceCandidate(candidate)

    async def _flush(self, link: Link, pc: RTCPeerConnection) -> None:
        pending, link.pending = link.pending, []
        for candidate in pending:
            await pc.addIceCandidate(candidate)


def _ufrag(sdp: str) -> str | None:
    match = _UFRAG.search(sdp)
    return match.group(1) if match else None


async def call(
    first: AiortcPeer, second: AiortcPeer, *, timeout_s: float = 10.0
) -> tuple[Link, Link]:
    """Join ``first`` then ``second`` and wait until both see a connected peer connection."""
    await first.join()
    await second.join()
    links = await asyncio.gather(
        first.wait_connected(timeout_s=timeout_s), second.wait_connected(timeout_s=timeout_s)
    )
    return links[0], links[1]
