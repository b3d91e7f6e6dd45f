"""The request id: one string that ties a request's log line to the audit rows it wrote.

A proxy in front (nginx, a load balancer) may already have given the request an id in
``X-Request-ID``; we keep it when it is sane, so that its logs and ours name the request
alike. Sane means short and of a plain charset: the id is copied into every log line and
into ``audit_log.request_id``, so a client must not be able to smuggle a newline, a quote or
a kilobyte into either. Anything else is replaced by a fresh random id. The response echoes
the id (``X-Request-ID``) so that a user reporting a problem can quote it.

The id of the request being served lives in a context variable: the ASGI middleware
(``telemed.observability.middleware``) sets it, Starlette copies it into the worker thread
of a sync endpoint, and the audit trail and the log formatter read it from there. Outside a
request (jobs, the command line) it is ``None``.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

HEADER = "X-Request-ID"
MAX_LENGTH = 64  # audit_log.request_id is a VARCHAR(64)
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,63}")

current: ContextVar[str | None] = ContextVar("request_id", default=None)


def new() -> str:
    """A fresh id: 32 hex digits (a random UUID), unguessable and unique enough."""
    return uuid.uuid4().hex


def is_sane(value: str) -> bool:
    """Letters, digits and ``. _ : @ + = -``, starting with a letter or digit, at most 64."""
    return len(value) <= MAX_LENGTH and _SANE.fullmatch(value) is not None


def accept(incoming: str | None) -> str:
    """The incoming id if it is sane, else a new one."""
    if incoming is not None:
        incoming = incoming.strip()
        if is_sane(incoming):
            return incoming
    return new()
