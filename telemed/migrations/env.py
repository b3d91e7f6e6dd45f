"""Alembic environment: runs against the connection handed in by ``telemed.migrate`` or,
from the ``alembic`` command line, against the URL in the settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from telemed.db import make_engine
from telemed.models import metadata
from telemed.settings import get_settings

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = config.get_main_option("sqlalchemy.url") or get_settings().sqlalchemy_url
    engine = make_engine(url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()
