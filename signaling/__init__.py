"""WebRTC signalling for Telemed: protocol, tokens, rooms, brokers and the server.

A library: it never imports ``telemed``; the application composes it. The wire protocol is
``docs/signaling-protocol.md``. Entry points:

- ``signaling.tokens.mint_token(secret, room=..., participant=..., name=..., role=...,
  capacity=capacity_for(roles), ttl_s=...)``: a join token for one participant of one room.
- ``signaling.server.SignalingHub(secret, broker=..., jti_store=..., on_event=...)``: the
  rooms of one instance; ``on_event`` receives :class:`signaling.events.SessionEvent`.
- ``signaling.asgi.serve_starlette(hub, websocket)``: serve one Starlette/FastAPI WebSocket.
- ``signaling.server.serve(hub, host, port)`` or ``python -m signaling``: standalone.
- ``signaling.broker.InMemoryBroker`` / ``RedisBroker`` and ``signaling.tokens.MemoryJtiStore``
  / ``RedisJtiStore``: one process, or several instances sharing Redis.
- ``signaling.turn.ice_servers(TurnConfig(secret=..., host=...), participant)``: the
  ``iceServers`` for a client, with time-limited TURN credentials (coturn ``use-auth-secret``).
- ``signaling.testing``: reference clients (``SignalingClient``; ``AiortcPeer``, an aiortc
  WebRTC peer) for tests, benchmarks and the pre-call network test; needs ``aiortc``.

Submodules are not imported here so that minting a token does not load the server.
"""
