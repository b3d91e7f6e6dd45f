"""E-mail the way production sends it: STARTTLS with the server's certificate verified, then
a login. The other notification tests talk plain SMTP to keep them short; this file is the
proof that the default settings (``TELEMED_SMTP_STARTTLS=true`` with a username) work.

A real aiosmtpd server on loopback refuses mail before STARTTLS (``require_starttls``) and
before a login (``auth_required``), accepts one username and password, and presents a
certificate issued by a CA made here. The product trusts that CA through
``TELEMED_SMTP_CA_FILE`` and nothing else, so a certificate from another CA, or for another
host name, must be refused before the password is sent.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import ValidationError
from sqlmodel import Session as DbSession
from sqlmodel import col, select

from telemed.accounts.models import Role
from telemed.notifications.models import Channel, DeliveryStatus, OutboxMessage
from telemed.notifications.service import deliver_due, notify
from telemed.settings import Settings
from telemed.uow import Units
from tests.helpers import Users
from tests.notification_helpers import SessionSeen, SmtpServer, delivery_settings

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
LOGIN = "telemed-relay"
SECRET = "relay-password-2026"


@dataclass(frozen=True)
class Authority:
    """A CA: its key and certificate, and the PEM file a client trusts."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    pem: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_authority(directory: Path, common_name: str) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    # OpenSSL checks validity on the machine's real clock, which a run moved to another
    # day (TELEMED_TEST_TODAY, tests/timetravel) does not move: two years either side.
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=730))
        .not_valid_after(now + timedelta(days=730))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = directory / f"{common_name.replace(' ', '-')}.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Authority(key, cert, pem)


def server_context(directory: Path, authority: Authority, names: list[str]) -> ssl.SSLContext:
    """The SMTP server's TLS context: a certificate for ``names`` issued by ``authority``."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    alt_names: list[x509.GeneralName] = [
        x509.IPAddress(IPv4Address(n)) if n[0].isdigit() else x509.DNSName(n) for n in names
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(authority.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=730))
        .not_valid_after(now + timedelta(days=730))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()),
            critical=False,
        )
        .sign(authority.key, hashes.SHA256())
    )
    cert_file, key_file = directory / "server.pem", directory / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


def one_account(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    """The relay's only account; anything else is ``535`` (aiosmtpd's answer)."""
    valid = isinstance(auth_data, LoginPassword) and auth_data == LoginPassword(
        LOGIN.encode(), SECRET.encode()
    )
    return AuthResult(success=valid, handled=False, auth_data=auth_data if valid else None)


def relay(context: ssl.SSLContext) -> SmtpServer:
    return SmtpServer(
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=one_account,
    )


@pytest.fixture
def trusted_ca(tmp_path: Path) -> Authority:
    return make_authority(tmp_path, "Telemed Test Relay CA")


@pytest.fixture
def tls_relay(tmp_path: Path, trusted_ca: Authority) -> Iterator[SmtpServer]:
    """The relay with a certificate for 127.0.0.1 (the address the product connects to)."""
    server = relay(server_context(tmp_path, trusted_ca, ["127.0.0.1", "localhost"]))
    server.start()
    yield server
    server.stop()


def production_like(
    settings: Settings, server: SmtpServer, ca: Authority, **changes: Any
) -> Settings:
    """The production defaults (STARTTLS on) with a login, trusting ``ca``'s file only."""
    values: dict[str, Any] = {
        "smtp_starttls": True,
        "smtp_username": LOGIN,
        "smtp_password": SECRET,
        "smtp_ca_file": ca.pem,
    }
    return delivery_settings(settings, smtp=server, **(values | changes))


def queue_email(db: DbSession, users: Users) -> str:
    user = users.make(Role.clinician)
    assert notify(
        db,
        user,
        kind="appointment_booked",
        subject="Consult #12 booked",
        body="Your consult #12 is booked for 1 Dec 2026 10:00.",
        dedupe_key=f"booked:12:{user.id}",
        link="/consults/12",
        now=T0,
    )
    db.commit()
    return user.email


def email_row(db: DbSession) -> OutboxMessage:
    db.commit()  # a fresh snapshot: delivery wrote in its own transactions
    db.expire_all()
    [row] = db.exec(select(OutboxMessage).where(col(OutboxMessage.channel) == Channel.email))
    return row


def test_email_arrives_over_starttls_after_a_login(
    units: Units,
    db: DbSession,
    users: Users,
    settings: Settings,
    tls_relay: SmtpServer,
    trusted_ca: Authority,
) -> None:
    address = queue_email(db, users)
    report = deliver_due(units, production_like(settings, tls_relay, trusted_ca), T0)
    row = email_row(db)
    assert report.sent == [row.id]
    assert (row.status, row.attempts, row.last_error) == (DeliveryStatus.sent, 1, "")
    [message] = tls_relay.messages
    assert (message["To"], message["Subject"]) == (address, "Consult #12 booked")
    assert tls_relay.sessions == [SessionSeen(tls=True, login=LOGIN)]


@pytest.mark.parametrize(
    ("changes", "reply"),
    [
        ({"smtp_starttls": False, "smtp_username": None}, "SMTP 530 Must issue a STARTTLS"),
        ({"smtp_username": None}, "SMTP 530 5.7.0 Authentication required"),
    ],
    ids=["without STARTTLS", "without a login"],
)
def test_the_relay_refuses_mail_without_starttls_or_without_a_login(
    units: Units,
    db: DbSession,
    users: Users,
    settings: Settings,
    tls_relay: SmtpServer,
    trusted_ca: Authority,
    changes: dict[str, Any],
    reply: str,
) -> None:
    """The relay is as strict as a production one, so the arrival above proves the product
    did both; leaving either out is answered ``530``, a permanent failure."""
    queue_email(db, users)
    report = deliver_due(units, production_like(settings, tls_relay, trusted_ca, **changes), T0)
    row = email_row(db)
    assert report.failed == [row.id]
    assert row.status == DeliveryStatus.failed
    assert row.last_error.startswith(reply)
    assert tls_relay.messages == []


def test_a_wrong_password_fails_at_once_and_nothing_arrives(
    units: Units,
    db: DbSession,
    users: Users,
    settings: Settings,
    tls_relay: SmtpServer,
    trusted_ca: Authority,
) -> None:
    """``535`` is a permanent failure (an SMTP 5xx): retrying the same password cannot help,
    so the message fails at once and shows under Deliveries for a person to act on."""
    queue_email(db, users)
    wrong = production_like(settings, tls_relay, trusted_ca, smtp_password="not-the-password")
    report = deliver_due(units, wrong, T0)
    row = email_row(db)
    assert report.failed == [row.id]
    assert (row.status, row.attempts) == (DeliveryStatus.failed, 1)
    assert row.last_error.startswith("SMTP 535")
    assert "not-the-password" not in row.last_error
    assert tls_relay.messages == []
    # Failed for good: a later run does not try the message again.
    assert not deliver_due(units, wrong, T0 + timedelta(days=1))
    assert tls_relay.messages == []


@pytest.mark.parametrize("case", ["another CA", "another host name"])
def test_a_certificate_the_product_cannot_verify_stops_the_delivery_before_the_login(
    units: Units,
    db: DbSession,
    users: Users,
    settings: Settings,
    tmp_path: Path,
    trusted_ca: Authority,
    case: str,
) -> None:
    """The product verifies the certificate and its host name: a relay it cannot verify
    (an impostor, or a misconfiguration) never sees the password or the mail. It is retried,
    since a renewed certificate or a corrected setting can fix it."""
    if case == "another CA":
        issuer = make_authority(tmp_path, "Someone Else CA")
        context = server_context(tmp_path, issuer, ["127.0.0.1", "localhost"])
    else:
        context = server_context(tmp_path, trusted_ca, ["mail.example.org"])
    impostor = relay(context)
    impostor.start()
    try:
        queue_email(db, users)
        report = deliver_due(units, production_like(settings, impostor, trusted_ca), T0)
        row = email_row(db)
        assert report.retrying == [row.id]
        assert row.status == DeliveryStatus.retrying
        assert "CERTIFICATE_VERIFY_FAILED" in row.last_error
        assert impostor.messages == []
    finally:
        impostor.stop()


def test_the_ca_file_is_read_from_the_environment_and_must_exist(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, trusted_ca: Authority
) -> None:
    """A mistyped path is refused when the settings load, naming the setting, rather than
    failing every e-mail later."""
    monkeypatch.setenv("TELEMED_SMTP_CA_FILE", str(trusted_ca.pem))
    assert Settings(data_dir=tmp_path).smtp_ca_file == trusted_ca.pem
    monkeypatch.setenv("TELEMED_SMTP_CA_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(ValidationError, match="smtp_ca_file"):
        Settings(data_dir=tmp_path)
