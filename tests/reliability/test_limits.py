"""Resource limits: body size (413), page size caps (422), per-client rate (429 with
Retry-After), PostgreSQL statement_timeout on the service's own connections."""

from __future__ import annotations

import httpx
import psycopg
import pytest
from eventsourcing.persistence import OperationalError
from sqlalchemy.engine import make_url

from service.bootstrap import Application
from tests.conftest import NOTHING, registration, served

PROBLEM = "application/problem+json"


# -- body size ----------------------------------------------------------------------------


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(app_with, auth, stored_count):
    before = stored_count()
    with served(app_with(max_body_bytes=4096)) as url, httpx.Client(base_url=url) as c:
        body = registration(offence_summary="x" * 8000)
        r = c.post("/v1/nominals", json=body, headers=auth("police:kent"))
    assert r.status_code == 413
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["status"] == 413
    assert stored_count() == before


def test_a_streamed_body_without_length_is_counted_and_cut_off(app_with, auth, stored_count):
    before = stored_count()

    def chunks():
        yield b'{"event_id": "6f0e2a0c-3f61-4c43-9d0e-0f5b7f2a9c11", "offence_summary": "'
        for _ in range(64):
            yield b"y" * 1024
        yield b'"}'

    with served(app_with(max_body_bytes=4096)) as url, httpx.Client(base_url=url) as c:
        r = c.post(
            "/v1/nominals",
            content=chunks(),
            headers=auth("police:kent", **{"Content-Type": "application/json"}),
        )
    assert "content-length" not in r.request.headers  # really chunked
    assert r.status_code == 413
    assert r.headers["content-type"] == PROBLEM
    assert stored_count() == before


def test_a_body_under_the_limit_goes_through(app_with, auth):
    with served(app_with(max_body_bytes=8192)) as url, httpx.Client(base_url=url) as c:
        r = c.post("/v1/nominals", json=registration(), headers=auth("police:kent"))
    assert r.status_code == 201, r.text


def test_the_live_server_refuses_a_body_over_the_configured_default(
    client, auth, settings, footprint
):
    mark = footprint.mark()
    r = client.post(
        "/v1/nominals",
        content=b"{" + b" " * settings.max_body_bytes + b"}",
        headers=auth("police:kent", **{"Content-Type": "application/json"}),
    )
    assert r.status_code == 413
    assert footprint.since(mark) == NOTHING


# -- page size -----------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1001, 10**6, 0, -1])
def test_a_history_page_out_of_range_is_a_422_naming_limit(client, auth, register, limit):
    nominal_id = register("police:kent")
    r = client.get(
        f"/v1/nominals/{nominal_id}/history", params={"limit": limit}, headers=auth("police:kent")
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM
    assert [e["field"] for e in r.json()["errors"]] == ["query.limit"]


def test_a_page_of_1000_is_allowed(client, auth, register):
    nominal_id = register("police:kent")
    r = client.get(
        f"/v1/nominals/{nominal_id}/history", params={"limit": 1000}, headers=auth("police:kent")
    )
    assert r.status_code == 200
    assert len(r.json()["events"]) == 1


# -- rate -------------------------------------------------------------------------------------


def test_a_client_over_its_rate_gets_429_with_retry_after(app_with, auth, token):
    app = app_with(rate_limit_per_second=0.5, rate_limit_burst=3)
    headers = {"Authorization": f"Bearer {token('police:kent', sub='rate-a')}"}
    other = {"Authorization": f"Bearer {token('police:kent', sub='rate-b')}"}
    with served(app) as url, httpx.Client(base_url=url) as c:
        answers = [
            c.get("/v1/nominals", params={"crn": "X000001"}, headers=headers) for _ in range(5)
        ]
        other_answer = c.get("/v1/nominals", params={"crn": "X000001"}, headers=other)
        health = [c.get("/health/live") for _ in range(5)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429, 429]
    refused = answers[3]
    assert refused.headers["content-type"] == PROBLEM
    assert 1 <= int(refused.headers["Retry-After"]) <= 2
    assert refused.json()["status"] == 429
    assert other_answer.status_code == 200  # buckets are per token sub+agency
    assert all(r.status_code == 200 for r in health)


def test_unauthenticated_callers_are_limited_by_address(app_with):
    app = app_with(rate_limit_per_second=0.5, rate_limit_burst=2)
    with served(app) as url, httpx.Client(base_url=url) as c:
        codes = [
            c.get(
                "/v1/nominals",
                params={"crn": "X000001"},
                headers={"Authorization": f"Bearer forged-{i}"},
            ).status_code
            for i in range(4)
        ]
    assert codes == [401, 401, 429, 429]


def test_a_refilled_bucket_lets_the_client_in_again():
    from api.limits import TokenBuckets

    now = [100.0]
    buckets = TokenBuckets(rate=2.0, burst=2, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(2)] == [0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)
    now[0] += 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("b") == 0.0


# -- statement timeout -----------------------------------------------------------------------


def test_the_service_connections_carry_the_statement_timeout(service, db):
    with service.ledger.datastore.get_connection() as conn:
        shown = conn.execute("SHOW statement_timeout").fetchone()
    assert service.settings.statement_timeout_ms == 15_000
    assert shown["statement_timeout"] == "15s"
    with db.connect() as other:  # not set on the role or database: nothing leaks outside
        assert other.execute("SHOW statement_timeout").fetchone()[0] == "0"


def test_a_slow_statement_is_cancelled(settings, db):

    layer = Application.build(
        settings.model_copy(update={"statement_timeout_ms": 200, "pool_size": 1}), db
    )
    try:
        with (
            pytest.raises(OperationalError, match="statement timeout"),
            layer.ledger.datastore.get_connection() as conn,
        ):
            conn.execute("SELECT pg_sleep(5)")
        with layer.ledger.datastore.get_connection() as conn:  # the pool recovers
            assert conn.execute("SELECT 1 AS one").fetchone()["one"] == 1
    finally:
        layer.close()


def test_a_history_read_is_bounded_by_the_timeout_too(settings, db):
    """The timeout is on the pool the recorder uses, not just on a connection we picked."""

    layer = Application.build(settings.model_copy(update={"statement_timeout_ms": 150}), db)
    try:
        with layer.ledger.datastore.transaction() as curs:
            curs.execute("SHOW statement_timeout")
            assert curs.fetchone()["statement_timeout"] == "150ms"
    finally:
        layer.close()


def test_report_queries_carry_the_statement_timeout(app_with, auth, db):
    """A report held up (here by a lock on the table it reads) is cancelled at the timeout
    and answered 503, instead of holding a worker and a connection for as long as it takes."""
    app = app_with(statement_timeout_ms=300)
    headers = auth("police:kent", "reports:read")
    with served(app) as url, httpx.Client(base_url=url, timeout=30) as c:
        assert c.get("/v1/reports/level-profile", headers=headers).status_code == 200
        with db.connect() as holder:
            holder.execute("LOCK TABLE rm_nominals IN ACCESS EXCLUSIVE MODE")
            r = c.get("/v1/reports/level-profile", headers=headers)
            holder.rollback()
        again = c.get("/v1/reports/level-profile", headers=headers)
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == PROBLEM
    assert "0.3 s" in r.json()["detail"]
    assert again.status_code == 200  # the pool's connection is fine afterwards


# -- probes reuse the pool -------------------------------------------------------------------


def _sessions(conn) -> int:
    """Sessions ever opened on this database (pg_stat_database), read afresh."""
    conn.execute("SET stats_fetch_consistency = none")
    row = conn.execute(
        "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
    ).fetchone()
    return int(row[0])


def test_readiness_and_metrics_reuse_pooled_connections(client, db):
    import time

    with db.connect(autocommit=True) as conn:
        before = _sessions(conn)
        answers = [client.get(path) for _ in range(15) for path in ("/health/ready", "/metrics")]
        time.sleep(1.0)  # a closed session is counted when its server process exits
        after = _sessions(conn)
    assert [r.status_code for r in answers] == [200] * 30
    assert after - before <= 2  # 30 before: a connection opened for each probe


def test_readiness_is_back_at_once_when_the_server_dropped_the_pooled_connections(
    database_url, data_dir
):
    """As after a restart or a failover: the pool's idle connections are dead. The first
    probe finds that out, has the pool check them, and answers from a fresh one."""
    from tests.audit.conftest import separate_service

    name = f"{make_url(database_url).database}_probes"
    with separate_service(database_url, data_dir, name, run_projections=False) as (_, __, c):
        assert c.get("/health/ready").status_code == 200
        with psycopg.connect(database_url, autocommit=True) as admin:
            dropped = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            ).fetchone()[0]
        ready = c.get("/health/ready")
        metrics = c.get("/metrics")
    assert dropped >= 1
    assert ready.status_code == 200, ready.text
    assert metrics.status_code == 200, metrics.text
