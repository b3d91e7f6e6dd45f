"""TURN credentials (the "TURN REST API" scheme) and the ``iceServers`` handed to clients.

coturn runs with ``use-auth-secret`` and a ``static-auth-secret`` it shares with Telemed; it
keeps no user database. For each (re)join Telemed derives a time-limited credential:

- username: ``"<expiry unix time>:<user>"``;
- password: ``base64(HMAC-SHA1(secret, username))``.

coturn recomputes the password from the username and refuses the credential once the expiry
has passed. Nothing needs to be stored or revoked: a leaked credential dies on its own.

The credential is checked on every authenticated TURN request, including the refreshes a
client sends every few minutes to keep its allocation, so it must outlive the longest call, not
just the set-up: hence hours, not minutes (``TurnConfig.ttl_s``). The call page fetches fresh
ones with every new join token anyway.

The ``iceServers`` list (:func:`ice_servers`) offers, in this order of preference: STUN, TURN
over UDP, TURN over TCP, and TURN over TLS on port 443 (``turns:``), which looks like HTTPS to a
strict firewall and is the last resort of a clinic behind one.

Pure functions and stdlib only: the application imports this module without the server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import math
import time
from dataclasses import dataclass, field
from typing import NotRequired, TypedDict

#: A day, the lifetime the TURN REST draft suggests; see ``TurnConfig.ttl_s``.
DEFAULT_TTL_S = 24 * 3600
MIN_TTL_S = 60
#: STUN usernames are at most 513 bytes (RFC 8489 §14.3); the expiry takes 11 of them.
MAX_USER_BYTES = 256
MIN_SECRET_BYTES = 16


class IceServer(TypedDict):
    """One ``RTCIceServer`` dictionary as a browser's ``RTCPeerConnection`` accepts it."""

    urls: list[str]
    username: NotRequired[str]
    credential: NotRequired[str]


@dataclass(frozen=True, slots=True)
class TurnCredentials:
    """A time-limited TURN credential."""

    username: str
    password: str = field(repr=False)
    #: Unix time after which coturn refuses it.
    expires_at: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnConfig:
    """Where the TURN server is and how to sign for it.

    ``secret`` is coturn's ``static-auth-secret``. ``host`` is the public name (or address) of
    the TURN server; ``tls_host`` the name on its certificate, if different. Set ``tls_port`` to
    ``None`` where coturn has no certificate (development), ``udp``/``tcp`` to False to leave out
    a transport. ``stun_urls`` replaces the default ``stun:host:port``; an empty tuple leaves
    STUN out (tests on loopback, where it only adds a timeout).
    """

    secret: str | bytes = field(repr=False)
    host: str
    port: int = 3478
    tls_port: int | None = 443
    tls_host: str | None = None
    udp: bool = True
    tcp: bool = True
    stun_urls: tuple[str, ...] | None = None
    ttl_s: int = DEFAULT_TTL_S

    def __post_init__(self) -> None:
        _key(self.secret)
        if not self.host or any(c in self.host for c in "/?#@ ") or self.host.startswith("["):
            raise ValueError("host must be a bare host name or IP address")
        for port in (self.port, self.tls_port):
            if port is not None and not 0 < port < 65536:
                raise ValueError("ports must be 1 to 65535")
        if self.ttl_s < MIN_TTL_S:
            raise ValueError(f"ttl_s must be at least {MIN_TTL_S} seconds")
        if not (self.udp or self.tcp or self.tls_port is not None):
            raise ValueError("at least one TURN transport is needed")


def _key(secret: str | bytes) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(f"the TURN secret must be at least {MIN_SECRET_BYTES} bytes")
    return key


def turn_password(secret: str | bytes, username: str) -> str:
    """``base64(HMAC-SHA1(secret, username))``: the password coturn expects for ``username``."""
    digest = hmac.new(_key(secret), username.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def turn_credentials(
    secret: str | bytes, user: str, *, ttl_s: int = DEFAULT_TTL_S, now: float | None = None
) -> TurnCredentials:
    """A credential for ``user`` valid ``ttl_s`` seconds from ``now`` (default: the clock).

    ``user`` only labels the allocation in coturn's logs; use an opaque id (the participant id
    of the join token), never a name: the username travels in clear in every TURN request.
    """
    raw = user.encode("utf-8")
    if not raw or len(raw) > MAX_USER_BYTES:
        raise ValueError(f"user must be 1 to {MAX_USER_BYTES} bytes")
    if any(not c.isprintable() for c in user):
        raise ValueError("user must be printable text")
    if ttl_s < MIN_TTL_S:
        raise ValueError(f"ttl_s must be at least {MIN_TTL_S} seconds")
    expires_at = math.ceil((time.time() if now is None else now) + ttl_s)
    username = f"{expires_at}:{user}"
    return TurnCredentials(username, turn_password(secret, username), expires_at)


def credentials_valid(
    secret: str | bytes, username: str, password: str, *, now: float | None = None
) -> bool:
    """What coturn checks: the password matches and the expiry has not passed."""
    expiry, sep, _ = username.partition(":")
    if not sep or not expiry.isdigit():
        return False
    if int(expiry) <= (time.time() if now is None else now):
        return False
    return hmac.compare_digest(turn_password(secret, username), password)


def _hostport(host: str, port: int) -> str:
    try:
        if isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address):
            return f"[{host}]:{port}"
    except ValueError:
        pass  # a name
    return f"{host}:{port}"


def ice_servers(config: TurnConfig, user: str, *, now: float | None = None) -> list[IceServer]:
    """The ``iceServers`` for one client: STUN, then TURN over UDP, TCP and TLS on 443.

    The TURN URLs share one credential, so they form one entry. The order matters to clients
    that use only one TURN URL (aiortc takes the first it supports).
    """
    servers: list[IceServer] = []
    stun = (
        config.stun_urls
        if config.stun_urls is not None
        else (f"stun:{_hostport(config.host, config.port)}",)
    )
    if stun:
        servers.append({"urls": list(stun)})
    urls: list[str] = []
    if config.udp:
        urls.append(f"turn:{_hostport(config.host, config.port)}?transport=udp")
    if config.tcp:
        urls.append(f"turn:{_hostport(config.host, config.port)}?transport=tcp")
    if config.tls_port is not None:
        tls_host = config.tls_host or config.host
        urls.append(f"turns:{_hostport(tls_host, config.tls_port)}?transport=tcp")
    creds = turn_credentials(config.secret, user, ttl_s=config.ttl_s, now=now)
    servers.append({"urls": urls, "username": creds.username, "credential": creds.password})
    return servers


__all__ = [
    "DEFAULT_TTL_S",
    "IceServer",
    "TurnConfig",
    "TurnCredentials",
    "credentials_valid",
    "ice_servers",
    "turn_credentials",
    "turn_password",
]
