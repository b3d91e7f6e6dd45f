"""WebRTC signalling for Telemed: protocol, tokens, rooms, brokers and the server.

A library: it never imports ``telemed``. The application mints join tokens with
:func:`signaling.tokens.mint_token` and learns what happens in calls through the event callback
given to :class:`signaling.server.SignalingHub`. See ``docs/signaling-protocol.md``.
"""
