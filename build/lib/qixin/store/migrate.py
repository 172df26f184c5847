"""Alembic migrations, run programmatically (``qixin migrate`` and on ``qixin run``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from qixin.store.db import pg_dsn

HERE = Path(__file__).parent


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE / "migrations"))
    if url.startswith("postgres"):
        url = "postgresql+psycopg://" + pg_dsn(url)[len("postgresql://") :]
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest schema."""
    if url.startswith("sqlite"):
        Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    # "heads": independent branches (one per feature area, each starting from 0001) all apply
    command.upgrade(alembic_config(url), "heads")
