"""Issue 16, point 6: every connection honours DATABASE_URL whole (docs/design.md#running-it).

The embedded server is put behind TLS with a CA and a server certificate this test makes
(tests/security/tls.py says why the TLS is a front and not the server's own). Each
connection path the service has is then opened with `sslmode=verify-full`:

- with the right CA in `sslrootcert`, it connects, and every session it opens is TLS;
- with another CA, it is refused: the client breaks off every handshake it begins;
- with the right CA but a host name the certificate does not name, it is refused.

And the service as a whole, started on such a URL and used over HTTP (writes, reads,
reports, the feed's LISTEN, readiness, metrics), speaks only TLS, and every one of its
connections carries the URL's other parameters too (`application_name`).
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote, urlencode

import httpx
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import text

from service.runtime.database import Database
from tests.security.tls import Authority, TLSFront

APP_NAME = "mappa-tls-test"


@dataclass(frozen=True)
class Pki:
    right: Authority
    wrong: Authority
    server_cert: Path
    server_key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    right = Authority.make(directory, "mappa-test-ca")
    wrong = Authority.make(directory, "impostor-ca")
    cert, key = right.issue_server(directory, ["127.0.0.1"])  # the name clients must check
    return Pki(right, wrong, cert, key)


@pytest.fixture(scope="module")
def plain(database_url: str) -> dict[str, str]:
    """A fresh, migrated database on the session's server: its libpq parameters."""
    from service.store.migrate import migrate

    name = f"mappa_tls_{os.getpid()}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    info = {k: str(v) for k, v in conninfo_to_dict(database_url).items()} | {"dbname": name}
    migrate(Database(url=_url(info)))
    return info


@pytest.fixture(scope="module")
def front(pki: Pki, plain: dict[str, str]) -> Iterator[TLSFront]:
    host, port = plain.get("host", "/tmp"), plain.get("port", "5432")
    if "," in host or plain.get("sslmode", "prefer") not in ("disable", "allow", "prefer"):
        pytest.skip("the TLS front carries plain sessions to one server")
    upstream = f"{host}/.s.PGSQL.{port}" if host.startswith("/") else (host, int(port))
    with TLSFront(upstream, pki.server_cert, pki.server_key) as running:
        yield running


def _url(info: dict[str, str]) -> str:
    """A libpq URL with these parameters (host, port, user, password, dbname and the rest)."""
    rest = {k: v for k, v in info.items() if k not in ("user", "password", "dbname")}
    auth = quote(info.get("user", ""), safe="")
    if info.get("password"):
        auth += ":" + quote(info["password"], safe="")
    return f"postgresql://{auth}@/{quote(info['dbname'])}?{urlencode(rest)}"


def tls_url(plain: dict[str, str], front: TLSFront, ca: Path, host: str = "127.0.0.1") -> str:
    info = {k: v for k, v in plain.items() if k not in ("host", "port")}
    return _url(
        info
        | {
            "host": host,
            "port": str(front.port),
            "sslmode": "verify-full",
            "sslrootcert": str(ca),
            "connect_timeout": "5",
            "application_name": APP_NAME,
        }
    )


# -- each path, as the service opens it ----------------------------------------------------


def _store(db: Database):
    from service.store.eventstore import Nominals, store_env

    return Nominals(env=store_env(db.eventsourcing_env(), pool_size=1, cipher_key=None))


def durability_check(db: Database) -> None:
    from service.runtime.database import check_durable

    check_durable(db)


def migrations(db: Database) -> None:
    from service.store.migrate import migrate

    migrate(db)


def event_store(db: Database) -> None:
    app = _store(db)
    try:
        app.recorder.max_notification_id()
    finally:
        app.close()


def consultation_log(db: Database) -> None:
    from service.consultation import ConsultationLog
    from service.store.eventstore import moved_on

    app = _store(db)
    log = ConsultationLog(app.recorder.datastore, functools.partial(moved_on, app))
    try:
        log.for_nominal(uuid.uuid4())
    finally:
        log.close()
        app.close()


def ledger_as_the_runtime_role_and_its_probes(db: Database) -> None:
    """The service's own ledger: the role switch (MAPPA_DB_ROLE), its pool, and readiness and
    metrics, which are asked on that pool (Service.probe)."""
    from service.bootstrap import Service
    from service.ledger import Ledger
    from service.runtime.settings import Settings

    settings = Settings(database_url=db.url, dev_tokens=True, pool_size=1)
    ledger = Ledger(settings, db)
    try:
        service = Service(  # the parts a probe does not use are left out
            ledger=ledger,
            records=None,
            reading=None,
            settings=settings,
            db=db,
            verifier=None,
            transparency=None,
        )  # type: ignore[arg-type]
        service.probe(lambda conn: conn.execute("SELECT 1").fetchone())
    finally:
        ledger.close()


def projections(db: Database) -> None:
    from projections.runner import ProjectionRunner

    app = _store(db)
    try:
        runner = ProjectionRunner.for_service(
            SimpleNamespace(db=db, ledger=SimpleNamespace(app=app))
        )
        runner.engine.dispose()
    finally:
        app.close()


def rebuild_worker(db: Database) -> None:
    """A worker process of `projections rebuild --workers N`: a URL string and an app env."""
    from projections.runner import PROJECTIONS
    from service.cli import _group_runner
    from service.store.eventstore import store_env

    env = store_env(db.eventsourcing_env(), pool_size=1, cipher_key=None)
    url = db.sqlalchemy_url("psycopg").render_as_string(hide_password=False)
    runner = _group_runner(url, env, (PROJECTIONS[0].name,), 7_413_999)
    runner.engine.dispose()


def reports(db: Database) -> None:
    from api.routes.reports import reports_engine_for

    async def one_query() -> None:
        engine = reports_engine_for(db)
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT count(*) FROM projection_positions"))
        finally:
            await engine.dispose()

    asyncio.run(one_query())


def feed_listen(db: Database) -> None:
    from service.feed import Doorbell

    async def listen() -> bool:
        bell = Doorbell(db.url)
        try:
            # The doorbell rings once as soon as its LISTEN is in place.
            return await bell.wait(bell.ring(), 6)
        finally:
            await bell.close()

    if not asyncio.run(listen()):
        raise ConnectionError("the feed's LISTEN connection never opened")


PATHS: dict[str, Callable[[Database], None]] = {
    "durability check at start": durability_check,
    "migrations": migrations,
    "event store": event_store,
    "consultation log": consultation_log,
    "ledger as the runtime role, readiness": ledger_as_the_runtime_role_and_its_probes,
    "projections": projections,
    "rebuild worker": rebuild_worker,
    "reports (asyncpg)": reports,
    "feed LISTEN": feed_listen,
}


@pytest.mark.parametrize("path", PATHS)
def test_verify_full_with_the_right_ca_connects_over_tls(path, plain, front, pki):
    front.take_outcomes()
    PATHS[path](Database(url=tls_url(plain, front, pki.right.path)))
    outcomes = front.take_outcomes()
    assert outcomes and set(outcomes) == {"tls"}, outcomes


@pytest.fixture
def quick_pools(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pools built inside the service (Records, a rebuild's worker) give up on an unusable
    connection in seconds, not the library's 30 s (its applications read os.environ too)."""
    monkeypatch.setenv("POSTGRES_CONNECT_TIMEOUT", "5")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.usefixtures("quick_pools")
def test_verify_full_with_another_ca_is_refused(path, plain, front, pki):
    front.take_outcomes()
    with pytest.raises(Exception):  # noqa: B017 - each driver and layer has its own error
        PATHS[path](Database(url=tls_url(plain, front, pki.wrong.path)))
    outcomes = front.take_outcomes()
    assert outcomes, "the path never tried the server"
    # Every handshake was broken off by the client (libpq sends the alert UNKNOWN_CA; asyncio's
    # TLS just closes): none completed, none fell back to plain text.
    assert "tls" not in outcomes and "plaintext" not in outcomes, outcomes


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.usefixtures("quick_pools")
def test_verify_full_with_a_name_the_certificate_does_not_hold_is_refused(path, plain, front, pki):
    # `localhost` reaches the same front, whose certificate names 127.0.0.1 only.
    front.take_outcomes()
    with pytest.raises(Exception):  # noqa: B017
        PATHS[path](Database(url=tls_url(plain, front, pki.right.path, host="localhost")))
    assert front.take_outcomes(), "the path never tried the server"


# -- the service as a whole ------------------------------------------------------------------


def test_the_service_on_verify_full_speaks_only_tls_and_names_every_connection(
    plain, front, pki, tmp_path
):
    from api.app import create_app
    from service.bootstrap import start
    from service.devkeys import ensure_dev_key, mint_token
    from service.runtime.settings import Settings
    from tests.conftest import AUDIENCE, ISSUER, registration, served

    front.take_outcomes()
    settings = Settings(
        database_url=tls_url(plain, front, pki.right.path),
        data_dir=tmp_path,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        dev_tokens=True,
        pool_size=2,
    )
    key = ensure_dev_key(tmp_path)

    def auth(scopes: str) -> dict[str, str]:
        token = mint_token(
            key,
            agency="police:kent",
            scopes=scopes,
            sub="tls-officer",
            ttl=600,
            issuer=ISSUER,
            audience=AUDIENCE,
            now=datetime.now(UTC),
        )
        return {"Authorization": f"Bearer {token}"}

    service = start(settings)
    try:
        with served(create_app(service)) as base, httpx.Client(base_url=base, timeout=30) as c:
            with c.stream(
                "GET", "/v1/feed", headers=auth("feed:read") | {"Accept": "text/event-stream"}
            ) as stream:
                lines = stream.iter_lines()
                assert next(lines).startswith("retry:")
                r = c.post("/v1/nominals", json=registration(), headers=auth("records:write"))
                assert r.status_code == 201, r.text
                nominal_id = r.json()["nominal_id"]
                deadline = time.monotonic() + 10
                while "event: notice" not in next(lines):
                    assert time.monotonic() < deadline, "no notice on the stream"
            assert c.get(f"/v1/nominals/{nominal_id}", headers=auth("records:read")).is_success
            deadline = time.monotonic() + 30
            while True:  # the projection runner applies it; the report (asyncpg) shows it
                report = c.get("/v1/reports/partnering-audit", headers=auth("reports:read"))
                assert report.status_code == 200, report.text
                if nominal_id in report.text:
                    break
                assert time.monotonic() < deadline, report.text
                time.sleep(0.2)
            assert c.get("/health/ready").text.startswith("ok")
            assert c.get("/metrics").status_code == 200
            with psycopg.connect(_url(plain)) as side:  # beside the front: not counted
                named = side.execute(
                    "SELECT application_name, left(query, 6) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    (plain["dbname"],),
                ).fetchall()
                logged = side.execute(
                    "SELECT count(*) FROM consultation_log WHERE nominal_id = %s", (nominal_id,)
                ).fetchone()
    finally:
        service.close()
    assert logged is not None and logged[0] >= 1
    assert named and {name for name, _ in named} == {APP_NAME}, named
    assert any(query == "LISTEN" for _, query in named), named
    outcomes = front.take_outcomes()
    assert outcomes and set(outcomes) == {"tls"}, outcomes


def test_tcp_keepalives_in_the_url_reach_the_reports_sockets_as_libpq_sets_its_own(
    plain, front, pki
):
    """asyncpg has no keepalive parameters: the translation sets them on its socket."""
    import socket

    from api.routes.reports import reports_engine_for

    url = tls_url(plain, front, pki.right.path) + (
        "&keepalives_idle=17&keepalives_interval=4&keepalives_count=3"
    )
    options = {
        "SO_KEEPALIVE": (socket.SOL_SOCKET, socket.SO_KEEPALIVE),
        "TCP_KEEPIDLE": (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
        "TCP_KEEPINTVL": (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
        "TCP_KEEPCNT": (socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
    }

    def read(sock) -> dict[str, int]:
        return {name: sock.getsockopt(*where) for name, where in options.items()}

    async def reports_socket() -> dict[str, int]:
        engine = reports_engine_for(Database(url=url))
        try:
            async with engine.connect() as conn:
                raw = await conn.get_raw_connection()
                transport = raw.driver_connection._transport  # asyncpg keeps it private
                return read(transport.get_extra_info("socket"))
        finally:
            await engine.dispose()

    with (
        Database(url=url).connect() as conn,
        socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock,
    ):
        libpq = read(sock)
    assert libpq == {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 17, "TCP_KEEPINTVL": 4, "TCP_KEEPCNT": 3}
    assert asyncio.run(reports_socket()) == libpq
