"""The local Maildir that receives e-mail when no SMTP server is configured (the embedded
default), and what ``telemed mailbox list/show`` read from it."""

from __future__ import annotations

import mailbox
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path


def path_in(data_dir: Path) -> Path:
    return data_dir / "mailbox"


def deliver(path: Path, msg: EmailMessage) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    box = mailbox.Maildir(path, create=True)
    box.add(msg)


@dataclass(frozen=True)
class Stored:
    number: int  # 1 for the oldest
    message: EmailMessage

    @property
    def date(self) -> str:
        return str(self.message.get("Date", ""))

    @property
    def to(self) -> str:
        return str(self.message.get("To", ""))

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))

    def attachment_names(self) -> list[str]:
        return [
            f"{part.get_filename()} ({part.get_content_type()})"
            for part in self.message.iter_attachments()
            if isinstance(part, EmailMessage)
        ]

    def text(self) -> str:
        body = self.message.get_body(preferencelist=("plain",))
        return body.get_content() if isinstance(body, EmailMessage) else ""


def messages(path: Path) -> list[Stored]:
    """Every message in the Maildir, oldest first (by delivery time), numbered from 1."""
    if not path.is_dir():
        return []
    box = mailbox.Maildir(path, factory=None, create=False)
    found: list[tuple[float, str, EmailMessage]] = []
    for key in box.iterkeys():
        stored = box.get_message(key)
        parsed = message_from_bytes(stored.as_bytes(), policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        found.append((stored.get_date(), key, parsed))
    found.sort(key=lambda item: (item[0], item[1]))
    return [Stored(number=n, message=m) for n, (_, _, m) in enumerate(found, start=1)]
