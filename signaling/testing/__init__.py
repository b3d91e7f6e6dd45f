"""Reference clients of the signalling protocol, for tests, benchmarks and tools.

- :mod:`signaling.testing.client`: :class:`~signaling.testing.client.SignalingClient`, the
  protocol over a ``websockets`` connection (hello, acknowledgements, ``seq`` tracking,
  heartbeat, resume with replay, full reconnect).
- :mod:`signaling.testing.peer`: :class:`~signaling.testing.peer.AiortcPeer`, an aiortc
  WebRTC peer driven by that client, with synthetic audio and video.

They implement ``docs/signaling-protocol.md`` from the client's side, using only the wire
format (plain JSON), never the server's internals. Importing :mod:`signaling.testing.peer`
needs ``aiortc``; the client does not.
"""
