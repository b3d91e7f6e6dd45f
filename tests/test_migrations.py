"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect

from telemed.app import create_app
from telemed.db import make_engine
from telemed.models import metadata
from telemed.settings import Environment, Settings


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
