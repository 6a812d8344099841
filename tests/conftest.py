"""Shared fixtures: real SQLite and PostgreSQL databases built by the migrations, real Redis."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from bot.ops import devservers
from bot.slack import job_handlers
from broadcasts.db import make_engine, make_session_factory, transaction
from broadcasts.models import Base
from migrations import run_upgrade

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"
# Set by pytest_configure before any test module imports them (xdist workers: from the environment).
POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
REDIS_BASE_URL = os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS_URL)
_private_servers: list[devservers.Choice] = []
_SERVICE_LINES = pytest.StashKey[list[str]]()


@pytest.fixture(autouse=True, scope="session")
def _adapter_handlers() -> None:
    """Tests build their own runtimes, so they register the Slack adapter's job handlers as
    `broadcast-bot` and the web server do when they start."""
    job_handlers.register()


def pytest_configure(config: pytest.Config) -> None:
    """Use the servers at TEST_REDIS_URL / TEST_POSTGRES_URL, else the defaults, else private ones
    started for this run; xdist workers inherit the choice through the environment."""
    global POSTGRES_ADMIN_URL, REDIS_BASE_URL
    if hasattr(config, "workerinput") or config.option.collectonly:
        return
    for variable, default, kind in (
        ("TEST_REDIS_URL", DEFAULT_REDIS_URL, devservers.REDIS),
        ("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL, devservers.POSTGRES),
    ):
        configured = os.environ.get(variable)
        try:
            choice = devservers.choose(
                kind, configured or default, configured_by=variable if configured else None
            )
        except (devservers.ServerUnavailable, RuntimeError) as exc:
            _stop_private_servers()
            hint = "" if configured else f"; or set {variable} to a running server"
            raise pytest.UsageError(f"{exc}{hint}") from None
        if choice.server is not None:
            _private_servers.append(choice)
            os.environ[variable] = choice.url
        config.stash[_SERVICE_LINES] = [*config.stash.get(_SERVICE_LINES, []), choice.line]
    REDIS_BASE_URL = os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS_URL)
    POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def pytest_report_header(config: pytest.Config) -> list[str]:
    return config.stash.get(_SERVICE_LINES, [])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """`-q` hides the header: say again which private servers this run used."""
    for choice in _private_servers:
        terminalreporter.write_line(choice.line)


def pytest_unconfigure(config: pytest.Config) -> None:
    _stop_private_servers()


def _stop_private_servers() -> None:
    while _private_servers:
        _private_servers.pop().stop()


def _worker_number() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker.removeprefix("gw") or 0)


# Redis databases by purpose, one per test process (up to three processes): suites that run RQ
# workers must not share a database with another process, whose burst workers would take their
# jobs and whose flushes would drop them.
SHARED_DB, WEBHOOKS_DB, DOCTOR_DB, METRICS_DB = range(4)


def redis_db_for(purpose: int) -> int:
    return 1 + purpose * 3 + _worker_number() % 3


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test process, dropped at the end."""
    name = f"bb_test_{_worker_number()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("db") / "broadcasts.db"
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def migrated(sqlite_url: str, postgres_url: str) -> dict[str, str]:
    run_upgrade(sqlite_url)
    run_upgrade(postgres_url)
    return {"sqlite": sqlite_url, "postgresql": postgres_url}


def _truncate(engine: Engine) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(tables) + " RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, migrated: dict[str, str]) -> Iterator[str]:
    """The URL of a migrated, empty database; every test using it runs on both backends."""
    url = migrated[request.param]
    yield url
    engine = make_engine(url)
    _truncate(engine)
    engine.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction per test body, committed at the end (so later fixtures see the data)."""
    with transaction(sessions) as s:
        yield s


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database of its own for this test process, flushed before and after."""
    url = f"{REDIS_BASE_URL}/{redis_db_for(SHARED_DB)}"
    client = Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()
