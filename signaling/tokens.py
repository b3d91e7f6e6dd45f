"""Short-lived, single-use join tokens, signed with HMAC-SHA256 (stdlib only).

Why not JWT: we need exactly one algorithm and one issuer, and a JWT library brings algorithm
negotiation (``alg: none`` and key confusion) that we would then have to defend against. The
format is ``BASE64URL(payload) "." BASE64URL(HMAC-SHA256(secret, first part))`` where the payload
is compact JSON; it is described for implementers in ``docs/signaling-protocol.md`` section 3.

Signature and expiry are pure checks (:meth:`TokenVerifier.verify`, with an injectable clock);
single use needs shared state, so it is the job of a :class:`JtiStore`: in memory for one
process, in Redis when several server instances must refuse a token used on another.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from signaling.protocol import MAX_ID_LENGTH, MAX_TEXT_LENGTH, MAX_TOKEN_LENGTH, ErrorCode

if TYPE_CHECKING:
    from redis.asyncio import Redis

TOKEN_VERSION = 1
ROLES = frozenset({"clinician", "specialist", "interpreter", "observer"})
#: Roles whose presence makes a three-party room.
EXTRA_ROLES = frozenset({"interpreter", "observer"})
DEFAULT_CAPACITY = 2
MAX_CAPACITY = 3
MIN_SECRET_BYTES = 16
DEFAULT_TTL_S = 120


class TokenError(Exception):
    """A token that must not admit anyone; ``code`` is the protocol error code."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True, kw_only=True)
class Claims:
    """What a valid token says: who may join which room, until when."""

    room: str
    participant: str
    name: str
    role: str
    capacity: int
    expires_at: int
    jti: str


def capacity_for(roles: Iterable[str]) -> int:
    """Room capacity for a call with these roles: 3 with an interpreter or observer, else 2."""
    return MAX_CAPACITY if EXTRA_ROLES.intersection(roles) else DEFAULT_CAPACITY


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(secret: bytes | str) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(f"the signing secret must be at least {MIN_SECRET_BYTES} bytes")
    return key


def _sign(key: bytes, signed_part: str) -> str:
    return _b64encode(hmac.new(key, signed_part.encode("ascii"), hashlib.sha256).digest())


def _check_claims(room: str, participant: str, name: str, role: str, capacity: int) -> None:
    if not 1 <= len(room) <= MAX_ID_LENGTH or not 1 <= len(participant) <= MAX_ID_LENGTH:
        raise ValueError("room and participant must be 1 to 128 characters")
    if len(name) > MAX_TEXT_LENGTH:
        raise ValueError("name must be at most 200 characters")
    if role not in ROLES:
        raise ValueError(f"role must be one of {sorted(ROLES)}")
    if not DEFAULT_CAPACITY <= capacity <= MAX_CAPACITY:
        raise ValueError(f"capacity must be {DEFAULT_CAPACITY} to {MAX_CAPACITY}")


def mint_token(
    secret: bytes | str,
    *,
    room: str,
    participant: str,
    name: str,
    role: str,
    capacity: int = DEFAULT_CAPACITY,
    ttl_s: float = DEFAULT_TTL_S,
    now: float | None = None,
    jti: str | None = None,
) -> str:
    """Mint a join token for one participant of one room, valid ``ttl_s`` seconds from ``now``.

    The application calls this once per (re)join; the token is refused after first use.
    """
    _check_claims(room, participant, name, role, capacity)
    issued = time.time() if now is None else now
    payload = {
        "v": TOKEN_VERSION,
        "room": room,
        "sub": participant,
        "name": name,
        "role": role,
        "cap": capacity,
        "exp": math.ceil(issued + ttl_s),
        "jti": jti or secrets.token_urlsafe(12),
    }
    body = _b64encode(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    return f"{body}.{_sign(_key(secret), body)}"


class TokenVerifier:
    """Checks signature, form and expiry. Single use is checked separately (:class:`JtiStore`)."""

    def __init__(
        self,
        secret: bytes | str,
        *,
        clock: Callable[[], float] = time.time,
        leeway_s: float = 0.0,
    ) -> None:
        self._key = _key(secret)
        self._clock = clock
        self._leeway = leeway_s

    def verify(self, token: str) -> Claims:
        """Return the claims of a genuine, unexpired token or raise :class:`TokenError`."""
        if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
            raise TokenError(ErrorCode.BAD_TOKEN, "malformed token")
        body, signature = token.split(".")
        try:
            body.encode("ascii")
        except UnicodeEncodeError as exc:
            raise TokenError(ErrorCode.BAD_TOKEN, "malformed token") from exc
        # Compare signatures before parsing anything an attacker wrote.
        if not hmac.compare_digest(_sign(self._key, body), signature):
            raise TokenError(ErrorCode.BAD_TOKEN, "invalid signature")
        try:
            payload = json.loads(_b64decode(body))
        except (ValueError, binascii.Error) as exc:
            raise TokenError(ErrorCode.BAD_TOKEN, "malformed payload") from exc
        claims = _claims_from(payload)
        if claims.expires_at + self._leeway <= self._clock():
            raise TokenError(ErrorCode.TOKEN_EXPIRED, "token expired")
        return claims


def _claims_from(payload: Any) -> Claims:
    # Signed by us, so malformed claims mean a minting bug or a leaked key; refuse either way.
    bad = TokenError(ErrorCode.BAD_TOKEN, "malformed claims")
    if not isinstance(payload, dict) or payload.get("v") != TOKEN_VERSION:
        raise bad
    strings = {k: payload.get(k) for k in ("room", "sub", "name", "role", "jti")}
    numbers = {k: payload.get(k) for k in ("cap", "exp")}
    if not all(isinstance(v, str) for v in strings.values()):
        raise bad
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in numbers.values()):
        raise bad
    claims = Claims(
        room=payload["room"],
        participant=payload["sub"],
        name=payload["name"],
        role=payload["role"],
        capacity=payload["cap"],
        expires_at=payload["exp"],
        jti=payload["jti"],
    )
    try:
        _check_claims(claims.room, claims.participant, claims.name, claims.role, claims.capacity)
    except ValueError as exc:
        raise bad from exc
    if not claims.jti:
        raise bad
    return claims


class JtiStore(Protocol):
    """Remembers used token ids until they expire, so that each token works once."""

    async def consume(self, jti: str, expires_at: float) -> bool:
        """Mark ``jti`` used; True the first time, False if it was used before."""
        ...


class MemoryJtiStore:
    """Single-process :class:`JtiStore`; forgets ids once their token has expired anyway."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._used: dict[str, float] = {}
        self._clock = clock
        self._next_purge = 0.0

    async def consume(self, jti: str, expires_at: float) -> bool:
        now = self._clock()
        if now >= self._next_purge:
            self._used = {j: exp for j, exp in self._used.items() if exp > now}
            self._next_purge = now + 60
        if jti in self._used:
            return False
        self._used[jti] = expires_at
        return True

    def __len__(self) -> int:
        return len(self._used)


class RedisJtiStore:
    """:class:`JtiStore` shared by every server instance: ``SET key 1 NX EX ttl``.

    ``NX`` makes first-use atomic across instances; the expiry keeps Redis from growing with
    every token ever minted.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "signal:jti:",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._clock = clock

    async def consume(self, jti: str, expires_at: float) -> bool:
        ttl = max(1, math.ceil(expires_at - self._clock()))
        created = await self._redis.set(self._prefix + jti, b"1", nx=True, ex=ttl)
        return bool(created)


async def verify_and_consume(
    verifier: TokenVerifier, store: JtiStore, token: str, *, room: str
) -> Claims:
    """Verify ``token`` for ``room`` and use it up, in the order the protocol page documents.

    Raises :class:`TokenError`: ``bad_token``, ``token_expired``, ``wrong_room``, ``token_reused``.
    The room is checked before the token is used up so that a client that picked the wrong
    room by mistake can still use its token for the right one.
    """
    claims = verifier.verify(token)
    if claims.room != room:
        raise TokenError(ErrorCode.WRONG_ROOM, "token is for another room")
    if not await store.consume(claims.jti, claims.expires_at):
        raise TokenError(ErrorCode.TOKEN_REUSED, "token already used")
    return claims


__all__ = [
    "DEFAULT_CAPACITY",
    "MAX_CAPACITY",
    "ROLES",
    "Claims",
    "JtiStore",
    "MemoryJtiStore",
    "RedisJtiStore",
    "TokenError",
    "TokenVerifier",
    "capacity_for",
    "mint_token",
    "verify_and_consume",
]
