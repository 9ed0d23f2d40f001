"""Shared fixtures: one real PostgreSQL per test session (embedded, or DATABASE_URL), real
signed tokens, and the app served through real HTTP requests (Starlette's TestClient)."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from domain.identifiers import CHECK_LETTERS
from service.devkeys import DevKey, ensure_dev_key, mint_token
from service.runtime.database import Database, start_embedded
from service.runtime.settings import Settings

ISSUER = "mappa-record-test"
AUDIENCE = "mappa-record"


def _database_on(server_url: str, name: str) -> str:
    """Create a fresh database on the server and return its URL."""
    from sqlalchemy.engine import make_url

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mappa")


@pytest.fixture(scope="session")
def database_url(data_dir: Path) -> str:
    """A fresh database for this session on DATABASE_URL's server, or an embedded one."""
    name = f"mappa_test_{os.getpid()}"
    server_url = os.environ.get("DATABASE_URL")
    if not server_url:
        # Keep the socket path short: Unix socket paths are limited to about 100 bytes.
        server_url = start_embedded(Path(f"/tmp/mappa-test-{os.getpid()}")).url
    return _database_on(server_url, name)


@pytest.fixture(scope="session")
def settings(database_url: str, data_dir: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=data_dir,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        dev_tokens=True,  # DATABASE_URL is set: the test key is trusted only so
        pool_size=10,
    )


@pytest.fixture(scope="session")
def service(settings: Settings) -> Iterator:
    from service.bootstrap import start

    svc = start(settings)
    yield svc
    svc.close()


@pytest.fixture(scope="session")
def db(service) -> Database:
    return service.db


@pytest.fixture(scope="session")
def signing_key(data_dir: Path) -> DevKey:
    return ensure_dev_key(data_dir)


@pytest.fixture(scope="session")
def app(service):
    from api.app import create_app

    return create_app(service)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served(app) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a loopback port, in a thread, for as long as the
    block runs; yields its base URL. The one way the tests serve an app over real HTTP."""
    import threading
    import time

    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def base_url(app) -> Iterator[str]:
    """The app served by uvicorn on a loopback port, in a thread, for the whole session."""
    with served(app) as url:
        yield url


@pytest.fixture(scope="session")
def client(base_url: str) -> Iterator:
    import httpx

    with httpx.Client(base_url=base_url, timeout=30) as c:
        yield c


TokenFactory = Callable[..., str]


@pytest.fixture(scope="session")
def token(signing_key: DevKey) -> TokenFactory:
    """token("police:kent", "records:read records:write") -> a real signed JWT."""

    def make(
        agency: str,
        scopes: str = "records:read records:write",
        *,
        sub: str | None = None,
        ttl: int = 600,
    ) -> str:
        return mint_token(
            signing_key,
            agency=agency,
            scopes=scopes,
            sub=sub or f"test-{agency}",
            ttl=ttl,
            issuer=ISSUER,
            audience=AUDIENCE,
            now=datetime.now(UTC),
        )

    return make


@pytest.fixture(scope="session")
def auth(token: TokenFactory) -> Callable[..., dict[str, str]]:
    """auth("police:kent") -> headers with a bearer token."""

    def headers(
        agency: str, scopes: str = "records:read records:write", **extra: str
    ) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(agency, scopes)}"} | extra

    return headers


# -- what a request left behind -------------------------------------------------------------


class Footprint:
    """What the service has stored and logged, to show that a request left nothing behind
    (or exactly what it should): `since(mark())` counts the events appended, identifiers
    claimed and documents stored since the mark, and the consultation-log rows written, by
    outcome. Tests run one at a time, so the counts are the request's."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def mark(self) -> tuple[int, int, int, int]:
        with self.db.connect() as conn:
            row = conn.execute(
                "SELECT (SELECT coalesce(max(notification_id), 0) FROM nominals_events),"
                " (SELECT count(*) FROM nominal_identifiers),"
                " (SELECT count(*) FROM documents),"
                " (SELECT coalesce(max(id), 0) FROM consultation_log)"
            ).fetchone()
        assert row is not None
        return (int(row[0]), int(row[1]), int(row[2]), int(row[3]))

    def since(self, mark: tuple[int, int, int, int]) -> dict[str, Any]:
        events, identifiers, documents, consulted = mark
        with self.db.connect() as conn:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM nominals_events WHERE notification_id > %s),"
                " (SELECT count(*) FROM nominal_identifiers),"
                " (SELECT count(*) FROM documents)",
                (events,),
            ).fetchone()
            logged = conn.execute(
                "SELECT outcome, count(*) FROM consultation_log WHERE id > %s GROUP BY outcome",
                (consulted,),
            ).fetchall()
        assert row is not None
        return {
            "events": int(row[0]),
            "identifiers": int(row[1]) - identifiers,
            "documents": int(row[2]) - documents,
            "consultations": {outcome: int(n) for outcome, n in sorted(logged)},
        }


NOTHING = {"events": 0, "identifiers": 0, "documents": 0, "consultations": {}}


@pytest.fixture(scope="session")
def footprint(db: Database) -> Footprint:
    return Footprint(db)


# -- factories ---------------------------------------------------------------------------


def random_pnc() -> str:
    year = random.randint(2000, 2025) % 100
    serial = random.randint(1, 9_999_999)
    letter = CHECK_LETTERS[(year * 10**7 + serial) % 23]
    return f"20{year:02d}/{serial:07d}{letter}"


def random_crn() -> str:
    return f"{random.choice('ABCDEFGHJKLMNPRSTUVWXYZ')}{random.randint(0, 999_999):06d}"


def random_noms() -> str:
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    first, last = random.choice(letters), random.choice(letters) + random.choice(letters)
    return f"{first}{random.randint(0, 9999):04d}{last}"


def registration(**overrides) -> dict:
    body = {
        "event_id": str(uuid.uuid4()),
        "identifiers": {"pnc": random_pnc(), "crn": random_crn()},
        "name": {"family": "Example", "given": ["Sam"]},
        "aliases": [],
        "date_of_birth": "1980-02-01",
        "gender": "male",
        "area": "leicestershire-rutland",
        "category": 1,
        "level": 1,
        "lead_agency": "probation:midlands",
        "sentence_date": "2026-11-18",
    }
    body.update(overrides)
    return body


def event(type_: str, payload: dict, occurred_at: str = "2026-11-20", **extra) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "type": type_,
        "occurred_at": occurred_at,
        "payload": payload,
    } | extra


@pytest.fixture
def register(client, auth) -> Callable[..., str]:
    """register("police:kent", **overrides) -> nominal_id of a new record."""

    def make(agency: str = "police:kent", **overrides) -> str:
        r = client.post("/v1/nominals", json=registration(**overrides), headers=auth(agency))
        assert r.status_code == 201, r.text
        return r.json()["nominal_id"]

    return make
