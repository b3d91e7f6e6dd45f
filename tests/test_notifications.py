"""Notifications: in-app notices, the outbox and its delivery by e-mail and SMS."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from telemed.accounts import service as accounts
from telemed.accounts.models import Role, User
from telemed.cli import main
from telemed.db import make_engine
from telemed.errors import ValidationFailed
from telemed.notifications import repository
from telemed.notifications.models import Channel, DeliveryStatus, Notification, OutboxMessage
from telemed.notifications.service import (
    INTERRUPTED,
    FileAttachment,
    deliver_due,
    notify,
    notify_coordinators,
)
from telemed.settings import Settings
from telemed.uow import Units
from tests.conftest import LoginFn
from tests.helpers import PASSWORD, ManualClock, Users
from tests.notification_helpers import SMS_TOKEN, SmsGateway, SmtpServer, delivery_settings

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def _with_phone(db: Session, user: User, phone: str = "+26658123456") -> User:
    user.phone = phone
    db.add(user)
    db.commit()
    return user


def _outbox(db: Session) -> list[OutboxMessage]:
    db.commit()  # a fresh snapshot: the application wrote in other transactions
    db.expire_all()
    return list(db.exec(select(OutboxMessage).order_by(OutboxMessage.id)))  # type: ignore[arg-type]


def _count(db: Session, model: type[Notification] | type[OutboxMessage]) -> int:
    return int(db.exec(select(func.count()).select_from(model)).one())


def test_notify_queues_an_in_app_notice_an_email_and_an_sms(db: Session, users: Users) -> None:
    user = _with_phone(db, users.make(Role.specialist))
    assert notify(
        db,
        user,
        kind="offer",
        subject="New consult offer #12",
        body="Consult #12 is offered to you until 10:00.",
        dedupe_key="offer:12",
        link="/offers",
        sms="Telemed: consult #12 offered to you",
        now=T0,
    )
    db.commit()
    rows = _outbox(db)
    assert [(r.channel, r.recipient, r.status) for r in rows] == [
        (Channel.email, user.email, DeliveryStatus.pending),
        (Channel.sms, "+26658123456", DeliveryStatus.pending),
    ]
    assert rows[0].next_attempt_at == T0
    notice = db.exec(select(Notification)).one()
    assert (notice.user_id, notice.kind, notice.read_at) == (user.id, "offer", None)


def test_no_sms_without_a_phone_number(db: Session, users: Users) -> None:
    user = users.make(Role.specialist)
    notify(db, user, kind="offer", subject="s", body="b", dedupe_key="k", sms="short", now=T0)
    db.commit()
    assert [r.channel for r in _outbox(db)] == [Channel.email]


def test_same_dedupe_key_queues_nothing_in_the_same_transaction(db: Session, users: Users) -> None:
    user, other = users.make(Role.specialist), users.make(Role.clinician)
    assert notify(db, user, kind="offer", subject="s", body="b", dedupe_key="offer:1", now=T0)
    assert not notify(db, user, kind="offer", subject="s", body="b", dedupe_key="offer:1", now=T0)
    # the key is unique over every user
    assert not notify(db, other, kind="offer", subject="s", body="b", dedupe_key="offer:1", now=T0)
    # and the caller's transaction is still usable
    assert notify(db, user, kind="offer", subject="s", body="b", dedupe_key="offer:2", now=T0)
    db.commit()
    assert _count(db, Notification) == 2
    assert _count(db, OutboxMessage) == 2


def test_same_dedupe_key_queues_nothing_in_another_transaction(
    db: Session, users: Users, engine: Engine
) -> None:
    user = users.make(Role.specialist)
    assert notify(db, user, kind="digest", subject="s", body="b", dedupe_key="digest:1", now=T0)
    db.commit()
    other = make_engine(engine.url.render_as_string(hide_password=False))
    with Session(other) as session:
        again = session.get(User, user.id)
        assert again is not None
        assert not notify(
            session, again, kind="digest", subject="s", body="b", dedupe_key="digest:1", now=T0
        )
        session.commit()
    other.dispose()
    assert _count(db, Notification) == 1
    assert _count(db, OutboxMessage) == 1


def test_rollback_of_the_callers_transaction_leaves_no_notification(
    db: Session, users: Users
) -> None:
    user = _with_phone(db, users.make(Role.specialist))
    notify(
        db,
        user,
        kind="offer",
        subject="s",
        body="b",
        dedupe_key="offer:9",
        sms="x",
        attachments=[FileAttachment("a.ics", "text/calendar; method=REQUEST", b"BEGIN:VCALENDAR")],
        now=T0,
    )
    db.rollback()
    assert _count(db, Notification) == 0
    assert _count(db, OutboxMessage) == 0
    # the key was never used: a later notify with it queues
    assert notify(db, user, kind="offer", subject="s", body="b", dedupe_key="offer:9", now=T0)
    db.commit()
    assert _count(db, Notification) == 1


def test_notify_coordinators_reaches_every_active_coordinator(db: Session, users: Users) -> None:
    first, second = users.make(Role.coordinator), users.make(Role.coordinator)
    gone = users.make(Role.coordinator)
    gone.is_active = False
    db.add(gone)
    db.commit()
    users.make(Role.specialist)
    assert (
        notify_coordinators(db, kind="escalated", subject="s", body="b", dedupe_key="esc:3", now=T0)
        == 2
    )
    assert (
        notify_coordinators(db, kind="escalated", subject="s", body="b", dedupe_key="esc:3", now=T0)
        == 0
    )
    db.commit()
    keys = set(db.exec(select(Notification.dedupe_key)))
    assert keys == {f"esc:3:user{first.id}", f"esc:3:user{second.id}"}


# Delivery


ICS = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
    b"UID:consult-12@telemed\r\nSUMMARY:Consult #12 \xc3\xa9\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)
ICS_TYPE = "text/calendar; method=REQUEST; charset=utf-8"


def _booked(db: Session, user: User, n: int = 12, *, sms: str | None = None) -> None:
    assert notify(
        db,
        user,
        kind="appointment_booked",
        subject=f"Consult #{n} booked",
        body=f"Your consult #{n} is booked for 1 Dec 2026 10:00.",
        dedupe_key=f"booked:{n}:{user.id}",
        link=f"/consults/{n}",
        attachments=[FileAttachment(f"consult-{n}.ics", ICS_TYPE, ICS)],
        sms=sms,
        now=T0,
    )
    db.commit()


def _row(db: Session, channel: Channel = Channel.email) -> OutboxMessage:
    [row] = [r for r in _outbox(db) if r.channel == channel]
    return row


def test_email_goes_through_smtp_with_the_attachment_intact(
    units: Units, db: Session, users: Users, settings: Settings, smtp_server: SmtpServer
) -> None:
    user = users.make(Role.clinician)
    _booked(db, user)
    report = deliver_due(units, delivery_settings(settings, smtp=smtp_server), T0)
    row = _row(db)
    assert report.sent == [row.id]
    assert (row.status, row.attempts, row.sent_at) == (DeliveryStatus.sent, 1, T0)
    [msg] = smtp_server.messages
    assert (msg["To"], msg["Subject"]) == (user.email, "Consult #12 booked")
    assert msg["From"] == "Telemed <noreply@example.org>"
    text = msg.get_body(preferencelist=("plain",))
    assert text is not None
    assert "booked for 1 Dec 2026 10:00" in text.get_content()
    assert "https://telemed.example.org/consults/12" in text.get_content()
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "consult-12.ics"
    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_param("method") == "REQUEST"
    assert attachment.get_payload(decode=True) == ICS
    # sent once: a later run sends nothing more
    assert not deliver_due(
        units, delivery_settings(settings, smtp=smtp_server), T0 + timedelta(hours=1)
    )
    assert len(smtp_server.messages) == 1


def test_sms_goes_to_the_gateway_with_the_bearer_token(
    units: Units,
    db: Session,
    users: Users,
    settings: Settings,
    smtp_server: SmtpServer,
    sms_gateway: SmsGateway,
) -> None:
    user = _with_phone(db, users.make(Role.specialist))
    _booked(db, user, sms="Telemed: consult #12 booked 1 Dec 10:00")
    report = deliver_due(units, delivery_settings(settings, smtp=smtp_server, sms=sms_gateway), T0)
    assert len(report.sent) == 2
    [request] = sms_gateway.requests
    assert request.headers["authorization"] == f"Bearer {SMS_TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert request.json == {
        "to": "+26658123456",
        "message": "Telemed: consult #12 booked 1 Dec 10:00",
    }
    assert _row(db, Channel.sms).status == DeliveryStatus.sent
    assert len(smtp_server.messages) == 1


def test_smtp_down_retries_with_backoff_then_sends_when_it_is_back(
    units: Units, db: Session, users: Users, settings: Settings, smtp_server: SmtpServer
) -> None:
    configured = delivery_settings(settings, smtp=smtp_server)
    user = users.make(Role.clinician)
    _booked(db, user)
    smtp_server.stop()
    report = deliver_due(units, configured, T0)
    row = _row(db)
    assert report.retrying == [row.id]
    assert (row.status, row.attempts) == (DeliveryStatus.retrying, 1)
    assert row.next_attempt_at == T0 + timedelta(seconds=60)
    assert "refused" in row.last_error.lower()
    # not due yet: nothing tried
    assert not deliver_due(units, configured, T0 + timedelta(seconds=59))
    # still down: the wait doubles
    deliver_due(units, configured, T0 + timedelta(seconds=60))
    row = _row(db)
    assert (row.status, row.attempts) == (DeliveryStatus.retrying, 2)
    assert row.next_attempt_at == T0 + timedelta(seconds=60 + 120)
    smtp_server.start()
    report = deliver_due(units, configured, T0 + timedelta(seconds=180))
    row = _row(db)
    assert report.sent == [row.id]
    assert (row.status, row.attempts, row.last_error) == (DeliveryStatus.sent, 3, "")
    assert [m["Subject"] for m in smtp_server.messages] == ["Consult #12 booked"]


def test_gateway_503_retries_then_succeeds(
    units: Units, db: Session, users: Users, settings: Settings, sms_gateway: SmsGateway
) -> None:
    configured = delivery_settings(settings, sms=sms_gateway)
    user = _with_phone(db, users.make(Role.specialist))
    _booked(db, user, sms="Telemed: consult #12 booked")
    sms_gateway.status = 503
    deliver_due(units, configured, T0)
    row = _row(db, Channel.sms)
    assert row.status == DeliveryStatus.retrying
    assert "HTTP 503" in row.last_error
    assert row.next_attempt_at == T0 + timedelta(seconds=60)
    sms_gateway.status = 200
    deliver_due(units, configured, T0 + timedelta(minutes=1))
    assert _row(db, Channel.sms).status == DeliveryStatus.sent
    assert len(sms_gateway.requests) == 2


def test_out_of_attempts_fails(
    units: Units, db: Session, users: Users, settings: Settings, smtp_server: SmtpServer
) -> None:
    configured = delivery_settings(settings, smtp=smtp_server, outbox_max_attempts=2)
    _booked(db, users.make(Role.clinician))
    smtp_server.stop()
    deliver_due(units, configured, T0)
    report = deliver_due(units, configured, T0 + timedelta(minutes=1))
    row = _row(db)
    assert report.failed == [row.id]
    assert row.status == DeliveryStatus.failed
    assert row.last_error.startswith("gave up after 2 attempts")
    smtp_server.start()
    assert not deliver_due(units, configured, T0 + timedelta(days=1))
    assert smtp_server.messages == []


def test_permanent_failures_fail_at_once_without_stopping_the_others(
    units: Units,
    db: Session,
    users: Users,
    settings: Settings,
    smtp_server: SmtpServer,
    sms_gateway: SmsGateway,
) -> None:
    configured = delivery_settings(settings, smtp=smtp_server, sms=sms_gateway)
    refused = _with_phone(db, users.make(Role.clinician))
    fine = users.make(Role.clinician)
    smtp_server.refuse.add(refused.email)
    sms_gateway.status = 400
    _booked(db, refused, 1, sms="Telemed: consult #1 booked")
    _booked(db, fine, 2)
    report = deliver_due(units, configured, T0)
    rows = {(r.recipient, r.channel): r for r in _outbox(db)}
    email, sms = rows[(refused.email, Channel.email)], rows[("+26658123456", Channel.sms)]
    assert (email.status, email.attempts) == (DeliveryStatus.failed, 1)
    assert "550" in email.last_error
    assert sms.status == DeliveryStatus.failed
    assert "HTTP 400" in sms.last_error
    assert rows[(fine.email, Channel.email)].status == DeliveryStatus.sent
    assert sorted(report.failed) == sorted([email.id, sms.id])
    assert [m["To"] for m in smtp_server.messages] == [fine.email]


def test_a_message_interrupted_mid_send_is_failed_not_sent_again(
    units: Units, db: Session, users: Users, settings: Settings, smtp_server: SmtpServer
) -> None:
    configured = delivery_settings(settings, smtp=smtp_server)
    _booked(db, users.make(Role.clinician))
    row = _row(db)
    assert row.id is not None
    # A run claimed it (committed `sending`) and died before recording the outcome.
    assert repository.claim(db, row.id, T0)
    db.commit()
    assert not deliver_due(units, configured, T0 + timedelta(minutes=1))  # maybe still sending
    assert _row(db).status == DeliveryStatus.sending
    report = deliver_due(units, configured, T0 + timedelta(minutes=10))
    row = _row(db)
    assert report.interrupted == [row.id]
    assert row.status == DeliveryStatus.failed
    assert row.last_error == INTERRUPTED
    assert not deliver_due(units, configured, T0 + timedelta(days=1))
    assert smtp_server.messages == []


def test_without_smtp_host_mail_goes_to_the_maildir_and_sms_to_a_log(
    units: Units, db: Session, users: Users, settings: Settings
) -> None:
    user = _with_phone(db, users.make(Role.specialist))
    _booked(db, user, sms="Telemed: consult #12 booked")
    _booked(db, user, 13)
    report = deliver_due(units, settings, T0)  # the embedded default: nothing configured
    assert len(report.sent) == 3
    lines = (settings.data_dir / "sms-outbox.log").read_text().splitlines()
    assert [json.loads(line)["to"] for line in lines] == ["+26658123456"]
    env = {"TELEMED_DATA_DIR": str(settings.data_dir)}
    listed = CliRunner().invoke(main, ["mailbox", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    rows = listed.output.splitlines()
    assert len(rows) == 2
    assert all(user.email in row for row in rows)
    assert "Consult #12 booked" in rows[0] or "Consult #12 booked" in rows[1]
    number = 1 if "Consult #12 booked" in rows[0] else 2
    shown = CliRunner().invoke(main, ["mailbox", "show", str(number)], env=env)
    assert shown.exit_code == 0, shown.output
    assert "Subject: Consult #12 booked" in shown.output
    assert "Attachments: consult-12.ics (text/calendar)" in shown.output
    assert "http://127.0.0.1:8000/consults/12" in shown.output  # the default base URL
    missing = CliRunner().invoke(main, ["mailbox", "show", "3"], env=env)
    assert missing.exit_code == 2
    assert "there are 2 message(s)" in missing.output


def test_mailbox_list_on_an_empty_mailbox(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["mailbox", "list"], env={"TELEMED_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 0
    assert "No messages" in result.output


# In-app: page and API


def _notice(db: Session, user: User, n: int, **extra: object) -> None:
    notify(
        db,
        user,
        kind="offer",
        subject=f"Consult #{n} offered",
        body=f"Consult #{n} is waiting for you. <b>not bold</b>",
        dedupe_key=f"offer:{n}:{user.id}",
        link=f"/consults/{n}",
        now=T0 + timedelta(minutes=n),
        **extra,  # type: ignore[arg-type]
    )
    db.commit()


def test_api_lists_newest_first_and_marks_only_your_own_read(
    db: Session, users: Users, login: LoginFn
) -> None:
    me, other = users.make(Role.specialist), users.make(Role.specialist)
    for n in (1, 2, 3):
        _notice(db, me, n)
    _notice(db, other, 4)
    api = login(me)
    listing = api.get("/api/v1/notifications", {"page_size": 2}).json()
    assert [i["subject"] for i in listing["items"]] == ["Consult #3 offered", "Consult #2 offered"]
    assert (listing["total"], listing["unread"], listing["page"]) == (3, 3, 1)
    assert listing["items"][0]["link"] == "/consults/3"
    second = api.get("/api/v1/notifications", {"page_size": 2, "page": 2}).json()
    assert [i["subject"] for i in second["items"]] == ["Consult #1 offered"]

    first_id = listing["items"][0]["id"]
    marked = api.post(f"/api/v1/notifications/{first_id}/read")
    assert marked.status_code == 200, marked.text
    assert marked.json()["read_at"] is not None
    assert api.get("/api/v1/notifications").json()["unread"] == 2

    theirs = db.exec(select(Notification).where(Notification.user_id == other.id)).one()
    refused = api.post(f"/api/v1/notifications/{theirs.id}/read")
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "not_found"
    db.commit()
    db.expire_all()
    assert db.get(Notification, theirs.id).read_at is None  # type: ignore[union-attr]
    assert api.post("/api/v1/notifications/999999/read").status_code == 404


def test_api_bad_input_is_a_clear_4xx(db: Session, users: Users, login: LoginFn) -> None:
    api = login(users.make(Role.clinician))
    not_a_number = api.post("/api/v1/notifications/abc/read")
    assert not_a_number.status_code == 422
    assert not_a_number.json()["error"]["fields"][0]["field"] == "notification_id"
    assert api.get("/api/v1/notifications", {"page": 0}).status_code == 422
    assert api.get("/api/v1/notifications", {"page_size": 1000}).status_code == 422
    # no CSRF token
    assert api.client.post("/api/v1/notifications/1/read").status_code == 403


def test_page_shows_notifications_and_marks_them_read_on_request(
    db: Session, users: Users, login: LoginFn
) -> None:
    me = users.make(Role.clinician)
    _notice(db, me, 1)
    _notice(db, me, 2)
    api = login(me)
    assert "Notifications (2)" in api.get("/").text
    page = api.get("/notifications")
    assert page.status_code == 200
    assert page.text.index("Consult #2 offered") < page.text.index("Consult #1 offered")
    assert page.text.count(">new<") == 2
    assert "&lt;b&gt;not bold&lt;/b&gt;" in page.text  # escaped, never markup
    assert 'href="/consults/2"' in page.text
    # Looking changes nothing (a prefetch must not mark them read): the button does.
    assert api.get("/api/v1/notifications").json()["unread"] == 2
    ids = [n["id"] for n in api.get("/api/v1/notifications").json()["items"]]
    marked = api.client.post(
        "/notifications/read",
        data={"id": ids, "page": "1", "csrf_token": api.csrf},
        follow_redirects=False,
    )
    assert marked.status_code == 303
    assert marked.headers["location"] == "/notifications?page=1"
    assert api.get("/api/v1/notifications").json()["unread"] == 0
    again = api.get("/notifications").text
    assert "Notifications (0)" in again
    assert ">new<" not in again
    assert api.get("/notifications", {"page": "x"}).status_code == 422


def test_coordinator_sees_failed_deliveries_and_retries_one(
    units: Units,
    db: Session,
    users: Users,
    login: LoginFn,
    settings: Settings,
    smtp_server: SmtpServer,
    clock: ManualClock,
) -> None:
    """The retry is stamped by the application's clock: the page and the outbox run agree
    on the time whatever the date of the run (this test once failed from 1 December on,
    when the page used the real clock and the run a fixed date)."""
    clock.set(T0 + timedelta(minutes=2))
    configured = delivery_settings(settings, smtp=smtp_server)
    clinician = users.make(Role.clinician)
    coordinator = users.make(Role.coordinator)
    smtp_server.refuse.add(clinician.email)
    _booked(db, clinician)
    deliver_due(units, configured, T0)
    row = _row(db)

    nurse = login(clinician)
    assert nurse.get("/coordinator/deliveries").status_code == 403
    assert nurse.get("/api/v1/deliveries").status_code == 403
    assert nurse.post(f"/api/v1/deliveries/{row.id}/retry").status_code == 403

    boss = login(coordinator)
    assert 'href="/coordinator/deliveries"' in boss.get("/").text
    page = boss.get("/coordinator/deliveries")
    assert page.status_code == 200
    assert clinician.email in page.text
    assert "Consult #12 booked" in page.text
    assert "550" in page.text
    [listed] = boss.get("/api/v1/deliveries").json()
    assert (listed["id"], listed["status"], listed["attempts"]) == (row.id, "failed", 1)

    no_csrf = boss.client.post(f"/coordinator/deliveries/{row.id}/retry", follow_redirects=False)
    assert no_csrf.status_code == 403
    retried = boss.client.post(
        f"/coordinator/deliveries/{row.id}/retry",
        data={"csrf_token": boss.csrf},
        follow_redirects=False,
    )
    assert retried.status_code == 303
    assert retried.headers["location"] == "/coordinator/deliveries"
    assert (_row(db).status, _row(db).attempts) == (DeliveryStatus.pending, 0)
    assert boss.post(f"/api/v1/deliveries/{row.id}/retry").status_code == 404  # not failed now
    assert boss.post("/api/v1/deliveries/999999/retry").status_code == 404
    assert boss.post("/api/v1/deliveries/x/retry").status_code == 422

    assert _row(db).next_attempt_at == T0 + timedelta(minutes=2)
    smtp_server.refuse.clear()
    assert not deliver_due(units, configured, T0 + timedelta(minutes=1))  # not due before then
    deliver_due(units, configured, T0 + timedelta(minutes=5))
    assert _row(db).status == DeliveryStatus.sent
    assert [m["To"] for m in smtp_server.messages] == [clinician.email]
    assert "Nothing failed" in boss.get("/coordinator/deliveries").text


# Phone numbers


def test_phone_numbers_are_stored_in_e164(db: Session, settings: Settings) -> None:
    user = accounts.create_user(
        db,
        settings,
        email="nurse@example.org",
        full_name="Nurse",
        role=Role.clinician,
        password=PASSWORD,
        facility_code="MOTEBANG",
        phone="+266 5812-3456",
    )
    assert user.phone == "+26658123456"
    with pytest.raises(ValidationFailed, match="international format") as refused:
        accounts.create_user(
            db,
            settings,
            email="other@example.org",
            full_name="Other",
            role=Role.specialist,
            password=PASSWORD,
            phone="0581234",
        )
    assert refused.value.field == "phone"


def test_users_create_takes_a_phone_number(tmp_path: Path) -> None:
    env = {"TELEMED_DATA_DIR": str(tmp_path), "TELEMED_DATABASE_URL": None}
    args = ["users", "create", "--email", "n@example.org", "--name", "N", "--role", "specialist"]
    bad = CliRunner().invoke(main, [*args, "--phone", "12345", "--password", PASSWORD], env=env)
    assert bad.exit_code == 1
    assert "international format" in bad.output
    made = CliRunner().invoke(
        main, [*args, "--phone", "+44 7700 900123", "--password", PASSWORD], env=env
    )
    assert made.exit_code == 0, made.output
    engine = make_engine(f"sqlite:///{tmp_path / 'telemed.sqlite3'}")
    with Session(engine) as session:
        assert session.exec(select(User.phone)).one() == "+447700900123"
    engine.dispose()
