"""ADR 004 with a DATABASE_URL whose user owns the database but is not a superuser: once
the DBA has made it a member of mappa_app, migrations run and the service still writes
history through a role that cannot rewrite it."""

import os

import psycopg
import pytest
from eventsourcing.persistence import ProgrammingError
from sqlalchemy.engine import make_url

from service.bootstrap import start
from service.runtime.settings import Settings


@pytest.fixture(scope="module")
def owner_url(database_url, service):  # the session's service has created mappa_app
    owner = f"mappa_owner_{os.getpid()}"
    name = f"mappa_owned_{os.getpid()}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'DROP ROLE IF EXISTS "{owner}"')
        conn.execute(f'CREATE ROLE "{owner}" LOGIN')
        conn.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
        # The DBA's one step (ADR 004): the role exists cluster-wide already.
        conn.execute(f'GRANT mappa_app TO "{owner}"')
    url = make_url(database_url).set(database=name, username=owner)
    yield url.render_as_string(hide_password=False)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'DROP ROLE IF EXISTS "{owner}"')


def test_an_owner_url_migrates_and_writes_as_the_restricted_role(owner_url, data_dir):
    service = start(
        Settings(database_url=owner_url, data_dir=data_dir, pool_size=1, dev_tokens=True)
    )
    try:
        with service.ledger.datastore.transaction(commit=False) as curs:
            curs.execute("SELECT current_user AS who, session_user AS login")
            row = curs.fetchone()
        assert row["who"] == "mappa_app" and row["login"].startswith("mappa_owner_")
        with (
            pytest.raises(ProgrammingError, match="permission denied"),
            service.ledger.datastore.transaction(commit=False) as curs,
        ):
            curs.execute("DELETE FROM consultation_log")
    finally:
        service.close()


def test_a_role_the_service_cannot_act_as_stops_the_start_with_one_line(database_url, data_dir):
    from service.bootstrap import StartupError

    settings = Settings(
        database_url=database_url,
        data_dir=data_dir,
        pool_size=1,
        db_role="no_such_role",
        dev_tokens=True,
    )
    with pytest.raises(StartupError) as caught:
        start(settings).close()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("MAPPA_DB_ROLE: cannot act as the role 'no_such_role'")
