"""Bring a database up to date: the library's event tables, then our Alembic migrations."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text

import migrations
from service.runtime.database import Database
from service.store.eventstore import Nominals, store_env

# The Alembic scripts travel as the installed package `migrations` (its .py files are package data).
MIGRATIONS = Path(migrations.__file__).resolve().parent
MIGRATION_LOCK = 7_413_001  # pg_advisory_lock key: one migrator at a time


def migrate(db: Database) -> None:
    """Create or upgrade every table; safe to run from several processes at once."""
    engine = create_engine(db.sqlalchemy_url("psycopg"), poolclass=None)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
            conn.commit()
            try:
                env = store_env(db.eventsourcing_env(), pool_size=1, cipher_key=None)
                env["CREATE_TABLE"] = "yes"
                app = Nominals(env=env)
                app.close()
                config = Config()
                config.set_main_option("script_location", str(MIGRATIONS))
                config.attributes["connection"] = conn
                command.upgrade(config, "heads")  # each capability may add its own branch
                conn.commit()
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
                conn.commit()
    finally:
        engine.dispose()
