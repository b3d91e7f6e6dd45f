"""Real servers for notification tests: an SMTP server (aiosmtpd) and an HTTP SMS gateway,
both on 127.0.0.1 on a free port, collecting what they receive.

Fixtures (registered in tests/conftest.py):

- ``smtp_server``: an ``SmtpServer``; ``.messages`` are ``email.message.EmailMessage``
  objects, ``.sessions`` say for each whether it came over TLS and who had logged in.
  ``.stop()`` / ``.start()`` take it down and bring it back on the same port; ``.refuse``
  is a set of addresses answered with ``550`` at RCPT (a permanent failure).
- ``sms_gateway``: an ``SmsGateway``; ``.requests`` are ``ReceivedRequest`` (path, headers,
  JSON body); set ``.status`` (e.g. 503) to make it answer with an error.

Point the application at them with ``delivery_settings``::

    settings = delivery_settings(settings, smtp=smtp_server, sms=sms_gateway)
    deliver_due(units, settings, now)
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from telemed.settings import Settings
from tests.process_helpers import join_all

SMS_TOKEN = "test-gateway-token"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class SessionSeen:
    """How a received message came: over TLS or not, and the login used (None: none)."""

    tls: bool
    login: str | None


class _Collector:
    """The aiosmtpd handler: keeps every message, refuses the addresses in ``refuse``."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.sessions: list[SessionSeen] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse: set[str] = set()
        self.lock = threading.Lock()

    async def handle_RCPT(  # noqa: N802 - the aiosmtpd hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.lower() in self.refuse:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - the aiosmtpd hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or b""
        parsed = message_from_bytes(raw, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        login = getattr(session.auth_data, "login", None)
        seen = SessionSeen(session.ssl is not None, login.decode() if login else None)
        with self.lock:
            self.messages.append(parsed)
            self.sessions.append(seen)
            self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 Message accepted"


class SmtpServer:
    """``options`` go to aiosmtpd's ``SMTP`` (e.g. ``tls_context``, ``require_starttls``,
    ``authenticator``)."""

    def __init__(self, **options: Any) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.handler = _Collector()
        self.options = options
        self._controller: Controller | None = None

    @property
    def messages(self) -> list[EmailMessage]:
        with self.handler.lock:
            return list(self.handler.messages)

    @property
    def sessions(self) -> list[SessionSeen]:
        with self.handler.lock:
            return list(self.handler.sessions)

    @property
    def refuse(self) -> set[str]:
        return self.handler.refuse

    def start(self) -> None:
        if self._controller is None:
            # A stopped controller's loop is closed: each start gets a new one.
            self._controller = Controller(
                self.handler, hostname=self.host, port=self.port, **self.options
            )
            self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    json: Any


@dataclass
class SmsGateway:
    server: ThreadingHTTPServer
    requests: list[ReceivedRequest] = field(default_factory=list)
    status: int = 200

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/send"


def _gateway_handler(gateway_ref: list[SmsGateway]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = 10  # a client that stops sending mid-body cannot hold a reading thread

        def do_POST(self) -> None:
            gateway = gateway_ref[0]
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
            gateway.requests.append(
                ReceivedRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            reply = json.dumps({"status": "queued" if gateway.status < 300 else "error"})
            self.send_response(gateway.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply.encode())

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet test output

    return Handler


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sms_gateway() -> Iterator[SmsGateway]:
    ref: list[SmsGateway] = []
    http = ThreadingHTTPServer(("127.0.0.1", 0), _gateway_handler(ref))
    gateway = SmsGateway(http)
    ref.append(gateway)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield gateway
    http.shutdown()
    http.server_close()
    join_all([thread], 10, "the SMS gateway's server")


def delivery_settings(
    settings: Settings,
    *,
    smtp: SmtpServer | None = None,
    sms: SmsGateway | None = None,
    **overrides: Any,
) -> Settings:
    """``settings`` pointed at the test servers (plain SMTP, no STARTTLS: aiosmtpd here has
    no certificate); without a server that channel stays local (Maildir, SMS log)."""
    update: dict[str, Any] = {"public_base_url": "https://telemed.example.org"}
    if smtp is not None:
        update |= {"smtp_host": smtp.host, "smtp_port": smtp.port, "smtp_starttls": False}
        update |= {"smtp_timeout_seconds": 5.0, "mail_from": "Telemed <noreply@example.org>"}
    if sms is not None:
        update |= {"sms_gateway_url": sms.url, "sms_gateway_token": SMS_TOKEN}
        update |= {"sms_timeout_seconds": 5.0}
    update |= overrides
    return settings.model_copy(update=update)
