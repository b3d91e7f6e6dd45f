"""Copying the database out and back in, for each kind.

- **SQLite**: the online backup API (``sqlite3.Connection.backup``) copies the pages of one
  read snapshot, so the copy is consistent while the server writes (WAL: the copy holds no
  lock that a writer waits for). A restore is the same API the other way round: the target
  file's whole content is replaced in one step, under its write lock.
- **PostgreSQL**: ``pg_dump -Fc`` reads one snapshot (consistent while the server runs). A
  restore turns the dump into SQL (``pg_restore -f -``) and runs it with ``psql`` in one
  transaction after dropping and recreating the schema ``public``: all or nothing. The
  password goes through ``PGPASSWORD``, never the command line (``ps`` shows that).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import URL

from telemed.backup.archive import BackupError

SQLITE_PART = "database.sqlite3"
POSTGRES_PART = "database.pgdump"
# Rows in any of these mean the database holds someone's data (a restore needs --force).
DATA_TABLES = ("users", "cases", "consults", "audit_log")


def part_name(kind: str) -> str:
    return SQLITE_PART if kind == "sqlite" else POSTGRES_PART


def _sqlite_path(engine: Engine) -> str:
    database = engine.url.database
    if not database or database == ":memory:":
        raise BackupError("the SQLite database is in memory: nothing to back up")
    return database


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq URL without the password, and the environment that carries it."""
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed (the PostgreSQL client tools)")
    return found


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    # Our own arguments, no shell: nothing from outside is interpreted.
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise BackupError(f"{what} failed: {done.stderr.strip() or done.returncode}")


def _sqlite_copy(source_path: str, target_path: str) -> None:
    """The online backup API: one read snapshot of the source replaces the target's whole
    content, under the target's write lock (waiting up to 30 s for another writer)."""
    source = sqlite3.connect(source_path)
    target = sqlite3.connect(target_path, timeout=30)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def dump(engine: Engine, out: Path) -> None:
    """Write a consistent copy of ``engine``'s database to ``out``."""
    if engine.dialect.name == "sqlite":
        _sqlite_copy(_sqlite_path(engine), str(out))
        return
    url, env = _libpq(engine.url)
    command = [_tool("pg_dump"), "-Fc", "--no-owner", "--no-privileges", "-f", str(out), url]
    _run(command, env, "pg_dump")


def holds_data(engine: Engine) -> bool:
    """Whether the target has rows in a table holding people's data (a migrated but empty
    database does not)."""
    present = set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        for table in DATA_TABLES:
            query = text(f"SELECT 1 FROM {table} LIMIT 1")  # noqa: S608 - our constant names
            if table in present and conn.execute(query).first():
                return True
    return False


def load(engine: Engine, part: Path) -> None:
    """Replace the whole content of ``engine``'s database by the dump ``part``."""
    engine.dispose()  # no pooled connection of ours holds the old database open
    if engine.dialect.name == "sqlite":
        _sqlite_copy(str(part), _sqlite_path(engine))
        return
    url, env = _libpq(engine.url)
    pg_restore, psql_tool = _tool("pg_restore"), _tool("psql")
    restore = subprocess.Popen(  # noqa: S603 - our own arguments, no shell
        [pg_restore, "--no-owner", "--no-privileges", "-f", "-", str(part)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert restore.stdout is not None
    psql = subprocess.run(  # noqa: S603 - our own arguments, no shell
        [
            *(psql_tool, "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1"),
            *("-c", "DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;"),
            *("-f", "-", url),
        ],
        env=env,
        stdin=restore.stdout,
        capture_output=True,
        text=True,
        check=False,
    )
    restore.stdout.close()
    _, restore_errors = restore.communicate()
    if restore.returncode != 0:
        raise BackupError(f"pg_restore failed: {restore_errors.decode().strip()}")
    if psql.returncode != 0:
        raise BackupError(f"loading the dump failed (nothing changed): {psql.stderr.strip()}")
