"""Notifying users: an in-app notice plus outbox rows (e-mail, SMS) written in the caller's
transaction, and the job that drains the outbox.

``notify`` never commits: the notice and its messages exist exactly when the business
change that caused them commits. ``deliver_due`` sends at most once: a message is marked
``sending`` in a unit of work of its own, committed before the server is contacted (the
one intermediate commit of the outbox, on purpose), and marked ``sent`` in another after;
one found still ``sending`` later (the process died mid-send) is failed for a person to
look at, never sent again by itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session

from telemed.accounts.models import User
from telemed.audit.models import AuditAction
from telemed.audit.service import record
from telemed.errors import NotFound
from telemed.i18n import N_, use_language
from telemed.notifications import auth, delivery, repository
from telemed.notifications.models import (
    Channel,
    DeliveryStatus,
    Notification,
    OutboxAttachment,
    OutboxMessage,
)
from telemed.settings import Settings
from telemed.uow import Units

log = logging.getLogger(__name__)

INTERRUPTED = "delivery interrupted; state unknown — retry by hand if it did not arrive"
SUBJECT_MAX = 200
SMS_MAX = 480  # three concatenated SMS segments
LINK_MAX = 500


@dataclass(frozen=True)
class FileAttachment:
    filename: str  # e.g. "consult-12.ics"
    content_type: str  # e.g. "text/calendar; method=REQUEST; charset=utf-8"
    data: bytes


def notify(
    session: Session,
    user: User,
    *,
    kind: str,
    subject: str,
    body: str,
    dedupe_key: str,
    link: str | None = None,
    attachments: Sequence[FileAttachment] = (),
    sms: str | None = None,
    now: datetime,
) -> bool:
    """Queue a notice for ``user`` in the caller's transaction (not committed here): an
    in-app notification, an e-mail to ``user.email`` and, when ``sms`` is given and the user
    has a phone number, an SMS. Only one message per ``dedupe_key`` ever: a second call with
    the same key queues nothing and returns False. Keep patient text out of subject, body
    and sms: they leave the system by e-mail and SMS.

    An inactive user gets the in-app notification only.
    """
    if user.id is None:
        raise ValueError("notify needs a saved user")
    # A programming error, refused before the INSERT (PostgreSQL would abort the caller's
    # transaction on a value too long for its column; SQLite would store it).
    for name, value, limit in (("kind", kind, 40), ("dedupe_key", dedupe_key, 200)):
        if not value or len(value) > limit:
            raise ValueError(f"notify: {name} must have 1 to {limit} characters")
    if link is not None and len(link) > LINK_MAX:
        raise ValueError(f"notify: link longer than {LINK_MAX} characters")
    subject = " ".join(subject.split())[:SUBJECT_MAX]  # no header injection, fits the column
    notification_id = repository.insert_notification(
        session,
        {
            "user_id": user.id,
            "kind": kind,
            "subject": subject,
            "body": body,
            "link": link,
            "dedupe_key": dedupe_key,
            "created_at": now,
        },
    )
    if notification_id is None:
        return False
    if not user.is_active:
        return True
    email = OutboxMessage(
        notification_id=notification_id,
        user_id=user.id,
        channel=Channel.email,
        recipient=user.email,
        subject=subject,
        body=body,
        link=link,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(email)
    if attachments:
        session.flush()  # the e-mail's id
        assert email.id is not None
        for item in attachments:
            session.add(
                OutboxAttachment(
                    message_id=email.id,
                    filename=item.filename,
                    content_type=item.content_type,
                    data=item.data,
                )
            )
    if sms and user.phone:
        session.add(
            OutboxMessage(
                notification_id=notification_id,
                user_id=user.id,
                channel=Channel.sms,
                recipient=user.phone,
                subject=subject,
                body=sms[:SMS_MAX],
                link=None,
                next_attempt_at=now,
                created_at=now,
            )
        )
    return True


def already_queued(session: Session, keys: Sequence[str]) -> set[str]:
    """The dedupe keys among ``keys`` that were used already. Periodic jobs ask this once
    per run rather than attempting (and skipping) one insert per key every run."""
    return repository.existing_keys(session, keys)


def _coordinator_keys(session: Session, dedupe_key: str) -> list[tuple[User, str]]:
    return [(c, f"{dedupe_key}:user{c.id}") for c in repository.active_coordinators(session)]


def coordinators_told(session: Session, dedupe_key: str) -> bool:
    """Whether every active coordinator has had the notice of ``dedupe_key`` already."""
    keys = [key for _, key in _coordinator_keys(session, dedupe_key)]
    return set(keys) <= already_queued(session, keys)


# A coordinator notice's text: a string as it is, or a function called in each coordinator's
# language (``lambda: gettext("Escalated: %(c)s") % names``), so each reads their own.
Words = str | Callable[[], str]


def _in_force(words: Words) -> str:
    return words() if callable(words) else words


def notify_coordinators(
    session: Session,
    *,
    kind: str,
    subject: Words,
    body: Words,
    dedupe_key: str,
    link: str | None = None,
    attachments: Sequence[FileAttachment] = (),
    sms: Words | None = None,
    now: datetime,
) -> int:
    """notify() every active coordinator, in their own language; dedupe_key is suffixed with
    ':user{id}'. Returns how many were queued."""
    queued = 0
    for coordinator, key in _coordinator_keys(session, dedupe_key):
        with use_language(coordinator.language):
            words = (_in_force(subject), _in_force(body), None if sms is None else _in_force(sms))
        queued += notify(
            session,
            coordinator,
            kind=kind,
            subject=words[0],
            body=words[1],
            dedupe_key=key,
            link=link,
            attachments=attachments,
            sms=words[2],
            now=now,
        )
    return queued


# Draining the outbox


@dataclass
class DeliveryReport:
    sent: list[int] = field(default_factory=list)  # outbox message ids
    retrying: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)  # permanently, or out of attempts
    interrupted: list[int] = field(default_factory=list)  # found still sending: failed
    errors: list[int] = field(default_factory=list)  # our own error recording the outcome

    def __bool__(self) -> bool:
        return bool(self.sent or self.retrying or self.failed or self.interrupted or self.errors)


def deliver_due(units: Units, settings: Settings, now: datetime) -> DeliveryReport:
    """Send outbox rows due at ``now`` (the scheduler job calls this every ~15 s).

    Each message is claimed (``sending``) in a unit of work of its own, sent with no
    transaction open, and its outcome recorded in another; one failing message never stops
    the others.
    """
    report = DeliveryReport()
    stale_before = now - timedelta(minutes=settings.outbox_stale_sending_minutes)
    with units.one() as session:
        report.interrupted = repository.fail_interrupted(session, stale_before, INTERRUPTED)
    with units.one() as session:
        due = repository.due_message_ids(session, now, settings.outbox_batch_size)
    for message_id in due:
        _deliver_one(units, settings, message_id, now, report)
    return report


@dataclass(frozen=True)
class _Claimed:
    """A claimed message as plain values: nothing touches the database (or holds a
    transaction open) while we talk to a server."""

    id: int
    channel: Channel
    recipient: str
    subject: str
    body: str
    link: str | None
    attempts: int  # including this one
    attachments: tuple[FileAttachment, ...]


def _claim(session: Session, message_id: int, now: datetime) -> _Claimed | None:
    if not repository.claim(session, message_id, now):
        return None
    message = repository.get_message(session, message_id)
    assert message is not None
    return _Claimed(
        id=message_id,
        channel=Channel(message.channel),
        recipient=message.recipient,
        subject=message.subject,
        body=message.body,
        link=message.link,
        attempts=message.attempts,
        attachments=tuple(
            FileAttachment(a.filename, a.content_type, a.data)
            for a in repository.attachments_of(session, message_id)
        ),
    )


def _deliver_one(
    units: Units, settings: Settings, message_id: int, now: datetime, report: DeliveryReport
) -> None:
    claimed: _Claimed | None = None
    failure = f"outbox message {message_id}: could not record the delivery"
    claim = units.item(failure, log)
    with claim as session:  # `sending` is durable before we talk to the server
        claimed = _claim(session, message_id, now)
    if claim.failed:
        report.errors.append(message_id)
    if claimed is None:
        return  # someone else took it, a coordinator changed it, or the claim failed
    try:
        _send(settings, claimed, now)
    except delivery.DeliveryFailed as exc:
        error, permanent = exc.message, exc.permanent
    except Exception as exc:  # a bug of ours: keep it visible, try again later
        log.exception("outbox message %d: unexpected error while sending", message_id)
        error = f"internal error: {type(exc).__name__}: {exc}"[: delivery.MAX_ERROR]
        permanent = False
    else:
        error, permanent = "", False
    outcome = units.item(failure, log)
    with outcome as session:
        if error:
            _record_failure(session, settings, claimed, error, permanent, now, report)
        else:
            repository.finish(
                session, message_id, status=DeliveryStatus.sent, sent_at=now, last_error=""
            )
    if outcome.failed:
        report.errors.append(message_id)
    elif not error:
        report.sent.append(message_id)


def _send(settings: Settings, message: _Claimed, now: datetime) -> None:
    if message.channel == Channel.sms:
        delivery.send_sms(settings, to=message.recipient, text=message.body, now=now)
        return
    email = delivery.build_email(
        settings,
        message_id=message.id,
        recipient=message.recipient,
        subject=message.subject,
        body=message.body,
        link=message.link,
        attachments=message.attachments,
        now=now,
    )
    delivery.send_email(settings, email)


def _record_failure(
    session: Session,
    settings: Settings,
    message: _Claimed,
    error: str,
    permanent: bool,
    now: datetime,
    report: DeliveryReport,
) -> None:
    attempts = message.attempts
    if permanent or attempts >= settings.outbox_max_attempts:
        if not permanent:
            error = f"gave up after {attempts} attempts: {error}"[: delivery.MAX_ERROR]
        repository.finish(session, message.id, status=DeliveryStatus.failed, last_error=error)
        report.failed.append(message.id)
    else:
        delay = settings.outbox_retry_base_seconds * 2 ** (attempts - 1)
        repository.finish(
            session,
            message.id,
            status=DeliveryStatus.retrying,
            last_error=error,
            next_attempt_at=now + timedelta(seconds=delay),
        )
        report.retrying.append(message.id)
    log.warning("outbox message %d (%s): %s", message.id, message.channel, error)


# In-app notifications


@dataclass(frozen=True)
class Page:
    items: list[Notification]
    total: int
    unread: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def my_notifications(session: Session, user: User, page: int, page_size: int) -> Page:
    """One page of the user's notifications, newest first (page counts from 1)."""
    assert user.id is not None
    page = max(1, page)
    items = repository.notifications_of(session, user.id, (page - 1) * page_size, page_size)
    return Page(
        items=items,
        total=repository.count_of(session, user.id),
        unread=repository.count_of(session, user.id, unread_only=True),
        page=page,
        page_size=page_size,
    )


def unread_count(session: Session, user: User) -> int:
    """One COUNT query (the header link)."""
    assert user.id is not None
    return repository.count_of(session, user.id, unread_only=True)


def mark_read(session: Session, user: User, ids: Sequence[int], now: datetime) -> int:
    """Mark these of the user's own notifications read."""
    assert user.id is not None
    return repository.mark_read(session, user.id, ids, now)


def mark_one_read(
    session: Session, user: User, notification_id: int, now: datetime
) -> Notification:
    """Mark one of the user's own notifications read; someone else's is not found."""
    found = repository.get_notification(session, notification_id)
    if found is None or found.user_id != user.id:
        raise NotFound(
            N_("notification %(notification_id)s not found"), notification_id=notification_id
        )
    if found.read_at is None:
        repository.mark_read(session, found.user_id, [notification_id], now)
        found.read_at = now
    return found


# Coordinators: deliveries that need a look


def problem_deliveries(session: Session, user: User, limit: int = 200) -> list[OutboxMessage]:
    """Failed and retrying messages, most recent first (coordinators)."""
    auth.ensure_can_see_deliveries(user)
    return repository.problem_messages(session, limit)


def retry_now(session: Session, user: User, message_id: int, now: datetime) -> OutboxMessage:
    """Put a failed (or retrying) message back to pending, due at once (coordinators)."""
    auth.ensure_can_see_deliveries(user)
    message = repository.get_message(session, message_id)
    if message is None:
        raise NotFound(N_("delivery %(message_id)s not found"), message_id=message_id)
    if not repository.requeue(session, message_id, now):
        raise NotFound(
            N_("delivery %(message_id)s is neither failed nor retrying"), message_id=message_id
        )
    record(
        session,
        user,
        AuditAction.update,
        "outbox_message",
        message_id,
        detail=f"retry requested ({message.channel}, was {message.status})",
    )
    refreshed = repository.get_message(session, message_id)
    assert refreshed is not None
    return refreshed
