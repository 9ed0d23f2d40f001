"""DATABASE_URL reaches each driver whole (issue 16, point 6), without a database: what
each connection path would be given, compared with what libpq reads in the URL itself."""

from __future__ import annotations

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from service.runtime.asyncpg_args import asyncpg_arguments
from service.runtime.database import Database
from service.runtime.settings import SettingsError, load_settings


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The process environment without MAPPA_* variables, DATABASE_URL set by the test."""
    import os

    for name in list(os.environ):
        if name.upper().startswith("MAPPA_") or name.startswith("DATABASE_URL"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MAPPA_DEV_TOKENS", "true")
    return monkeypatch


URLS = [
    "postgresql://app:s3cr%40t@db.internal:5432/mappa",
    "postgresql://app@/mappa?host=/var/run/postgresql",
    "postgresql:///mappa?host=/tmp/pg%20sockets&port=6543",
    "postgresql://app:pw@h1:5432,h2:5433/mappa?target_session_attrs=read-write",
    "postgresql://app:pw@h1,h2,h3/mappa?port=5432&target_session_attrs=primary",
    "postgresql://app:pw@db/mappa?sslmode=verify-full&sslrootcert=/etc/ca.crt"
    "&sslcert=/etc/client.crt&sslkey=/etc/client.key&sslcrl=/etc/ca.crl",
    "postgresql://app:pw@db/mappa?connect_timeout=7&keepalives=1&keepalives_idle=30"
    "&keepalives_interval=5&keepalives_count=3&tcp_user_timeout=20000",
    "postgresql://app:pw@db/mappa?application_name=mappa%20record%20%C3%A9"
    "&options=-c%20search_path%3Dmappa%20-c%20lock_timeout%3D5s",
    "postgresql://app:pw@db/mappa?sslmode=require&ssl_min_protocol_version=TLSv1.3",
]


def _libpq(conninfo: str, **kwargs: object) -> dict[str, str]:
    """The parameters libpq reads, one port written out for each host as libpq applies it."""
    params = {k: str(v) for k, v in conninfo_to_dict(make_conninfo(conninfo, **kwargs)).items()}
    hosts = params.get("host", "").split(",")
    if len(hosts) > 1 and "," not in params.get("port", ","):
        params["port"] = ",".join([params["port"]] * len(hosts))
    return params


@pytest.mark.parametrize("url", URLS)
def test_sqlalchemy_psycopg_engines_connect_with_every_parameter_of_the_url(url):
    """Projections, migrations and a rebuild's workers (which get the URL as a string)."""
    db = Database(url=url)
    for given in (
        db.sqlalchemy_url("psycopg"),
        make_url(db.sqlalchemy_url("psycopg").render_as_string(hide_password=False)),
    ):
        engine = create_engine(given)
        cargs, cparams = engine.dialect.create_connect_args(engine.url)
        cparams = {k: v for k, v in cparams.items() if k not in ("context", "client_encoding")}
        assert _libpq(cargs[0] if cargs else "", **cparams) == _libpq(url)


@pytest.mark.parametrize("url", URLS)
def test_the_event_store_pool_connects_with_every_parameter_of_the_url(url):
    """The event store and the consultation log (the same pool), and MAPPA_DB_ROLE's switch."""
    from service.store.eventstore import NominalsFactory, store_env

    db = Database(url=url)
    env = store_env(db.eventsourcing_env(), pool_size=1, cipher_key=None, statement_timeout_ms=1500)
    pool = NominalsFactory(env).datastore.pool  # as the application builds it, not yet opened
    kwargs = {k: v for k, v in pool.kwargs.items() if k != "row_factory"}
    used = _libpq(pool.conninfo, **kwargs)
    wanted = _libpq(url)
    # The statement timeout is added to the URL's own options, not put in their place.
    options = (wanted.pop("options", "") + " -c statement_timeout=1500").strip()
    assert used.pop("options") == options
    assert used == wanted


def test_asyncpg_is_given_the_url_as_it_reads_it_and_the_rest_by_name():
    args = asyncpg_arguments(
        "postgresql://app:pw@h1:5432,h2:5433/mappa?sslmode=verify-full&sslrootcert=/etc/ca.crt"
        "&target_session_attrs=read-write&connect_timeout=7&application_name=mappa"
        "&options=-c%20search_path%3Dmappa%20--lock_timeout%3D5s&keepalives_idle=30"
    )
    dsn = conninfo_to_dict(args.pop("dsn"))
    assert dsn == {
        "user": "app",
        "password": "pw",
        "host": "h1,h2",
        "port": "5432,5433",
        "dbname": "mappa",
        "sslmode": "verify-full",
        "sslrootcert": "/etc/ca.crt",
        "target_session_attrs": "read-write",
    }
    assert args.pop("timeout") == 14  # libpq's is per host tried; asyncpg's is for them all
    assert args.pop("server_settings") == {
        "application_name": "mappa",
        "search_path": "mappa",
        "lock_timeout": "5s",
    }
    assert args.pop("connection_class").keepalives == {"keepalives_idle": 30}
    assert args == {}


def test_asyncpg_keeps_tcp_keepalives_on_by_default_as_libpq_does():
    cls = asyncpg_arguments("postgresql://app@db/mappa")["connection_class"]
    assert cls.keepalives == {}  # SO_KEEPALIVE on, the system's timings
    assert "connection_class" not in asyncpg_arguments("postgresql://app@db/mappa?keepalives=0")


def test_sslrootcert_system_is_the_system_trust_store_for_asyncpg():
    import ssl

    args = asyncpg_arguments("postgresql://app@db/mappa?sslrootcert=system")
    context = args["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    assert "sslrootcert" not in args["dsn"] and "sslmode" not in args["dsn"]


@pytest.mark.parametrize(
    ("parameter", "url"),
    [
        ("hostaddr", "postgresql://app@db/mappa?hostaddr=10.0.0.5"),
        ("channel_binding", "postgresql://app@db/mappa?channel_binding=require"),
        ("require_auth", "postgresql://app@db/mappa?require_auth=scram-sha-256"),
        ("gssencmode", "postgresql://app@db/mappa?gssencmode=require"),
        ("load_balance_hosts", "postgresql://app@h1,h2/mappa?load_balance_hosts=random"),
        ("sslsni", "postgresql://app@db/mappa?sslsni=0"),
        ("service", "postgresql:///?service=mappa"),
        ("client_encoding", "postgresql://app@db/mappa?client_encoding=LATIN1"),
        ("options", "postgresql://app@db/mappa?options=-d%205"),
        ("sslmode", "postgresql://app@db/mappa?sslmode=require&sslrootcert=system"),
    ],
)
def test_a_parameter_the_reports_driver_cannot_honour_stops_the_start(parameter, url, env):
    env.setenv("DATABASE_URL", url)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"DATABASE_URL: {parameter}") and "\n" not in message


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app@db/mappa?gssencmode=disable&channel_binding=prefer&sslsni=1",
        "postgresql://app@db/mappa?client_encoding=UTF8&sslcompression=0",
        "postgresql://app@db/mappa?load_balance_hosts=disable&fallback_application_name=x",
    ],
)
def test_parameters_asyncpg_already_satisfies_are_accepted(url, env):
    env.setenv("DATABASE_URL", url)
    assert load_settings().database_url == url


def test_a_url_libpq_cannot_read_stops_the_start_without_echoing_the_password(env):
    env.setenv("DATABASE_URL", "postgresql://app:hunter2@db/mappa?sslmdoe=verify-full")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith("DATABASE_URL: ") and "sslmdoe" in message
    assert "hunter2" not in message
