"""Sessions shared between server instances: what any instance needs to let a client resume.

Without this a session lived in the memory of the instance that opened it, and a client
whose instance died (or whose new socket a load balancer sent elsewhere) could only do a full
reconnect: a new ticket, ``hello``, and new peer connections on both sides. With it, every
instance that shares rooms through Redis can verify a ``resume`` and **adopt** the session.

What is kept, one Redis hash per session (``<prefix>session:<id>``), written once per
``welcome`` and once per ``resume``, never per message:

- ``digest``: SHA-256 of the current resume token (the token itself never leaves the
  client and the instance that issued it);
- ``room``, ``participant``, ``name``, ``role``: who the session is;
- ``node``: the instance that holds it now, and ``epoch``: how many times it was resumed.
  Instances tell each other about a member with its epoch, so the instance that held the
  session before learns that it moved (a higher epoch for the same session) and lets go;
- its time to live: the grace period plus the instance's liveness period plus one refresh
  interval. The holding instance refreshes it (with its liveness key, one pipeline per
  refresh for all its sessions) and deletes it when the participant leaves or its grace
  period ends there, so a session outlives its instance by about the grace period only.

Verifying a resume and taking the session over is one Lua script (:meth:`adopt`): the digest
must match, and it is replaced by the new token's in the same step, so of two instances that
receive the same token (a client that retried on two sockets) exactly one adopts, and an old
token is void everywhere the moment a resume succeeds.

Each instance also keeps a **liveness key** (``<prefix>node:<id>``) with a short time to live,
set by its sweeper; the others read the keys of the instances that hold members of their
rooms, so the peers of an instance that died see its members ``reconnecting`` within
``node_ttl_s`` (and gone after the grace period) although that instance can no longer say so.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from redis.asyncio import Redis

from signaling.broker import text_of

_ADOPT = """
local digest = redis.call('HGET', KEYS[1], 'digest')
if not digest then return {0} end
if digest ~= ARGV[1] then return {-1} end
redis.call('HSET', KEYS[1], 'digest', ARGV[2], 'node', ARGV[3])
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {epoch, redis.call('HGET', KEYS[1], 'room'), redis.call('HGET', KEYS[1], 'participant')}
"""

# Only the holder of the current epoch may end the session: an instance that lost it to an
# adoption it has not heard of yet must not delete the adopter's record.
_FORGET = """
if redis.call('HGET', KEYS[1], 'epoch') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def digest(resume_token: str) -> str:
    """What is stored in place of a resume token."""
    return hashlib.sha256(resume_token.encode()).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRecord:
    session: str
    room: str
    participant: str
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class Adopted:
    """A successful :meth:`SessionStore.adopt`: the session is now this instance's."""

    epoch: int
    room: str
    participant: str


class SessionStore:
    """The shared session records and liveness keys, in Redis under ``prefix``."""

    def __init__(self, redis: Redis, *, prefix: str = "signal:") -> None:
        self._redis = redis
        self._prefix = prefix
        self._adopt = redis.register_script(_ADOPT)
        self._forget = redis.register_script(_FORGET)

    def _key(self, session: str) -> str:
        return f"{self._prefix}session:{session}"

    def _node(self, node: str) -> str:
        return f"{self._prefix}node:{node}"

    async def open(
        self, record: SessionRecord, resume_token: str, *, node: str, ttl_s: float
    ) -> None:
        """A new session (``welcome``): epoch 0, held by ``node``."""
        pipe = self._redis.pipeline(transaction=True)
        key = self._key(record.session)
        pipe.hset(
            key,
            mapping={
                "digest": digest(resume_token),
                "room": record.room,
                "participant": record.participant,
                "name": record.name,
                "role": record.role,
                "node": node,
                "epoch": 0,
            },
        )
        pipe.pexpire(key, int(ttl_s * 1000))
        await pipe.execute()

    async def adopt(
        self, session: str, resume_token: str, new_resume_token: str, *, node: str, ttl_s: float
    ) -> Adopted | None:
        """Take ``session`` over for ``node`` if ``resume_token`` is its current token; None
        when the session is unknown, expired, or the token is wrong (or was used already)."""
        result = await self._adopt(
            keys=[self._key(session)],
            args=[digest(resume_token), digest(new_resume_token), node, int(ttl_s * 1000)],
        )
        if not result or int(result[0]) < 1:
            return None
        epoch, room, participant = result
        return Adopted(int(epoch), text_of(room), text_of(participant))

    async def forget(self, session: str, epoch: int) -> None:
        """The session ended (left, gone, replaced) while ``epoch`` was current."""
        await self._forget(keys=[self._key(session)], args=[epoch])

    async def beat(
        self, node: str, node_ttl_s: float, sessions: Iterable[str] = (), ttl_s: float = 0.0
    ) -> None:
        """Say ``node`` is alive for ``node_ttl_s``; extend ``sessions`` to ``ttl_s``."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(self._node(node), "1", px=int(node_ttl_s * 1000))
        for session in sessions:
            pipe.pexpire(self._key(session), int(ttl_s * 1000))
        await pipe.execute()

    async def alive(self, nodes: Iterable[str]) -> set[str]:
        """Those of ``nodes`` whose liveness key is set."""
        wanted = list(nodes)
        if not wanted:
            return set()
        found = await self._redis.mget([self._node(n) for n in wanted])
        return {n for n, v in zip(wanted, found, strict=True) if v is not None}

    async def stop(self, node: str) -> None:
        """A clean shutdown: the node is gone now rather than when its key lapses."""
        await self._redis.delete(self._node(node))
