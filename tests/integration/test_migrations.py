"""Migrations build the schema the models describe, on SQLite and on PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from broadcasts.db import make_engine
from broadcasts.models import Base
from migrations import current_revision, head_revision, run_upgrade


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
