"""The ``telemed`` command: serve the product, migrate, seed demo data, manage users.

Each command that writes is one unit of work (``telemed.uow.Units.one``): committed when it
succeeds, rolled back (and reported, exit 1) when it fails."""

from __future__ import annotations

import os
import signal as os_signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import NoReturn

import click
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from telemed.accounts.models import Role, User
from telemed.backup.commands import backup_commands
from telemed.db import make_engine, pk
from telemed.errors import TelemedError
from telemed.interop.dhis2.commands import dhis2_commands
from telemed.settings import Settings, serving_at
from telemed.uow import Units


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise click.ClickException(f"invalid settings: {problems}") from exc


@contextmanager
def _friendly_errors() -> Iterator[None]:
    """Turn our errors and an unreachable database into a message and exit code 1."""
    try:
        yield
    except TelemedError as exc:
        raise click.ClickException(exc.message) from exc
    except OperationalError as exc:
        raise click.ClickException(f"cannot use the database: {exc.orig}") from exc


def _prepare(settings: Settings) -> Engine:
    from telemed.migrate import upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.sqlalchemy_url)
    upgrade(engine)
    return engine


def _print_demo_users(engine: Engine) -> None:
    from telemed.demo.data import DEMO_USERS

    with Session(engine) as session:
        emails = {u.email for u in session.exec(select(User))}
    present = [u for u in DEMO_USERS if u.email in emails]
    if not present:
        return
    click.echo("Demo users (e-mail / password):")
    for u in present:
        click.echo(f"  {u.role:<12} {u.email:<40} {u.password}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Telemed: consults between Lesotho health workers and diaspora specialists.

    Settings come from TELEMED_* environment variables; the data directory is
    TELEMED_DATA_DIR (default ./telemed-data).
    """


def _trusted_proxies(value: str | None) -> str | None:
    from telemed.observability.serving import trusted_proxies

    return trusted_proxies(value)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--no-demo", is_flag=True, help="Do not seed demo data into an empty database.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes (PostgreSQL and Redis only); /metrics sums them (docs/operations.md).",
)
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option(
    "--forwarded-allow-ips",
    callback=lambda ctx, param, value: _trusted_proxies(value),
    help="Proxies whose X-Forwarded-For/-Proto are believed: addresses or networks, "
    "comma-separated, or '*' (default: $FORWARDED_ALLOW_IPS, else 127.0.0.1).",
)
def serve(
    host: str,
    port: int,
    no_demo: bool,
    workers: int,
    log_format: str,
    forwarded_allow_ips: str | None,
) -> None:
    """Serve the product: migrate the database, seed demo data if empty, listen."""
    import uvicorn

    from telemed.app import create_app
    from telemed.demo.seed import seed_demo
    from telemed.observability import serving

    settings = serving_at(_settings(), host, port)
    if workers > 1:  # each worker builds its settings from the environment: the same links
        os.environ["TELEMED_PUBLIC_BASE_URL"] = settings.public_base_url
    serving.check_workers(settings, workers)
    logging_options = serving.uvicorn_logging(log_format)
    with _friendly_errors():
        engine = _prepare(settings)
        if settings.seed_demo and not no_demo and settings.env.value == "development":
            with Units(engine).one() as session:
                seeded = seed_demo(session, settings)
            if seeded:
                click.echo("Seeded demo data.")
        _print_demo_users(engine)
    runner = None
    if settings.scheduler_enabled:  # the periodic jobs, in this process (after migrations)
        from telemed.jobs import build_runner

        runner = build_runner(engine, settings, on_change=_announce_role(settings))
        with _friendly_errors():
            runner.start()
        # uvicorn re-raises SIGTERM once it has shut down: leave through `finally` instead,
        # so that the jobs stop cleanly (exit status 143, as for a plain SIGTERM).
        os_signal.signal(os_signal.SIGTERM, _exit_on_signal)
    click.echo(f"Telemed on http://{host}:{port}/  (API docs: /docs; data: {settings.data_dir})")
    metrics_dir = serving.prepare_multiprocess(settings.data_dir, workers)
    if metrics_dir is not None:
        click.echo(f"{workers} workers; metrics of every worker in {metrics_dir}")
    try:
        # No permessage-deflate on /ws/signal: it costs memory per socket (protocol page, §1).
        # Several workers each build the app from the same environment (the factory).
        uvicorn.run(
            "telemed.app:create_app" if workers > 1 else create_app(settings, engine),
            factory=workers > 1,
            # A worker importing the app on a busy 2-core machine may miss uvicorn's 5 s
            # health check and be killed at birth; a hung one is still replaced in a minute.
            timeout_worker_healthcheck=60,
            workers=workers,
            host=host,
            port=port,
            log_level="info",
            ws_per_message_deflate=False,
            forwarded_allow_ips=forwarded_allow_ips,
            **logging_options,
        )
    finally:
        if runner is not None:
            runner.stop()
            click.echo("Scheduler stopped.")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", required=True, type=click.IntRange(0, 65535), help="0: any free port.")
@click.option("--store", is_flag=True, help="Also record session events in the database.")
@click.option("--webhook", help="POST each session event as JSON to this URL.")
def signal(host: str, port: int, store: bool, webhook: str | None) -> None:
    """Run the signalling hub standalone (WebSocket at ws://HOST:PORT/).

    Keyed from TELEMED_SECRET_KEY like `telemed serve`, so its call tickets work here; shares
    rooms through TELEMED_REDIS_URL. Session events are printed as JSON lines. GET /metrics
    on the same port: its sockets and rooms (loopback, or TELEMED_METRICS_TOKEN).
    """
    import asyncio
    import contextlib

    from telemed.observability.signaling import metrics_responder
    from telemed.sessions import standalone

    settings = _settings()
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    engine = None
    if store:
        with _friendly_errors():
            engine = _prepare(settings)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            standalone.run(
                settings,
                host,
                port,
                engine=engine,
                webhook=webhook,
                echo=lambda line: click.echo(line),
                http=lambda hub: metrics_responder(hub.stats, token),
            )
        )


def _exit_on_signal(signum: int, _frame: FrameType | None) -> NoReturn:
    raise SystemExit(128 + signum)


def _announce_role(settings: Settings) -> Callable[[bool], None]:
    """Print each change of scheduler role (leader / standby)."""
    import os

    def announce(leader: bool) -> None:
        if leader:
            click.echo(f"Scheduler is leader (pid {os.getpid()}): running the periodic jobs.")
        else:
            click.echo(
                f"Scheduler on standby (pid {os.getpid()}): another process is leader; "
                f"retrying every {settings.scheduler_standby_poll_seconds:g} s."
            )

    return announce


@main.command()
@click.option("--verbose", "-v", is_flag=True, help="Also log every job run.")
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def scheduler(verbose: bool, log_format: str) -> None:
    """Run the periodic jobs standalone until SIGTERM or SIGINT.

    Run as many as you like, beside `telemed serve` too: exactly one process is leader (on
    PostgreSQL an advisory lock, on SQLite a lease in the database), the others wait on
    standby and take over when it dies.
    """
    import logging
    import threading

    from telemed.jobs import build_runner
    from telemed.observability.logs import configure

    settings = _settings()
    configure(log_format)  # INFO; apscheduler and alembic at WARNING
    if verbose:
        logging.getLogger("scheduling").setLevel(logging.DEBUG)
    with _friendly_errors():
        engine = _prepare(settings)
    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    os_signal.signal(os_signal.SIGTERM, on_signal)
    os_signal.signal(os_signal.SIGINT, on_signal)
    runner = build_runner(engine, settings, on_change=_announce_role(settings))
    with _friendly_errors():
        runner.start()
    try:
        while not stopping.wait(1.0):
            pass
    finally:
        runner.stop()
        engine.dispose()
    click.echo("Scheduler stopped.")


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply the migrations up to REVISION."""
    from telemed.migrate import upgrade

    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with _friendly_errors():
        upgrade(make_engine(settings.sqlalchemy_url), revision)
    click.echo(f"Database at {revision}.")


@main.command()
def demo() -> None:
    """Seed demo data (districts, facilities, a user of every role, consults)."""
    from telemed.demo.seed import seed_demo

    settings = _settings()
    with _friendly_errors():
        engine = _prepare(settings)
        with Units(engine).one() as session:
            seeded = seed_demo(session, settings)
        if not seeded:
            click.echo("The database already has users; demo data not added.")
        _print_demo_users(engine)


@main.group()
def users() -> None:
    """User accounts."""


@users.command("create")
@click.option("--email", required=True)
@click.option("--name", "full_name", required=True, help="Full name as shown to others.")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--facility", "facility_code", help="Facility code (required for clinicians).")
@click.option("--timezone", help="IANA zone, e.g. Europe/London (default by role).")
@click.option("--phone", help="Mobile number for SMS notices, e.g. +26658123456.")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="Prompted for if not given.",
)
def users_create(
    email: str,
    full_name: str,
    role: str,
    facility_code: str | None,
    timezone: str | None,
    phone: str | None,
    password: str,
) -> None:
    """Create a user account."""
    from telemed.accounts import service
    from telemed.demo.seed import seed_facilities

    settings = _settings()
    with _friendly_errors():
        engine = _prepare(settings)
        with Units(engine).one() as session:
            seed_facilities(session)
            user = service.create_user(
                session,
                settings,
                email=email,
                full_name=full_name,
                role=Role(role),
                password=password,
                facility_code=facility_code,
                timezone=timezone,
                phone=phone,
            )
    click.echo(f"Created {user.role} {user.email} (id {user.id}).")


def _user_by_email(session: Session, email: str) -> User:
    from telemed.accounts import repository

    found = repository.get_user_by_email(session, email)
    if found is None:
        raise click.ClickException(f"no user with e-mail {email.strip().lower()}")
    return found


@users.command("deactivate")
@click.argument("email")
def users_deactivate(email: str) -> None:
    """Deactivate an account: no login, its sessions end (within the other processes'
    session cache lifetime), its open offers go to the next specialist. Records are kept."""
    from telemed import flows
    from telemed.accounts import service
    from telemed.clock import SYSTEM_CLOCK
    from telemed.offers.policy import OfferPolicy

    settings = _settings()
    with _friendly_errors():
        engine = _prepare(settings)
        with Units(engine).one() as session:
            found = _user_by_email(session, email)
            now = SYSTEM_CLOCK.now()
            user = service.deactivate_user(session, pk(found), by=None, cache=None, now=now)
            flows.user_deactivated(session, user, OfferPolicy.from_settings(settings), now)
    click.echo(f"Deactivated {user.role} {user.email} (id {user.id}).")


@users.command("mfa-reset")
@click.argument("email")
def users_mfa_reset(email: str) -> None:
    """Turn off a user's two-step login (a lost phone and no recovery code left, or a new
    app secret): their next login sets it up again if their role requires it. Audited."""
    from telemed.mfa import service as mfa

    settings = _settings()
    with _friendly_errors():
        engine = _prepare(settings)
        with Units(engine).one() as session:
            found = _user_by_email(session, email)
            mfa.disable(session, found, by=None)
    click.echo(f"Two-step login turned off for {found.email}.")


@main.group()
def mailbox() -> None:
    """The local mailbox: e-mail sent while no SMTP server is set (TELEMED_SMTP_HOST)."""


@mailbox.command("list")
def mailbox_list() -> None:
    """Number, date, recipient and subject of every message, oldest first."""
    from telemed.notifications import maildir

    settings = _settings()
    path = maildir.path_in(settings.data_dir)
    found = maildir.messages(path)
    if not found:
        click.echo(f"No messages in {path}.")
        return
    for item in found:
        click.echo(f"{item.number:>4}  {item.date:<31}  {item.to:<40}  {item.subject}")


@mailbox.command("show")
@click.argument("number", type=click.IntRange(min=1))
def mailbox_show(number: int) -> None:
    """Show message NUMBER (as numbered by `telemed mailbox list`)."""
    from telemed.notifications import maildir

    settings = _settings()
    found = maildir.messages(maildir.path_in(settings.data_dir))
    if number > len(found):
        raise click.BadParameter(
            f"there are {len(found)} message(s); see `telemed mailbox list`",
            param_hint="NUMBER",
        )
    item = found[number - 1]
    for header in ("Date", "From", "To", "Subject"):
        click.echo(f"{header}: {item.message.get(header, '')}")
    names = item.attachment_names()
    if names:
        click.echo(f"Attachments: {', '.join(names)}")
    click.echo("")
    click.echo(item.text().rstrip())


@main.group()
def specialties() -> None:
    """The list of specialties consults can ask for."""


@specialties.command("add")
@click.argument("code")
@click.argument("name")
def specialties_add(code: str, name: str) -> None:
    """Add (or re-activate) a specialty CODE with display NAME."""
    from telemed.consults.models import Specialty

    if not code.replace("_", "").isalnum() or code.lower() != code:
        raise click.BadParameter(
            "use lower-case letters, digits and underscores", param_hint="CODE"
        )
    settings = _settings()
    with _friendly_errors():
        engine = _prepare(settings)
        with Units(engine).one() as session:
            session.merge(Specialty(code=code, name=name, active=True))
    click.echo(f"Specialty {code} ({name}) available.")


@main.group()
def audit() -> None:
    """The hash-chained audit trail."""


def _audit_engine(settings: Settings) -> Engine:
    """An engine for reading the chain: on SQLite without taking the write lock (so that
    verifying a long chain never holds up writers or the sealer)."""
    return make_engine(settings.sqlalchemy_url, sqlite_immediate=False)


@audit.command("seal")
def audit_seal() -> None:
    """Seal every committed audit row now (the scheduler does it every few seconds)."""
    from telemed.audit import sealer, service

    settings = _settings()
    with _friendly_errors():
        engine = make_engine(settings.sqlalchemy_url)
        sealed = sealer.seal_pending(engine)
        with Session(engine) as session:
            head = service.head(session)
    length, digest = head if head else (0, "none")
    click.echo(f"Sealed {sealed} rows; the chain has {length} rows, last hash {digest}.")


@audit.command("verify")
@click.option("--seal", "seal_first", is_flag=True, help="Seal the committed rows first.")
def audit_verify(seal_first: bool) -> None:
    """Walk the sealed audit chain; exit 1 naming the first row altered, inserted or
    removed. Rows not sealed yet are counted apart: no hash covers them yet."""
    from telemed.audit import sealer, service
    from telemed.clock import SYSTEM_CLOCK

    settings = _settings()
    with _friendly_errors():
        engine = _audit_engine(settings)
        if seal_first:
            click.echo(f"Sealed {sealer.seal_pending(make_engine(settings.sqlalchemy_url))} rows.")
        reading = engine
        if engine.dialect.name == "postgresql":  # one snapshot for the walk and the tail
            reading = engine.execution_options(isolation_level="REPEATABLE READ")
        with Session(reading) as session:
            report = service.verify(session)
    if report.broken is None:
        click.echo(f"Audit chain intact: {report.sealed} rows.")
    else:
        click.echo(
            f"Audit chain broken after {report.sealed} intact rows: {report.broken}", err=True
        )
    if report.unsealed:
        oldest = report.oldest_unsealed_at or SYSTEM_CLOCK.now()
        age = max((SYSTEM_CLOCK.now() - oldest).total_seconds(), 0.0)
        every = sealer.SEAL_EVERY.total_seconds()
        click.echo(
            f"Not sealed yet: {report.unsealed} rows, the oldest written {age:.0f} s ago "
            f"(the scheduler seals every {every:g} s; `telemed audit seal` seals now)."
        )
        if age > sealer.STALE_AFTER.total_seconds():
            click.echo("Warning: is the scheduler running? No hash protects unsealed rows yet.")
    if report.broken is not None:
        sys.exit(1)


@main.group()
def fhir() -> None:
    """FHIR R4 export of consults (docs/interop.md)."""


@fhir.command("export")
@click.option(
    "--since",
    required=True,
    metavar="DATE",
    help="YYYY-MM-DD: consults created or changed since the start of that day (Maseru).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A new (or empty) directory: written whole, or not at all.",
)
def fhir_export(since: str, out: Path) -> None:
    """Write every consult created or changed since DATE as bulk NDJSON, one file per
    resource type, with a manifest. Each consult exported is audited."""
    from zoneinfo import ZoneInfo

    from telemed.clock import SYSTEM_CLOCK
    from telemed.interop.fhir import bulk

    settings = _settings()
    with _friendly_errors():
        now = SYSTEM_CLOCK.now()
        start = bulk.parse_since(since, ZoneInfo(settings.default_timezone), now)
        engine = _prepare(settings)
        reading = bulk.reading_engine(settings.sqlalchemy_url)
        report = bulk.export(reading, Units(engine), out, start, now, settings.public_base_url)
    counts = ", ".join(f"{n} {t}" for t, n in report.counts.items()) or "no resources"
    click.echo(f"Exported {report.consults} consults to {out.absolute()}: {counts}.")


main.add_command(dhis2_commands(_settings, _prepare))  # `telemed dhis2 export|push`
for _command in backup_commands(_settings, _friendly_errors):  # `telemed backup`, `telemed restore`
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
