"""Test fixtures: the real application on a real database, built by the migrations.

Every database test runs twice, on SQLite and on PostgreSQL (127.0.0.1:5432). Choose with
TELEMED_TEST_BACKENDS=sqlite,postgresql. Outside CI a PostgreSQL that cannot be reached is
skipped with a reason; in CI (CI=true) it fails the run, and so does a list without postgresql.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from telemed.accounts.models import User
from telemed.app import create_app
from telemed.db import make_engine
from telemed.demo.seed import seed_facilities
from telemed.migrate import alembic_config, upgrade
from telemed.offers.policy import OfferPolicy
from telemed.settings import Environment, Settings
from telemed.uow import Units
from tests.helpers import ApiClient, ManualClock, Users
from tests.notification_helpers import sms_gateway, smtp_server  # noqa: F401 - fixtures

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_ADMIN_URL = os.environ.get(
    "TELEMED_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = [b for b in os.environ.get("TELEMED_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]
# Tables filled by migrations, not by tests.
REFERENCE_TABLES = {"specialties", "alembic_version"}


def require_service(name: str, reason: str) -> None:
    """Skip outside CI; in CI a missing service is a failure, never a skip."""
    if IN_CI:
        pytest.fail(f"{name} is required in CI: {reason}")
    pytest.skip(f"{name} unavailable: {reason}")


@pytest.fixture(scope="session", autouse=True)
def every_backend_in_ci() -> None:
    """In CI the list of backends may not leave PostgreSQL out: a green run on SQLite alone
    would say nothing about the database production uses. Outside CI it may."""
    if IN_CI and "postgresql" not in BACKENDS:
        require_service(
            "PostgreSQL",
            f"TELEMED_TEST_BACKENDS={','.join(BACKENDS)} leaves it out; "
            "unset it or include postgresql",
        )


@dataclass
class Database:
    backend: str
    url: str
    template: Path | None = None  # SQLite: a migrated file copied for each test


@contextmanager
def throwaway_postgres(prefix: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        require_service("PostgreSQL", str(exc.orig).strip())
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    with throwaway_postgres("telemed_test") as url:
        engine = make_engine(url, pool_size=5)
        upgrade(engine)  # the schema comes from the migrations, as in production
        engine.dispose()
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "telemed.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # closing the last connection checkpoints the WAL into the file
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test marked ``postgres_only`` keeps its PostgreSQL run alone. The slow fuzzers and
    page walks check the application, not the database: twice would only double CI's time
    (the input that broke only one database, NUL bytes, breaks PostgreSQL)."""
    dropped = [
        item
        for item in items
        if item.get_closest_marker("postgres_only") is not None
        and getattr(item, "callspec", None) is not None
        and item.callspec.params.get("backend") == "sqlite"  # type: ignore[attr-defined]
    ]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def engine(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "telemed.sqlite3"
        shutil.copy(template, path)
        eng = make_engine(f"sqlite:///{path}")
    else:
        url: str = request.getfixturevalue("postgres_database")
        eng = make_engine(url, pool_size=5)
        _truncate(eng)
    yield eng
    eng.dispose()


def _truncate(engine: Engine) -> None:
    from telemed.models import metadata

    tables = [t.name for t in metadata.sorted_tables if t.name not in REFERENCE_TABLES]
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


@pytest.fixture
def settings(tmp_path: Path, engine: Engine) -> Settings:
    return Settings(
        env=Environment.test,
        data_dir=tmp_path / "data",
        database_url=str(engine.url.render_as_string(hide_password=False)),
        login_max_failures=5,
        password_hashing="light",  # Argon2id at its cheapest: see telemed/accounts/security.py
    )


@pytest.fixture
def policy(settings: Settings) -> OfferPolicy:
    """The offer policy the application builds from the same settings."""
    return OfferPolicy.from_settings(settings)


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """The test's own session. On SQLite its transactions are deferred, so that a test
    holding a read open does not block the application's writers."""
    own = make_engine(engine.url.render_as_string(hide_password=False), sqlite_immediate=False)
    with Session(own, expire_on_commit=False) as session:
        seed_facilities(session)
        session.commit()
        yield session
    own.dispose()


@pytest.fixture
def units(engine: Engine) -> Units:
    """Units of work on the application's engine, as the job runner and the command line
    make them (for calling a job body or a multi-step service directly)."""
    return Units(engine)


@pytest.fixture
def clock() -> ManualClock:
    """The application's clock: real time unless the test pins it (``clock.set(T0)``)."""
    return ManualClock()


@pytest.fixture
def client(
    settings: Settings, engine: Engine, db: Session, clock: ManualClock
) -> Iterator[TestClient]:
    app = create_app(settings, engine, clock)
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client


@pytest.fixture
def users(db: Session, settings: Settings) -> Users:
    return Users(db, settings)


LoginFn = Callable[[User], ApiClient]


@pytest.fixture
def login(settings: Settings, engine: Engine, db: Session, clock: ManualClock) -> Iterator[LoginFn]:
    """``login(user)`` gives an ``ApiClient`` with its own cookie jar, on the app's clock."""
    clients: list[TestClient] = []

    def _login(user: User) -> ApiClient:
        test_client = TestClient(create_app(settings, engine, clock), base_url="http://testserver")
        clients.append(test_client)
        return ApiClient(test_client, user)

    yield _login
    for c in clients:
        c.close()


@pytest.fixture
def empty_database(backend: str, tmp_path: Path) -> Iterator[Engine]:
    """A database of its own, with nothing in it: the shared test databases are migrated
    already, and a migration test takes its database up and down."""
    with ExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path / 'roundtrip.sqlite3'}"
        else:
            url = stack.enter_context(throwaway_postgres("telemed_migrations"))
        engine = make_engine(url)
        stack.callback(engine.dispose)
        yield engine


def downgrade(engine: Engine, revision: str) -> None:
    """``telemed.migrate.upgrade``'s counterpart, for the migration tests."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
