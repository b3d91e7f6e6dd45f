"""``telemed backup`` and ``telemed restore``.

Built by ``telemed.cli`` with its settings loader, so that the settings are read in one
place and handed down. A refusal (damaged archive, newer revision, a target holding data,
a failing ``pg_dump``) is a message and exit status 1, with nothing changed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import click

from telemed.clock import SYSTEM_CLOCK
from telemed.db import make_engine
from telemed.settings import Settings
from telemed.uow import Units


def backup_commands(
    load_settings: Callable[[], Settings], errors: Callable[[], AbstractContextManager[None]]
) -> list[click.Command]:
    """The ``backup`` and ``restore`` commands; ``load_settings`` and ``errors`` (our errors
    and an unreachable database as a message and exit status 1) are the CLI's."""

    @click.command("backup")
    @click.option(
        "--to",
        "to",
        type=click.Path(file_okay=False, path_type=Path),
        help="Directory for the archive (default: TELEMED_BACKUP_DIR).",
    )
    def backup(to: Path | None) -> None:
        """Back up the database (consistent while the server runs) and the attachment
        store into one new archive directory, with a manifest of sha256 sums."""
        from telemed.backup.service import create_backup

        settings = load_settings()
        directory = to or settings.backup_dir
        if directory is None:
            raise click.ClickException("no backup directory: give --to or set TELEMED_BACKUP_DIR")
        with errors():
            engine = make_engine(settings.sqlalchemy_url)
            made = create_backup(Units(engine), settings.data_dir, directory, SYSTEM_CLOCK.now())
        click.echo(f"Backup written to {made}")

    @click.command("restore")
    @click.argument("archive", type=click.Path(path_type=Path))
    @click.option("--force", is_flag=True, help="Replace a database that holds data.")
    def restore(archive: Path, force: bool) -> None:
        """Restore ARCHIVE into the configured database and data directory (stop the
        server first), then verify the audit chain; exit 1 if it is broken."""
        from telemed.backup.service import restore_backup

        settings = load_settings()
        with errors():
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            engine = make_engine(settings.sqlalchemy_url)
            done = restore_backup(engine, settings.data_dir, archive, force=force)
        made = done.manifest
        click.echo(
            f"Restored {archive} (made {made.created_at:%Y-%m-%d %H:%M:%S} UTC, "
            f"{made.database}, revision {made.revision}): {done.blobs} attachment files."
        )
        chain = done.chain
        if chain.broken is not None:
            click.echo(f"Audit chain broken after {chain.sealed} intact rows: {chain.broken}")
            sys.exit(1)
        if made.audit_head is not None and chain.sealed < made.audit_head[0]:
            click.echo(
                f"Audit chain shorter than at the backup: {chain.sealed} rows, "
                f"{made.audit_head[0]} then (last hash {made.audit_head[1]})."
            )
            sys.exit(1)
        click.echo(f"Audit chain intact: {chain.sealed} rows ({chain.unsealed} not sealed yet).")

    return [backup, restore]
