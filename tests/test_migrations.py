"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect
from sqlalchemy.sql import ClauseElement

from telemed.app import create_app
from telemed.db import make_engine
from telemed.migrate import alembic_config, upgrade
from telemed.models import metadata
from telemed.settings import Environment, Settings
from tests.conftest import downgrade


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_specialties_are_seeded_by_migration(engine: Engine) -> None:
    with engine.connect() as connection:
        codes = {row[0] for row in connection.exec_driver_sql("SELECT code FROM specialties")}
    assert {"paediatrics", "internal_medicine", "obstetrics_gynaecology"} <= codes
    assert "alembic_version" in inspect(engine).get_table_names()


def test_readyz_reports_an_unreachable_database(tmp_path: object) -> None:
    settings = Settings(
        env=Environment.test, database_url="postgresql+psycopg://nobody@127.0.0.1:1/none"
    )
    app = create_app(settings, make_engine(settings.sqlalchemy_url, pool_pre_ping=False))
    with TestClient(app) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["status"] == "unavailable"
        assert client.get("/healthz").status_code == 200


# --- every migration undone and redone ------------------------------------------------------


def _plain(value: Any) -> Any:
    """``value`` with SQL expressions (a partial index's WHERE) as their text, comparable."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, ClauseElement):
        return str(value)
    return value


def _by_name(items: list[Any]) -> list[Any]:
    return sorted(map(_plain, items), key=lambda item: str(item.get("name")))


POSTGRES_OBJECTS = {
    "triggers": "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) "
    "FROM pg_trigger WHERE NOT tgisinternal",
    "functions": "SELECT proname, pg_get_function_identity_arguments(oid), prosrc "
    "FROM pg_proc WHERE pronamespace = 'public'::regnamespace",
    "types": "SELECT t.typname, t.typtype, array_to_string(array_agg(e.enumlabel "
    "ORDER BY e.enumsortorder), ',') FROM pg_type t LEFT JOIN pg_enum e ON e.enumtypid = t.oid "
    "WHERE t.typnamespace = 'public'::regnamespace AND t.typtype IN ('e', 'd') "
    "GROUP BY t.typname, t.typtype",
    "sequences": "SELECT sequence_name, data_type, start_value FROM information_schema.sequences "
    "WHERE sequence_schema = 'public'",
}
SQLITE_OBJECTS = {
    "triggers": "SELECT tbl_name, name, sql FROM sqlite_master WHERE type = 'trigger'",
    "views": "SELECT tbl_name, name, sql FROM sqlite_master WHERE type = 'view'",
}


def schema_of(engine: Engine) -> dict[str, Any]:
    """Tables (columns in order, keys, indexes, constraints) and the objects ``inspect``
    does not see: triggers, and on PostgreSQL functions, enum and domain types, sequences.
    Alembic's own table is left out: it stays, empty, after a downgrade to base."""
    inspector = inspect(engine)
    found: dict[str, Any] = {}
    for table in sorted(set(inspector.get_table_names()) - {"alembic_version"}):
        found[f"table {table}"] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                for c in inspector.get_columns(table)
            ],
            "primary key": inspector.get_pk_constraint(table),
            "foreign keys": sorted(map(repr, map(_plain, inspector.get_foreign_keys(table)))),
            "indexes": _by_name(inspector.get_indexes(table)),
            "unique": _by_name(inspector.get_unique_constraints(table)),
            "checks": _by_name(inspector.get_check_constraints(table)),
        }
    queries = POSTGRES_OBJECTS if engine.dialect.name == "postgresql" else SQLITE_OBJECTS
    with engine.connect() as connection:
        for kind, query in queries.items():
            found[kind] = sorted(tuple(row) for row in connection.exec_driver_sql(query))
    return found


def differences(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """What differs, named: ``table users: columns``, ``triggers``, ... (readable failures)."""
    out = []
    for key in sorted(expected.keys() | actual.keys()):
        if key not in actual:
            out.append(f"{key}: missing")
        elif key not in expected:
            out.append(f"{key}: left over {actual[key]!r}"[:400])
        elif isinstance(expected[key], dict):
            out += [
                f"{key}: {part}: {expected[key][part]!r} != {actual[key][part]!r}"[:400]
                for part in expected[key]
                if expected[key][part] != actual[key][part]
            ]
        elif expected[key] != actual[key]:
            gone = [x for x in expected[key] if x not in actual[key]]
            extra = [x for x in actual[key] if x not in expected[key]]
            out.append(f"{key}: missing {gone!r}, left over {extra!r}"[:400])
    return out


def test_every_migration_downgrades_to_the_schema_it_upgraded_from(
    empty_database: Engine, engine: Engine
) -> None:
    """Up one revision at a time from nothing, recording the schema at each; then down one
    at a time, each step must give back exactly the schema recorded for the revision below
    it (down to nothing at all); then up to head again gives the schema of a database
    migrated straight to head (the shared test database, ``engine``)."""
    roundtrip = empty_database
    revisions = [
        script.revision
        for script in reversed(list(ScriptDirectory.from_config(alembic_config()).walk_revisions()))
    ]
    assert len(revisions) >= 10
    recorded = {"base": schema_of(roundtrip)}
    assert all(found == [] for found in recorded["base"].values())  # really empty
    for revision in revisions:
        upgrade(roundtrip, revision)
        recorded[revision] = schema_of(roundtrip)

    below = ["base", *revisions[:-1]]
    for revision, previous in reversed(list(zip(revisions, below, strict=True))):
        downgrade(roundtrip, previous)
        assert differences(recorded[previous], schema_of(roundtrip)) == [], (
            f"downgrading {revision} to {previous}"
        )

    upgrade(roundtrip)
    straight = schema_of(engine)
    assert differences(straight, recorded[revisions[-1]]) == []
    assert differences(straight, schema_of(roundtrip)) == []
    with roundtrip.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
