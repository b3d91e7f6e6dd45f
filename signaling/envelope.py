"""What server instances publish to each other about a room, and how it is read back.

Two shapes, told apart by their first character:

- **Relay** (the hot path, one per relayed ``offer``/``answer``/``candidate``/``ice-restart``):
  a one-line JSON array header ``[version, node, sender, to, type, seq]`` (``seq``: the number
  the sending instance gave the frame for its own recipients), a newline, then the
  frame as the recipients get it from just after its ``seq`` (``Sequenced.tail``: ``from``
  and the message's own fields, already JSON). The sending instance encodes the frame once,
  for its own recipients and for the others alike; a receiving instance reads the short
  header and glues its own ``seq`` in front of the tail, without parsing, validating or
  re-encoding the frame. Before this (issue 14) a relayed frame was serialised, wrapped as a
  string inside a JSON envelope, then parsed twice (the envelope, then the frame) and
  encoded again on every receiving instance. The newline is safe as a separator: JSON
  encoding escapes every newline inside strings, so neither the header nor the tail holds one.
- **Control** (``sync``, ``presence``, ``gone``: rare): a JSON object
  ``{"v": version, "node": ..., "k": kind, ...}``.

The frame inside a relay is trusted as the sending instance wrote it: instances share the
broker (Redis) inside one trust boundary, and the sender validated the client's message.
With shared sessions (``signaling.sessions``) Redis numbers every publication of a room
(``signaling.broker.SEQUENCE``) and what subscribers receive is ``"<number> <envelope>"``
(:func:`split`): the room-wide order every instance agrees on.

Envelopes of another ``VERSION`` (an instance of a different release during a rolling
upgrade) or of our own node are ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from signaling.protocol import Sequenced

VERSION = 3

_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class RelayEnvelope:
    """A relayed message from another instance, ready to :meth:`signaling.rooms.Room.forward`."""

    node: str
    sender: str
    to: str | None
    encoded: Sequenced
    #: The sending instance's number of the frame (what its own recipients got).
    seq: int


@dataclass(frozen=True, slots=True)
class ControlEnvelope:
    node: str
    kind: str
    body: dict[str, Any]


def relay(
    node: str, sender: str, to: str | None, kind: str, encoded: Sequenced, seq: int = 0
) -> str:
    """The envelope of a message relayed by ``sender`` (``kind`` is the message's TYPE)."""
    return _COMPACT.encode([VERSION, node, sender, to, kind, seq]) + "\n" + encoded.tail


def split(data: str) -> tuple[int | None, str]:
    """``(room-wide number, envelope)`` of a publication; the number is None when the broker
    does not number publications."""
    if data[:1].isdigit():
        number, _, rest = data.partition(" ")
        return int(number), rest
    return None, data


def control(node: str, kind: str, body: dict[str, Any]) -> str:
    return _COMPACT.encode({"v": VERSION, "node": node, "k": kind, **body})


def read(data: str) -> RelayEnvelope | ControlEnvelope | None:
    """The envelope in ``data``; None for another version. ``ValueError`` if malformed."""
    if data.startswith("["):
        header, sep, tail = data.partition("\n")
        fields = json.loads(header)
        if not sep or not isinstance(fields, list) or not fields:
            raise ValueError("malformed relay envelope")
        if fields[0] != VERSION:
            return None
        if len(fields) != 6:
            raise ValueError("malformed relay envelope")
        _, node, sender, to, kind, seq = fields
        if (
            not isinstance(sender, str)
            or not (to is None or isinstance(to, str))
            or not isinstance(seq, int)
        ):
            raise ValueError("malformed relay envelope")
        encoded = Sequenced.relayed_from_tail(str(kind), tail)
        return RelayEnvelope(str(node), sender, to, encoded, seq)
    payload = json.loads(data)
    if not isinstance(payload, dict):
        raise ValueError("malformed control envelope")
    if payload.get("v") != VERSION:
        return None
    return ControlEnvelope(str(payload.get("node")), str(payload.get("k")), payload)
