"""Migrations produce exactly the schema declared in qixin.store.schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from conftest import real_migrate
from sqlalchemy import create_engine

from qixin.store.migrate import alembic_config, migrate
from qixin.store.partitions import include_name
from qixin.store.schema import metadata


def _diff(url: str) -> list:  # type: ignore[type-arg]
    engine = create_engine(alembic_config(url).get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"include_name": include_name}), metadata)
    engine.dispose()
    return diff


def test_migrations_match_schema(empty_db_url: str) -> None:
    """Alembic itself, from an empty database (no template copy)."""
    real_migrate(empty_db_url)
    real_migrate(empty_db_url)  # idempotent
    diff = _diff(empty_db_url)
    assert diff == [], diff


def test_test_databases_start_at_the_newest_schema(db_url: str) -> None:
    """The per-session templates (tests/conftest.py) that tests' databases are copied from match the schema."""
    migrate(db_url)
    diff = _diff(db_url)
    assert diff == [], diff
