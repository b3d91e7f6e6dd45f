"""``telemed dhis2 export`` and ``telemed dhis2 push``.

Built by ``telemed.cli`` with its settings loader and database preparation, so that the
settings are read in one place and handed down; each command is its own units of work
(``telemed.interop.dhis2.service``). A bad period, a missing or wrong mapping file, a DHIS2
that refuses or does not answer: a message naming what is wrong and exit status 1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from telemed.clock import SYSTEM_CLOCK
from telemed.errors import TelemedError
from telemed.settings import Settings
from telemed.uow import Units

FORMATS = ("json", "adx")


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except TelemedError as exc:
        raise click.ClickException(exc.message) from exc
    except OperationalError as exc:
        raise click.ClickException(f"cannot use the database: {exc.orig}") from exc


def _mapping(settings: Settings, given: Path | None) -> Path:
    path = given or settings.dhis2_mapping
    if path is None:
        raise click.ClickException(
            "no mapping file: set TELEMED_DHIS2_MAPPING or give --mapping "
            "(deploy/dhis2/mapping.example.toml is an example)"
        )
    return path


def dhis2_commands(
    load_settings: Callable[[], Settings], prepare: Callable[[Settings], Engine]
) -> click.Group:
    """The ``dhis2`` command group; ``load_settings`` and ``prepare`` are the CLI's."""
    from telemed.interop.dhis2.payload import Format, Period
    from telemed.uptake.filters import maseru_today

    @click.group("dhis2")
    def group() -> None:
        """DHIS2 aggregate data: one month's counts per facility, as dataValueSets JSON or
        ADX, mapped by TELEMED_DHIS2_MAPPING (see docs/interop.md)."""

    period_option = click.option(
        "--period", required=True, help="A finished month, YYYY-MM (Maseru calendar)."
    )
    format_option = click.option(
        "--format", "fmt", type=click.Choice(FORMATS), default="json", show_default=True
    )
    mapping_option = click.option(
        "--mapping",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Mapping file (default: TELEMED_DHIS2_MAPPING).",
    )

    @group.command("export")
    @period_option
    @format_option
    @mapping_option
    @click.option(
        "--out",
        required=True,
        type=click.Path(path_type=Path, dir_okay=False, writable=True),
        help="File to write (replaced atomically; nothing is left on error).",
    )
    def export(period: str, fmt: str, mapping: Path | None, out: Path) -> None:
        """Write one month's data values to a file."""
        from telemed.interop.dhis2.service import export_file

        settings = load_settings()
        now = SYSTEM_CLOCK.now()
        with _errors():
            month = Period.parse(period, maseru_today(now))
            path = _mapping(settings, mapping)
            engine = prepare(settings)
            done = export_file(Units(engine), path, month, Format(fmt), out, now)
        click.echo(f"Wrote {done.payload.count} data values for {month} ({fmt}) to {done.path}.")

    @group.command("push")
    @period_option
    @format_option
    @mapping_option
    @click.option("--dry-run", is_flag=True, help="DHIS2 checks the data and stores nothing.")
    @click.option("--force", is_flag=True, help="Send again a month DHIS2 accepted already.")
    def push(period: str, fmt: str, mapping: Path | None, dry_run: bool, force: bool) -> None:
        """Post one month's data values to TELEMED_DHIS2_URL and report DHIS2's import
        summary; exit 1 on an error or any conflict."""
        from telemed.interop.dhis2.client import Dhis2Server
        from telemed.interop.dhis2.service import push_month

        settings = load_settings()
        now = SYSTEM_CLOCK.now()
        with _errors():
            month = Period.parse(period, maseru_today(now))
            path = _mapping(settings, mapping)
            server = Dhis2Server.from_settings(settings)
            engine = prepare(settings)
            done = push_month(
                Units(engine),
                server,
                path,
                month,
                now,
                fmt=Format(fmt),
                force=force,
                dry_run=dry_run,
            )
        summary = done.summary
        if summary is None:
            click.echo(
                f"{month} was pushed to DHIS2 already ({done.pushed_before:%Y-%m-%d %H:%M} UTC, "
                "data set " + done.data_set + "); nothing sent. Use --force to send it again."
            )
            return
        kind = "Dry run: DHIS2 checked" if dry_run else "Sent"
        click.echo(f"{kind} {done.values} data values for {month} to {server.endpoint}.")
        click.echo(f"Import summary: {summary.line()}")
        if summary.description:
            click.echo(f"  {summary.description}")
        for conflict in summary.conflicts:
            click.echo(f"  conflict: {conflict}", err=True)
        if not summary.ok:
            raise click.ClickException(
                f"DHIS2 did not take everything ({summary.status}, "
                f"{len(summary.conflicts)} conflict(s), {summary.ignored} ignored)"
            )

    return group
