"""Sending one outbox message: e-mail over SMTP (or into a local Maildir), SMS through an
HTTP gateway (or into a local log file). No database here: the service records outcomes.

Every failure is raised as ``DeliveryFailed``, saying whether trying again could help
(connection refused, timeouts, SMTP 4xx, HTTP 5xx) or not (SMTP 5xx, HTTP 4xx).
"""

from __future__ import annotations

import json
import smtplib
import ssl
from collections.abc import Sequence
from datetime import datetime
from email.headerregistry import ContentTypeHeader
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Protocol

import httpx

from telemed.notifications import maildir
from telemed.settings import Settings

MAX_ERROR = 500  # characters of an error kept on the outbox row
RETRYABLE_HTTP = frozenset({408, 425, 429})


class DeliveryFailed(Exception):
    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message[:MAX_ERROR])
        self.message = message[:MAX_ERROR]
        self.permanent = permanent


class Attachment(Protocol):
    @property
    def filename(self) -> str: ...
    @property
    def content_type(self) -> str: ...
    @property
    def data(self) -> bytes: ...


def absolute_url(settings: Settings, link: str) -> str:
    if link.startswith(("http://", "https://")):
        return link
    return settings.public_base_url.rstrip("/") + "/" + link.lstrip("/")


def email_text(settings: Settings, body: str, link: str | None) -> str:
    text = body.rstrip()
    if link:
        text += f"\n\nOpen: {absolute_url(settings, link)}"
    return text + "\n\n-- \nTelemed. You can also read this notice in the app (Notifications).\n"


def build_email(
    settings: Settings,
    *,
    message_id: int,
    recipient: str,
    subject: str,
    body: str,
    link: str | None,
    attachments: Sequence[Attachment],
    now: datetime,
) -> EmailMessage:
    """A MIME message: a plain text part, then each attachment with its own content type
    and parameters (e.g. ``text/calendar; method=REQUEST``)."""
    msg = EmailMessage(policy=default_policy)
    msg["From"] = settings.mail_from
    msg["To"] = recipient
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now)
    domain = parseaddr(settings.mail_from)[1].rpartition("@")[2] or "localhost"
    msg["Message-ID"] = make_msgid(idstring=f"outbox{message_id}", domain=domain)
    msg.set_content(email_text(settings, body, link))
    for item in attachments:
        # Bytes as they are (base64): an .ics keeps its CRLF line ends and charset.
        header = default_policy.header_factory("Content-Type", item.content_type)
        assert isinstance(header, ContentTypeHeader)
        msg.add_attachment(
            item.data,
            maintype=header.maintype,
            subtype=header.subtype,
            filename=item.filename,
            params=dict(header.params),
        )
    return msg


def send_email(settings: Settings, msg: EmailMessage) -> None:
    if not settings.smtp_host:
        _to_maildir(settings, msg)
        return
    try:
        with smtplib.SMTP(
            settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds
        ) as smtp:
            if settings.smtp_starttls:
                # Certificate and host name checked: the password and the mail follow.
                smtp.starttls(context=ssl.create_default_context(cafile=settings.smtp_ca_file))
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password or "")
            smtp.send_message(msg)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        detail = "; ".join(
            f"{rcpt}: {code} {_text(reply)}" for rcpt, (code, reply) in exc.recipients.items()
        )
        raise DeliveryFailed(
            f"recipient refused: {detail}", permanent=all(c >= 500 for c in codes)
        ) from exc
    except smtplib.SMTPResponseException as exc:
        raise DeliveryFailed(
            f"SMTP {exc.smtp_code} {_text(exc.smtp_error)}", permanent=exc.smtp_code >= 500
        ) from exc
    except (OSError, smtplib.SMTPException) as exc:  # refused, timed out, disconnected
        raise DeliveryFailed(
            f"SMTP {settings.smtp_host}:{settings.smtp_port}: {_describe(exc)}", permanent=False
        ) from exc


def _to_maildir(settings: Settings, msg: EmailMessage) -> None:
    try:
        maildir.deliver(maildir.path_in(settings.data_dir), msg)
    except OSError as exc:
        raise DeliveryFailed(f"local mailbox: {_describe(exc)}", permanent=False) from exc


def send_sms(settings: Settings, *, to: str, text: str, now: datetime) -> None:
    if not settings.sms_gateway_url:
        _to_sms_log(settings.data_dir / "sms-outbox.log", to, text, now)
        return
    headers = {}
    if settings.sms_gateway_token:
        headers["Authorization"] = f"Bearer {settings.sms_gateway_token}"
    try:
        response = httpx.post(
            settings.sms_gateway_url,
            json={"to": to, "message": text},
            headers=headers,
            timeout=settings.sms_timeout_seconds,
        )
    except httpx.HTTPError as exc:  # connection refused, timeouts, protocol errors
        raise DeliveryFailed(f"SMS gateway: {_describe(exc)}", permanent=False) from exc
    if response.is_success:
        return
    status = response.status_code
    raise DeliveryFailed(
        f"SMS gateway answered HTTP {status}: {response.text[:200]}",
        permanent=not (status >= 500 or status in RETRYABLE_HTTP),
    )


def _to_sms_log(path: Path, to: str, text: str, now: datetime) -> None:
    line = json.dumps({"at": now.isoformat(), "to": to, "message": text}, ensure_ascii=False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as log:
            log.write(line + "\n")
    except OSError as exc:
        raise DeliveryFailed(f"SMS log {path}: {_describe(exc)}", permanent=False) from exc


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
