"""Migrations run as the owner; the service as a role that can change no table (issue 20;
docs/design.md#beyond-one-machine; docs/adr/026, with ADR 004).

The DBA's set-up, as a deployment has it: a database owned by an owner role, and a login role
for the service that is a member of mappa_app and nothing more. `mappa-record migrate` takes
the owner's URL (MAPPA_MIGRATE_URL or --url) while DATABASE_URL names the service's login;
`serve` on the service's login then starts, posts and projects, and that login can neither
create, alter, drop nor disable a trigger on any table. On a database still behind, it stops
with one line saying who must migrate."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import AUDIENCE, ISSUER, free_port, registration
from tests.reliability.crash import ServerProcess, wait_until


@pytest.fixture
def roles(database_url, service):  # the session's service has created mappa_app
    """(owner's URL, service login's URL) on a database of their own, not yet migrated."""
    pid = os.getpid()
    owner, login, name = f"mappa_owner2_{pid}", f"mappa_login_{pid}", f"mappa_roles_{pid}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for role in (owner, login):
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')
        conn.execute(f'CREATE ROLE "{owner}" LOGIN')
        conn.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
        conn.execute(f'GRANT mappa_app TO "{owner}"')  # the DBA's step of ADR 004
        conn.execute(f'CREATE ROLE "{login}" LOGIN IN ROLE mappa_app')
    url = make_url(database_url).set(database=name)
    yield (
        url.set(username=owner).render_as_string(hide_password=False),
        url.set(username=login).render_as_string(hide_password=False),
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for role in (owner, login):
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def _env(database_url: str, data_dir, **more: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MAPPA_")} | {
        "DATABASE_URL": database_url,
        "MAPPA_DATA_DIR": str(data_dir),
        "MAPPA_JWT_ISSUER": ISSUER,
        "MAPPA_JWT_AUDIENCE": AUDIENCE,
        "MAPPA_DEV_TOKENS": "true",
        **more,
    }


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_migrations_as_the_owner_and_the_service_as_a_role_without_ddl(
    roles, data_dir, token, tmp_path
):
    owner_url, login_url = roles
    owner = make_url(owner_url).username
    migrated = _cli(_env(login_url, data_dir, MAPPA_MIGRATE_URL=owner_url), "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "migrations applied (as the owner's URL)" in migrated.stdout
    with psycopg.connect(owner_url) as conn:
        owners = {
            r[0]
            for r in conn.execute("SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")
        }
    assert owners == {owner}

    serve = ServerProcess(login_url, data_dir, free_port(), tmp_path / "serve.log")
    try:
        serve.start()  # migrations at the code's revision: nothing to change, nothing tried
        headers = {"Authorization": f"Bearer {token('police:kent')}"}
        r = httpx.post(f"{serve.url}/v1/nominals", json=registration(), headers=headers)
        assert r.status_code == 201, r.text
        nominal_id = r.json()["nominal_id"]

        def projected() -> bool:
            with psycopg.connect(login_url) as conn:
                return bool(
                    conn.execute(
                        "SELECT count(*) FROM rm_nominals WHERE nominal_id = %s", (nominal_id,)
                    ).fetchone()[0]
                )

        wait_until(projected, 30, "the runner, as the service's login, to apply the event")
    finally:
        serve.stop()

    refused = {
        "CREATE TABLE sneaky (x int)": "permission denied for schema public",
        "ALTER TABLE nominals_events DISABLE TRIGGER ALL": "must be owner",
        "ALTER TABLE nominals_events ADD COLUMN x int": "must be owner",
        "DROP TABLE rm_nominals": "must be owner",
        "TRUNCATE nominals_events": "permission denied",
        "DELETE FROM event_index": "permission denied",
        "CREATE ROLE intruder": "permission denied",
    }
    for statement, answer in refused.items():
        with psycopg.connect(login_url) as conn, pytest.raises(psycopg.Error, match=answer):
            conn.execute(statement)


def test_migrate_takes_the_owners_url_as_a_flag(roles, data_dir):
    owner_url, login_url = roles
    migrated = _cli(_env(login_url, data_dir), "migrate", "--url", owner_url)
    assert migrated.returncode == 0, migrated.stderr
    again = _cli(_env(login_url, data_dir), "migrate")  # at its revision: nothing to do
    assert again.returncode == 0, again.stderr


def test_a_database_behind_stops_a_role_without_ddl_with_one_line(roles, data_dir):
    _, login_url = roles
    result = _cli(_env(login_url, data_dir), "serve", "--port", str(free_port()))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("mappa-record: the database needs migrations (at none, this release")
    assert line.endswith(
        "the user in DATABASE_URL may not change tables: run `mappa-record migrate` with "
        "MAPPA_MIGRATE_URL naming the owner"
    )
