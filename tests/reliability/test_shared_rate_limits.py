"""Rate limits hold across processes (issue 20; docs/design.md#beyond-one-machine;
docs/adr/025).

Two real `mappa-record serve` processes on one database: an officer who alternates between
them gets, together, what one process would allow (its burst, then its rate), where before
each process kept its own bucket and the two allowed twice the burst. The buckets' arithmetic
(drawn a chunk at a time, held at most a second, a process's own bucket while the database
cannot be asked) is checked on the session's database."""

from __future__ import annotations

import os
import time

import httpx
import psycopg
import pytest

from service.rate_limits import SharedBuckets
from tests.conftest import free_port
from tests.reliability.crash import ServerProcess

RATE = 2.0
BURST = 10


@pytest.mark.slow
def test_two_processes_together_hold_the_per_officer_limit(database_url, data_dir, token, tmp_path):
    env = {
        "MAPPA_RATE_LIMIT_PER_SECOND": str(RATE),
        "MAPPA_RATE_LIMIT_BURST": str(BURST),
        "MAPPA_RUN_PROJECTIONS": "false",
        "MAPPA_CHECKPOINT_SECONDS": "0",
    }
    serves = [
        ServerProcess(database_url, data_dir, free_port(), tmp_path / f"s{i}.log", env=env)
        for i in range(2)
    ]
    officer = {"Authorization": f"Bearer {token('police:kent', sub=f'officer-{os.getpid()}')}"}
    other = {"Authorization": f"Bearer {token('police:kent', sub=f'other-{os.getpid()}')}"}
    try:
        for s in serves:
            s.start()
        with httpx.Client(timeout=10) as c:
            started = time.monotonic()
            codes = [
                c.get(
                    f"{serves[i % 2].url}/v1/nominals", params={"crn": "X000001"}, headers=officer
                ).status_code
                for i in range(40)
            ]
            elapsed = time.monotonic() - started
            others = [
                c.get(
                    f"{serves[i % 2].url}/v1/nominals", params={"crn": "X000001"}, headers=other
                ).status_code
                for i in range(4)
            ]
    finally:
        for s in serves:
            s.stop()
    admitted = codes.count(200)
    allowed = BURST + int(RATE * elapsed) + 1  # the burst, then the rate while they asked
    assert set(codes) == {200, 429}
    assert BURST <= admitted <= allowed, (admitted, allowed, elapsed)
    assert codes[:BURST] == [200] * BURST  # the burst itself is not cut short
    assert others == [200] * 4  # another officer has a bucket of their own
    print(
        f"\nshared rate limit: 40 requests from one officer over two processes in {elapsed:.2f} s "
        f"at {RATE:g}/s with a burst of {BURST}: {admitted} admitted (at most {allowed} "
        f"allowed; with a bucket in each process, as before, {2 * BURST})"
    )


def _pool(service):
    return service.ledger.datastore.pool


def test_a_process_draws_a_chunk_and_spends_it_here(service):
    key = f"token:test:chunk-{os.getpid()}-{time.monotonic_ns()}"
    buckets = SharedBuckets(_pool(service), rate=100.0, burst=20, chunk=5)
    other = SharedBuckets(_pool(service), rate=100.0, burst=20, chunk=5)  # another process
    assert buckets.take(key) == 0.0  # one database call: 5 drawn, 1 spent
    with psycopg.connect(service.db.url) as conn:
        tat = conn.execute("SELECT tat FROM rate_limit_buckets WHERE key = %s", (key,)).fetchone()
    assert tat is not None
    assert [buckets.take_held(key) for _ in range(5)] == [True] * 4 + [False]
    # Together they never pass the burst: 20 drawn at most, in chunks of 5.
    admitted = 5 + sum(other.take(key) == 0.0 for _ in range(40))
    assert admitted <= 20 + 5


def test_requests_held_past_a_second_are_dropped_not_saved_up(service):
    now = [1000.0]
    key = f"token:test:hold-{os.getpid()}-{time.monotonic_ns()}"
    buckets = SharedBuckets(_pool(service), rate=100.0, burst=20, chunk=5, clock=lambda: now[0])
    assert buckets.take(key) == 0.0
    now[0] += SharedBuckets.HOLD
    assert not buckets.take_held(key)


def test_the_limit_is_exact_at_a_chunk_of_one_and_says_how_long_to_wait(service):
    key = f"token:test:exact-{os.getpid()}-{time.monotonic_ns()}"
    a = SharedBuckets(_pool(service), rate=0.5, burst=3)
    b = SharedBuckets(_pool(service), rate=0.5, burst=3)
    assert a.chunk == b.chunk == 1
    waits = [(a if i % 2 else b).take(key) for i in range(5)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 1.5 < waits[3] <= 2.0 and 1.5 < waits[4] <= 2.0


def test_without_the_database_each_process_limits_alone(caplog):
    from psycopg_pool import ConnectionPool

    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/mappa?connect_timeout=1"
    with ConnectionPool(nowhere, min_size=1, open=True, reconnect_timeout=5) as pool:
        buckets = SharedBuckets(pool, rate=0.5, burst=2)
        with caplog.at_level("WARNING", logger="service.rate_limits"):
            waits = [buckets.take("token:test:alone") for _ in range(3)]
    assert waits[:2] == [0.0, 0.0] and waits[2] > 0
    assert sum("rate limits held per process" in r.message for r in caplog.records) == 1
