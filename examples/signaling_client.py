"""A minimal Telemed call client in Python (aiortc), written from docs/signaling-protocol.md.

    python examples/signaling_client.py TICKET.json [--say "Dumela"] [--seconds 60]

``TICKET.json`` is the answer of ``POST /api/v1/consults/{id}/call`` (the WebSocket URL, the
room, a single-use token and the ICE servers). The client joins the room, sends silence as its
audio, calls every other participant (one ``RTCPeerConnection`` each), opens the call page's
data channel and sends ``--say`` as a chat message once it is open. It prints one JSON line per
event (``joined``, ``peer``, ``connected``, ``media`` (the first frame of each
incoming track), ``message``, ``left``) and leaves after
``--seconds`` or on Ctrl-C.

What it shows, in the order a client needs it:

1. ``hello`` with the token; ``welcome`` lists the peers already known.
2. **Who offers**: the side that is *impolite* toward a peer (``polite: false``) sends the first
   offer, as soon as it learns of the peer, from ``welcome.peers`` *or* from ``peer-joined``
   (on a multi-instance deployment a peer may arrive only as ``peer-joined``). The polite side
   waits for that offer and answers it.
3. aiortc puts every ICE candidate in the SDP, so it sends no ``candidate`` messages; it adds
   the trickled ones browsers send (an empty ``candidate`` is end-of-candidates).
4. The data channel is the page's: label ``chat``, negotiated out of band with id 0, created
   by both sides on every peer connection; JSON messages such as
   ``{"type": "chat", "name": ..., "text": ...}``.
5. A protocol ``ping`` every ``heartbeat_s``; ``leave`` at the end.

Left out to stay short: resume after a dropped socket (§9 of the protocol page), ICE restart,
and glare on renegotiation (this client never renegotiates).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack
from aiortc.sdp import candidate_from_sdp
from websockets.asyncio.client import ClientConnection, connect


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class CallClient:
    def __init__(self, ticket: dict[str, Any], say: str | None) -> None:
        self.ticket = ticket
        self.say = say
        self.ws: ClientConnection | None = None
        self.pcs: dict[str, RTCPeerConnection] = {}
        self.tasks: set[asyncio.Future[None]] = set()

    async def send(self, **message: Any) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps(message))

    def configuration(self) -> RTCConfiguration:
        servers = [
            RTCIceServer(s["urls"], s.get("username"), s.get("credential"))
            for s in self.ticket.get("ice_servers", [])
        ]
        return RTCConfiguration(iceServers=servers)

    async def peer(self, info: dict[str, Any]) -> None:
        """A new peer connection to ``info``'s participant; offer if impolite toward it."""
        other = info["participant"]
        old = self.pcs.pop(other, None)
        if old is not None:
            await old.close()
        pc = self.pcs[other] = RTCPeerConnection(self.configuration())
        pc.addTrack(AudioStreamTrack())  # silence
        pc.addTransceiver("video", direction="recvonly")
        channel = pc.createDataChannel("chat", negotiated=True, id=0)

        @channel.on("open")
        def opened() -> None:
            if self.say:
                text = {"type": "chat", "name": self.ticket["name"], "text": self.say}
                channel.send(json.dumps(text))

        @channel.on("message")
        def message(data: str | bytes) -> None:
            emit("message", participant=other, data=json.loads(data))

        @pc.on("track")
        def track(received: MediaStreamTrack) -> None:
            self.tasks.add(asyncio.ensure_future(self.consume(other, received)))

        @pc.on("connectionstatechange")
        def state() -> None:
            if pc.connectionState == "connected":
                emit("connected", participant=other)

        emit("peer", participant=other, polite=info["polite"])
        if not info["polite"]:
            await pc.setLocalDescription(await pc.createOffer())
            await self.send(type="offer", to=other, sdp=pc.localDescription.sdp)

    async def consume(self, other: str, track: MediaStreamTrack) -> None:
        """Read (and drop) what ``other`` sends on ``track``, saying when the first frame came:
        unread frames would pile up in memory."""
        with contextlib.suppress(MediaStreamError):
            await track.recv()
            emit("media", participant=other, kind=track.kind)
            while True:
                await track.recv()

    async def on_frame(self, f: dict[str, Any]) -> None:
        kind = f["type"]
        if kind == "peer-joined":
            if f["rejoined"] or f["peer"]["participant"] not in self.pcs:
                await self.peer(f["peer"])
        elif kind == "peer-left":
            pc = self.pcs.pop(f["participant"], None)
            if pc is not None:
                await pc.close()
            emit("left", participant=f["participant"])
        elif kind == "offer":
            pc = self.pcs.get(f["from"])
            if pc is None:  # it offered, so it is impolite toward us
                await self.peer({"participant": f["from"], "polite": True})
                pc = self.pcs[f["from"]]
            await pc.setRemoteDescription(RTCSessionDescription(sdp=f["sdp"], type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            await self.send(type="answer", to=f["from"], sdp=pc.localDescription.sdp)
        elif kind == "answer" and f["from"] in self.pcs:
            answer = RTCSessionDescription(sdp=f["sdp"], type="answer")
            await self.pcs[f["from"]].setRemoteDescription(answer)
        elif kind == "candidate" and f["from"] in self.pcs:
            trickled = f.get("candidate") or {}
            if trickled.get("candidate"):  # "" or null: end-of-candidates
                candidate = candidate_from_sdp(trickled["candidate"].split(":", 1)[1])
                candidate.sdpMid = trickled.get("sdpMid")
                candidate.sdpMLineIndex = trickled.get("sdpMLineIndex")
                await self.pcs[f["from"]].addIceCandidate(candidate)
        elif kind == "error" and f.get("fatal"):
            raise RuntimeError(f"refused: {f['code']}: {f['message']}")

    async def heartbeat(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            await self.send(type="ping")

    async def run(self, stop: asyncio.Event) -> None:
        async with connect(self.ticket["ws_url"], compression=None) as ws:
            self.ws = ws
            await self.send(type="hello", room=self.ticket["room"], token=self.ticket["token"])
            welcome = json.loads(await ws.recv())
            if welcome["type"] != "welcome":
                raise RuntimeError(f"refused: {welcome}")
            emit("joined", participant=welcome["participant"]["participant"])
            beat = asyncio.create_task(self.heartbeat(welcome["limits"]["heartbeat_s"]))
            for info in welcome["peers"]:
                await self.peer(info)
            stopping = asyncio.create_task(stop.wait())
            try:
                while not stop.is_set():
                    receiving = asyncio.create_task(ws.recv())
                    await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    if not receiving.done():
                        receiving.cancel()
                        break
                    await self.on_frame(json.loads(receiving.result()))
                await self.send(type="leave")
            finally:
                beat.cancel()
                stopping.cancel()
                for pc in self.pcs.values():
                    await pc.close()
                for task in self.tasks:
                    task.cancel()


async def main(ticket: dict[str, Any], say: str | None, seconds: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.call_later(seconds, stop.set)
    await CallClient(ticket, say).run(stop)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("ticket", help="the JSON answer of POST /api/v1/consults/{id}/call")
    parser.add_argument("--say", help="a chat message to send once the data channel is open")
    parser.add_argument("--seconds", type=float, default=60.0, help="stay this long")
    args = parser.parse_args()
    with open(args.ticket, encoding="utf-8") as file:
        ticket = json.load(file)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(ticket, args.say, args.seconds))
