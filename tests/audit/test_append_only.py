"""Append-only at the database level: the service's role lacks the privileges, and the
trigger refuses even the owner (docs/design.md#integrity; docs/adr/004-append-only-role.md)."""

import psycopg
import pytest
from eventsourcing.persistence import ProgrammingError

from tests.audit.conftest import pdf_bytes

APPEND_ONLY = (
    "nominals_events",
    "event_index",
    "nominal_identifiers",
    "consultation_log",
    "documents",
)


@pytest.fixture
def some_rows(client, auth, register, upload):
    nominal_id = register("police:kent")
    client.get(f"/v1/nominals/{nominal_id}", headers=auth("police:kent"))  # a consultation row
    assert upload(nominal_id, pdf_bytes(text="append-only")).status_code in (200, 201)  # a document
    return nominal_id


def test_the_event_store_runs_as_the_restricted_role(service):
    with service.ledger.datastore.transaction(commit=False) as curs:
        curs.execute("SELECT current_user AS who")
        assert curs.fetchone()["who"] == "mappa_app"


@pytest.mark.parametrize("table", [*APPEND_ONLY, "nominals_snapshots"])
@pytest.mark.parametrize(
    "statement",
    ["UPDATE {t} SET {c} = {c}", "DELETE FROM {t}", "TRUNCATE {t}"],
    ids=["update", "delete", "truncate"],
)
def test_the_service_role_cannot_rewrite(service, some_rows, table, statement):
    column = {
        "nominals_events": "state",
        "event_index": "agency",
        "nominal_identifiers": "value",
        "consultation_log": "route",
        "documents": "media_type",
        "nominals_snapshots": "state",
    }[table]
    # The library wraps the driver's errors; the message is PostgreSQL's privilege check.
    with (
        pytest.raises(ProgrammingError, match=f"permission denied for table {table}"),
        service.ledger.datastore.transaction(commit=False) as curs,
    ):
        curs.execute(statement.format(t=table, c=column))


@pytest.mark.parametrize("table", APPEND_ONLY)
@pytest.mark.parametrize(
    "statement",
    ["UPDATE {t} SET {c} = {c}", "DELETE FROM {t}", "TRUNCATE {t}"],
    ids=["update", "delete", "truncate"],
)
def test_the_trigger_refuses_even_the_owner(db, some_rows, table, statement):
    column = {
        "nominals_events": "state",
        "event_index": "agency",
        "nominal_identifiers": "value",
        "consultation_log": "route",
        "documents": "media_type",
    }[table]
    with (
        db.connect() as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"),
    ):
        conn.execute(statement.format(t=table, c=column))


def test_the_service_role_can_still_append_and_read(client, auth, some_rows):
    r = client.get(f"/v1/nominals/{some_rows}/history", headers=auth("police:kent"))
    assert r.status_code == 200
    assert [e["version"] for e in r.json()["events"]] == [1, 2]  # registered, minutes
