"""Migrations produce exactly the schema declared in qixin.store.schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from qixin.store.migrate import alembic_config, migrate
from qixin.store.schema import metadata


def test_migrations_match_schema(db_url: str) -> None:
    migrate(db_url)
    migrate(db_url)  # idempotent
    engine = create_engine(alembic_config(db_url).get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == [], diff
