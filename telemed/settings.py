"""Application settings, read from the environment with the prefix ``TELEMED_``.

The embedded default (SQLite in the data directory, development mode) needs no
configuration at all. Outside development the secret key must be set explicitly.
"""

from __future__ import annotations

import secrets
import socket
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, FilePath, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from telemed.validation import zone_problem

DEFAULT_SECRET = "change-me"  # noqa: S105 - the sentinel we refuse outside development


# The roles of telemed.accounts.models.Role (settings sit below accounts and cannot import it).
MFA_ROLES = frozenset({"clinician", "specialist", "coordinator", "admin"})


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TELEMED_", env_file=None, extra="ignore")

    env: Environment = Environment.development
    data_dir: Path = Field(default=Path("./telemed-data"))
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; defaults to SQLite in the data directory. "
        "PostgreSQL: postgresql+psycopg://user@host:5432/db",
    )
    secret_key: str = DEFAULT_SECRET
    clinician_timezone: str = "Africa/Maseru"
    default_timezone: str = "Africa/Maseru"
    session_hours: int = 12
    # Seconds a resolved session is remembered per process (0: look it up on every request).
    session_cache_seconds: float = 5.0
    cookie_secure: bool | None = None  # None: secure outside development
    # Login throttling (docs/login-policy.md): a delay per account and address that doubles
    # after the free failures, up to the cap; failures are forgotten after the memory.
    login_free_failures: int = Field(default=3, ge=1)
    login_delay_base_seconds: float = Field(default=1.0, gt=0)
    login_delay_cap_seconds: int = Field(default=600, ge=1)
    login_failure_memory_hours: int = Field(default=24, ge=1)
    # Failures for one account from every address; then only addresses it logged in from
    # within login_known_address_days may try (or its owner unlocks it by e-mail).
    login_max_failures: int = Field(default=50, ge=1)
    login_known_address_days: int = Field(default=30, ge=1)
    # Failures from one address across accounts (a clinic's NAT) in the window.
    login_max_failures_per_address: int = Field(default=300, ge=1)
    login_address_window_minutes: int = Field(default=60, ge=1)
    # Second factor (telemed.mfa, docs/mfa.md). Roles that must use TOTP, comma-separated
    # ("coordinator,admin"; "" for none). Unset: coordinator and admin in production, nobody
    # otherwise, so the demo (`make run`) logs in with a password alone.
    mfa_required_roles: str | None = None
    mfa_reauth_minutes: int = Field(default=15, ge=1)  # sensitive actions: proof this recent
    mfa_max_failures: int = Field(default=5, ge=1)  # wrong codes per user in the window
    mfa_window_minutes: int = Field(default=15, ge=1)
    # Argon2id parameters of new password hashes (telemed/accounts/security.py): "light"
    # only for test suites, refused in production.
    password_hashing: Literal["standard", "light"] = "standard"  # noqa: S105 (a cost, not a password)
    page_size: int = 25
    max_upload_bytes: int = Field(default=15 * 1024 * 1024, ge=1)  # one attachment
    # Images decoded at once per process (each up to ~180 MB), and how long another waits
    # for a turn before a 503 (telemed/attachments/gate.py, docs/RELIABILITY.md).
    image_concurrency: int = Field(default=2, ge=1)
    image_wait_seconds: float = Field(default=10.0, ge=0)
    # Any other request body (a form, a JSON document): refused (413) as it arrives past this.
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    seed_demo: bool = True  # serve seeds demo data into an empty embedded database
    # Scheduling: offers, deadlines and escalation (issue 4).
    offer_expiry_emergency_minutes: int = Field(default=5, ge=1)
    offer_expiry_urgent_minutes: int = Field(default=30, ge=1)
    offer_expiry_routine_minutes: int = Field(default=12 * 60, ge=1)
    deadline_emergency_minutes: int = Field(default=60, ge=1)
    deadline_urgent_minutes: int = Field(default=24 * 60, ge=1)
    deadline_routine_minutes: int = Field(default=7 * 24 * 60, ge=1)
    offer_max_failures: int = Field(default=3, ge=1)  # failed offer rounds before escalation
    slot_minutes: int = Field(default=30, ge=5)  # length of an availability slot
    # Fairness (issue 10): at most this many emergencies per specialist per ISO week of the
    # appointment, unless nobody else can take one.
    max_emergencies_per_week: int = Field(default=3, ge=1)
    # On call: minutes the specialists on call have to answer before an emergency is
    # broadcast (a phone by the bed: long enough to wake and read, short for the patient).
    oncall_answer_minutes: int = Field(default=5, ge=1, le=60)
    registrations_per_hour_per_address: int = Field(default=5, ge=1)
    # Periodic jobs (telemed.jobs): in `telemed serve` unless disabled; `telemed scheduler`.
    scheduler_enabled: bool = True
    scheduler_standby_poll_seconds: float = Field(default=5.0, gt=0)  # PostgreSQL standby
    # Live sessions (telemed.sessions). Redis: share rooms between instances (else in-process).
    redis_url: str | None = None
    # Starts every Redis channel and key, so deployments (or test runs) sharing one Redis
    # keep their rooms apart; the database number in the URL does not (pub/sub ignores it).
    # Unset: "telemed:<database name>:", the same for every instance of one deployment.
    redis_prefix: str | None = Field(default=None, min_length=1)
    call_token_ttl_seconds: int = Field(default=120, ge=10, le=3600)
    # Calls open this long before an appointment and stay open this long after its end.
    call_open_before_minutes: int = Field(default=15, ge=0)
    call_open_after_minutes: int = Field(default=60, ge=0)
    signal_grace_seconds: float = Field(default=30.0, gt=0)
    # TURN (coturn use-auth-secret); no TURN server unless turn_host and turn_secret are set.
    turn_host: str | None = None
    turn_port: int = Field(default=3478, ge=1, le=65535)
    turn_tls_port: int | None = Field(default=443, ge=1, le=65535)  # turns: over TCP; None: off
    turn_tls_host: str | None = None  # the name on coturn's certificate, if not turn_host
    turn_secret: str | None = None
    turn_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    stun_urls: list[str] = Field(default_factory=list)  # e.g. ["stun:stun.example.org:3478"]
    # Notifications (telemed.notifications): e-mail over SMTP, SMS through an HTTP gateway.
    # Without smtp_host e-mail goes to the Maildir <data_dir>/mailbox (`telemed mailbox list`);
    # without sms_gateway_url SMS are appended to <data_dir>/sms-outbox.log.
    # Links in e-mails, SMS and .ics files. `telemed serve` without it: the address served
    # (served_base_url), so that the links of `--port 8080` reach port 8080.
    public_base_url: str = "http://127.0.0.1:8000"
    mail_from: str = "Telemed <telemed@localhost>"
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True
    # The server's certificate is always verified, against the system's CAs or, if set,
    # against this PEM bundle only (a relay with a private CA).
    smtp_ca_file: FilePath | None = None
    smtp_timeout_seconds: float = Field(default=20.0, gt=0)
    sms_gateway_url: str | None = None  # POST {"to": "+266...", "message": "..."}
    sms_gateway_token: str | None = None  # sent as Authorization: Bearer <token>
    sms_timeout_seconds: float = Field(default=10.0, gt=0)
    outbox_retry_base_seconds: int = Field(default=60, ge=1)  # doubled after each failure
    outbox_max_attempts: int = Field(default=6, ge=1)
    outbox_stale_sending_minutes: int = Field(default=5, ge=1)  # then "interrupted", failed
    outbox_batch_size: int = Field(default=100, ge=1)
    # /metrics answers the loopback address; others only with "Authorization: Bearer <this>".
    metrics_token: SecretStr | None = None
    # DHIS2 aggregate push (telemed.interop.dhis2; docs/interop.md). Token: a personal
    # access token (sent as "Authorization: ApiToken ..."), else basic auth. Without a URL
    # and a mapping file the monthly job does nothing.
    dhis2_url: str | None = None  # e.g. https://hmis.health.gov.ls (no /api)
    dhis2_username: str | None = None
    dhis2_password: str | None = None
    dhis2_token: str | None = None
    dhis2_mapping: Path | None = None  # e.g. deploy/dhis2/mapping.example.toml, adapted
    dhis2_timeout_seconds: float = Field(default=60.0, gt=0)
    # Scheduled backups (telemed.backup; docs/backup.md): off while the directory is unset.
    # Kept: the newest backup of each of the last N days and of each of the last M weeks.
    backup_dir: Path | None = None
    backup_keep_daily: int = Field(default=7, ge=1)
    backup_keep_weekly: int = Field(default=4, ge=0)

    @field_validator("clinician_timezone", "default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if zone_problem(value):
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. Africa/Maseru)")
        return value

    @field_validator("mfa_required_roles")
    @classmethod
    def _known_roles(cls, value: str | None) -> str | None:
        if value is None:
            return None
        roles = {part.strip() for part in value.split(",") if part.strip()}
        unknown = roles - MFA_ROLES
        if unknown:
            raise ValueError(
                f"unknown role(s) {', '.join(sorted(unknown))}: choose from "
                f"{', '.join(sorted(MFA_ROLES))}"
            )
        return ",".join(sorted(roles))

    @model_validator(mode="after")
    def _secret_outside_development(self) -> Settings:
        if self.env is Environment.production and (
            self.secret_key == DEFAULT_SECRET or len(self.secret_key) < 32
        ):
            raise ValueError(
                "TELEMED_SECRET_KEY must be set to a random value of at least 32 characters "
                "outside development, e.g. the output of "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
            )
        if self.env is Environment.production and self.password_hashing != "standard":  # noqa: S105
            raise ValueError(
                "TELEMED_PASSWORD_HASHING=light is for test suites only; production hashes "
                "passwords with the standard Argon2id parameters"
            )
        return self

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'telemed.sqlite3').resolve()}"

    @property
    def redis_key_prefix(self) -> str:
        """What starts every Redis channel and key of this deployment (rooms, used tokens,
        presence): ``redis_prefix``, else one derived from the database name. Instances of one
        deployment share a database, so they agree on it without being told; two deployments
        on one Redis differ in it (issue 14: with a fixed default they relayed each other's
        offers, since pub/sub channels ignore the database number in the Redis URL)."""
        if self.redis_prefix:
            return self.redis_prefix
        database = make_url(self.sqlalchemy_url).database or "telemed"
        return f"telemed:{database}:"

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")

    @property
    def secure_cookies(self) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.env is Environment.production

    @property
    def mfa_roles(self) -> frozenset[str]:
        """The roles that must use a second factor (``mfa_required_roles`` resolved)."""
        if self.mfa_required_roles is None:
            if self.env is Environment.production:
                return frozenset({"coordinator", "admin"})
            return frozenset()
        return frozenset(filter(None, self.mfa_required_roles.split(",")))

    def effective_secret(self) -> str:
        """The signing secret; in development a random one is kept in the data directory."""
        if self.secret_key != DEFAULT_SECRET:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()


def served_base_url(host: str, port: int) -> str:
    """The base URL of ``telemed serve --host HOST --port PORT``: an IPv6 address in
    brackets, and the machine's name for "every address" (0.0.0.0, ::), which no browser
    could open."""
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - naming it, not binding it
        host = socket.getfqdn()
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def serving_at(settings: Settings, host: str, port: int) -> Settings:
    """``settings`` for a server listening on ``host``:``port``: the links name that address
    unless TELEMED_PUBLIC_BASE_URL is set (a proxy's address, HTTPS)."""
    if "public_base_url" in settings.model_fields_set:
        return settings
    return settings.model_copy(update={"public_base_url": served_base_url(host, port)})


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
