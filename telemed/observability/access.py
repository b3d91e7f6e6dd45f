"""Who may read the metrics: the loopback address, or whoever shows the bearer token.

Shared by the application's ``/metrics`` and the standalone signalling server's. With no
token configured (``TELEMED_METRICS_TOKEN``) nobody but the loopback address may scrape.
The token is compared in constant time, so its value cannot be guessed byte by byte from
response times.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass, field


def is_loopback(host: str | None) -> bool:
    """127.0.0.0/8, ::1, or ::ffff:127.x (IPv4 loopback seen through an IPv6 socket)."""
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)


NO_TOKEN = Refusal(
    403,
    "metrics are served to the loopback address only "
    "(set TELEMED_METRICS_TOKEN to allow bearer-token scrapes from elsewhere)",
)
TOKEN_REQUIRED = Refusal(401, "a bearer token is required", {"WWW-Authenticate": "Bearer"})
WRONG_TOKEN = Refusal(403, "wrong metrics token")


def refusal(host: str | None, authorization: str | None, token: str | None) -> Refusal | None:
    """None if a request from ``host`` with this ``Authorization`` header may scrape."""
    if is_loopback(host):
        return None
    if not token:
        return NO_TOKEN
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return TOKEN_REQUIRED
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        return WRONG_TOKEN
    return None
