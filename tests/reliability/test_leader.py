"""Any number of projection runners, one at a time (issue 20;
docs/design.md#beyond-one-machine; docs/adr/024).

Three `mappa-record projections run` processes and the runners inside two `mappa-record serve`
processes stand for election on one database while eight clients post through both API
processes. The one applying is SIGKILLed at a random moment, several times: another takes
over within 5 s, each event is applied once (`events_applied` = version on every record), and
the read models equal a rebuild from position 0. `projections status` names the leader."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine

from service.runtime.database import Database
from tests.conftest import AUDIENCE, ISSUER, _database_on, free_port
from tests.projections.readmodels import dump
from tests.reliability.crash import RunnerProcess, ServerProcess, Traffic, exactly_once, wait_until

KILLS = 4
HAND_OVER_LIMIT = 5.0  # seconds: docs/design.md#beyond-one-machine, issue 20's figure


def _leader(url: str) -> tuple[int, int, str] | None:
    """(process id, term, holder) of the runner that leads now, or None."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT l.holder, l.term FROM projection_leader l WHERE EXISTS (SELECT FROM pg_locks k"
            " WHERE k.locktype = 'advisory' AND k.objid = 7412010 AND k.granted"
            " AND k.pid = l.backend_pid)"
        ).fetchone()
    if row is None:
        return None
    pid = int(re.search(r" pid (\d+) ", row[0]).group(1))
    return pid, int(row[1]), row[0]


def _lowest_position(url: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute("SELECT min(position) FROM projection_positions").fetchone()[0])


def _head(url: str) -> int:
    with psycopg.connect(url) as conn:
        return int(
            conn.execute(
                "SELECT coalesce(max(notification_id), 0) FROM nominals_events"
            ).fetchone()[0]
        )


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def leader_db(database_url) -> str:
    """A database of this test's own: no runner of the test session stands there."""
    return _database_on(database_url, f"mappa_leader_{os.getpid()}")


@pytest.mark.slow
def test_one_runner_applies_at_a_time_and_another_takes_over_within_5_s(
    leader_db, data_dir, token, tmp_path
):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAPPA_")} | {
        "DATABASE_URL": leader_db,
        "MAPPA_DATA_DIR": str(data_dir),
        "MAPPA_JWT_ISSUER": ISSUER,
        "MAPPA_JWT_AUDIENCE": AUDIENCE,
        "MAPPA_DEV_TOKENS": "true",
        "MAPPA_POOL_SIZE": "4",
    }
    assert _cli(env, "migrate").returncode == 0
    serves = [
        ServerProcess(leader_db, data_dir, free_port(), tmp_path / f"serve{i}.log")
        for i in range(2)
    ]
    runners = [RunnerProcess(env, tmp_path / f"runner{i}.log") for i in range(3)]
    rng = random.Random(os.getpid())
    hand_overs: list[tuple[str, float, float]] = []  # (kind killed, elected s, applying s)
    try:
        for r in runners:
            r.start()
        for s in serves:
            s.start()
        headers = {
            "Authorization": f"Bearer {token('police:kent', 'records:read records:write', ttl=900)}"
        }
        traffic = Traffic([s.url for s in serves], headers, clients=8, per_client=10_000)
        traffic.start()
        wait_until(lambda: _leader(leader_db) is not None, 30, "a leader")

        for _ in range(KILLS):
            time.sleep(rng.uniform(1.0, 3.0))  # somewhere in its run of batches
            pid, term, holder = _leader(leader_db)
            by_pid = {r.process.pid: r for r in runners} | {s.process.pid: s for s in serves}
            victim = by_pid[pid]
            behind = _head(leader_db)
            killed = time.monotonic()
            victim.kill()
            wait_until(
                lambda t=term: (_leader(leader_db) or (0, t, ""))[1] > t,
                HAND_OVER_LIMIT + 5,
                "another leader",
            )
            elected = time.monotonic() - killed
            wait_until(
                lambda b=behind: _lowest_position(leader_db) >= b,
                30,
                "the new leader to apply what was posted before the kill",
            )
            applying = time.monotonic() - killed
            kind = "serve" if isinstance(victim, ServerProcess) else "projections run"
            hand_overs.append((kind, elected, applying))
            victim.start()  # as a supervisor would

        traffic.stop()
        traffic.join(timeout=120)
        figures = exactly_once(traffic, serves[0].url, headers)
        wait_until(
            lambda: _lowest_position(leader_db) >= _head(leader_db), 60, "the leader to catch up"
        )
        status = _cli(env, "projections", "status")
        assert status.returncode == 0, status.stderr
        pid, term, holder = _leader(leader_db)
        assert f"leader: {holder}" in status.stdout.replace("\n", " "), status.stdout
        assert f"term {term}" in status.stdout
    finally:
        for process in [*runners, *serves]:
            process.stop()

    engine = create_engine(Database(leader_db).sqlalchemy_url())
    try:
        with engine.connect() as conn:
            twice = conn.exec_driver_sql(
                "SELECT count(*) FROM rm_nominals WHERE events_applied <> version"
            ).scalar_one()
            records = conn.exec_driver_sql("SELECT count(*) FROM rm_nominals").scalar_one()
        caught_up = dump(engine)
        rebuilt = _cli(env, "projections", "rebuild", "--workers", "1")
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert dump(engine) == caught_up
    finally:
        engine.dispose()
    assert twice == 0 and records == len(traffic.nominals)
    assert all(elected <= HAND_OVER_LIMIT for _, elected, _ in hand_overs), hand_overs
    print(
        f"\nleader hand-over: {len(hand_overs)} leaders SIGKILLed "
        f"({', '.join(kind for kind, _, _ in hand_overs)}); another elected after "
        f"{', '.join(f'{e:.2f}' for _, e, _ in hand_overs)} s, applying what was posted "
        f"before the kill after {', '.join(f'{a:.2f}' for _, _, a in hand_overs)} s; "
        f"{figures['acknowledged']} events acknowledged, {figures['lost']} lost, "
        f"{figures['doubled']} doubled; {records} records, each event applied once; "
        "read models equal the rebuild"
    )
    Path(tmp_path / "ok").touch()
