"""Bring a database up to date: the library's event tables, then our Alembic migrations.

Migrations change tables, so they run as the tables' owner: `mappa-record migrate` with the
owner's URL (MAPPA_MIGRATE_URL or --url; docs/adr/026), once per release. Every other start
finds the database at the code's revision and changes nothing, so the service itself may run
as a role that can change no table; if it finds the database behind and cannot migrate it,
it stops with one line saying so.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.exc import DBAPIError

import migrations
from service.runtime.database import Database, DatabaseUnavailable
from service.store.eventstore import Nominals, store_env

# The Alembic scripts travel as the installed package `migrations` (its .py files are package data).
MIGRATIONS = Path(migrations.__file__).resolve().parent
MIGRATION_LOCK = 7_413_001  # pg_advisory_lock key: one migrator at a time


def _config(conn: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if conn is not None:
        config.attributes["connection"] = conn
    return config


def behind(conn: Connection) -> tuple[set[str], set[str]]:
    """(the revisions the database is at, the heads this code wants); equal: nothing to do."""
    wanted = set(ScriptDirectory.from_config(_config()).get_heads())
    at = set(MigrationContext.configure(conn).get_current_heads())
    return at, wanted


def migrate(db: Database) -> None:
    """Create or upgrade every table; safe to run from several processes at once. A database
    already at this code's revision is left alone (no DDL: a role without it may start)."""
    engine = create_engine(db.sqlalchemy_url("psycopg"), poolclass=None)
    try:
        with engine.connect() as conn:
            at, wanted = behind(conn)
            conn.rollback()
            if at == wanted:
                return
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
            conn.commit()
            try:
                _upgrade(db, conn, at, wanted)
            finally:
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
                conn.commit()
    finally:
        engine.dispose()


def _upgrade(db: Database, conn: Connection, at: set[str], wanted: set[str]) -> None:
    try:
        env = store_env(db.eventsourcing_env(), pool_size=1, cipher_key=None)
        env["CREATE_TABLE"] = "yes"
        app = Nominals(env=env)
        app.close()
        command.upgrade(_config(conn), "heads")  # each capability may add its own branch
        conn.commit()
    except Exception as e:
        cause = e.orig if isinstance(e, DBAPIError) else e.__cause__ or e
        if isinstance(cause, psycopg.errors.InsufficientPrivilege):
            now = ", ".join(sorted(at)) or "none"
            raise DatabaseUnavailable(
                f"the database needs migrations (at {now}, this release wants "
                f"{', '.join(sorted(wanted))}) and the user in DATABASE_URL may not change "
                "tables: run `mappa-record migrate` with MAPPA_MIGRATE_URL naming the owner"
            ) from None
        raise
