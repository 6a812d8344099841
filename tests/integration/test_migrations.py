"""Migrations build the schema the models describe, on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, make_url, text

from broadcasts.db import make_engine
from broadcasts.models import Base
from migrations import alembic_config, current_revision, head_revision, run_upgrade
from tests.conftest import POSTGRES_ADMIN_URL


def test_migrations_reach_head_and_match_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_every_domain_table_exists(db_url: str) -> None:
    engine = make_engine(db_url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {
        "whatsapp_configs",
        "agents",
        "templates",
        "contacts",
        "broadcasts",
        "recipients",
        "imports",
        "inbox_events",
        "conversations",
        "messages",
        "agent_deliveries",
        "audit_log",
    } <= tables


def test_upgrade_is_idempotent(db_url: str) -> None:
    run_upgrade(db_url)
    engine = make_engine(db_url)
    assert current_revision(engine) == head_revision()
    engine.dispose()


PREVIOUS_RELEASE_HEAD = "0012_platforms"  # what databases of the previous release are stamped at
PREVIOUS_RELEASE_REVISIONS = {"0001", "0012_platforms"}  # and what they have applied


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'previous.db'}"
        return
    name = f"bb_prev_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_a_database_of_the_previous_release_upgrades_to_the_models(empty_db_url: str) -> None:
    # Revisions added since are chained after the previous head, never before it: a database
    # stamped at that head would otherwise count them as applied and skip them.
    script = ScriptDirectory.from_config(alembic_config(empty_db_url))
    below = {r.revision for r in script.iterate_revisions(PREVIOUS_RELEASE_HEAD, "base")}
    assert below == PREVIOUS_RELEASE_REVISIONS
    run_upgrade(empty_db_url, PREVIOUS_RELEASE_HEAD)
    run_upgrade(empty_db_url)
    engine = make_engine(empty_db_url)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []
