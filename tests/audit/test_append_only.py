"""Append-only at the database level: the service's role lacks the privileges, and the
trigger refuses even the owner (docs/design.md#integrity; docs/adr/004-append-only-role.md)."""

import psycopg
import pytest
from eventsourcing.persistence import ProgrammingError

from tests.audit.conftest import pdf_bytes
from tests.conftest import event, random_crn

APPEND_ONLY = (
    "nominals_events",
    "event_index",
    "nominal_identifiers",
    "identifier_releases",
    "consultation_log",
    "documents",
)


@pytest.fixture
def some_rows(client, auth, register, upload):
    nominal_id = register("police:kent")
    client.get(f"/v1/nominals/{nominal_id}", headers=auth("police:kent"))  # a consultation row
    assert upload(nominal_id, pdf_bytes(text="append-only")).status_code in (200, 201)  # a document
    crn = client.get(f"/v1/nominals/{nominal_id}", headers=auth("police:kent")).json()[
        "identifiers"
    ]["crn"]
    correction = {"kind": "crn", "from": crn, "to": random_crn(), "rationale": "Mistyped"}
    r = client.post(
        f"/v1/nominals/{nominal_id}/events",
        json=event("IdentifierCorrected", correction),
        headers=auth("police:kent"),
    )
    assert r.status_code == 201, r.text  # an identifier released
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
        "identifier_releases": "value",
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
        "identifier_releases": "value",
        "consultation_log": "route",
        "documents": "media_type",
    }[table]
    # A table another's foreign key references (the releases name their claim and event,
    # migration 0010) is refused TRUNCATE before its trigger is asked; with CASCADE, the
    # triggers of both refuse it.
    referenced = table in ("event_index", "nominal_identifiers") and statement.startswith("TRUNC")
    refusal = (
        (psycopg.errors.FeatureNotSupported, "referenced in a foreign key")
        if referenced
        else (psycopg.errors.InsufficientPrivilege, "append-only")
    )
    with db.connect() as conn, pytest.raises(refusal[0], match=refusal[1]):
        conn.execute(statement.format(t=table, c=column))
    if referenced:
        with db.connect() as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement.format(t=table, c=column) + " CASCADE")


def test_the_service_role_can_still_append_and_read(client, auth, some_rows):
    r = client.get(f"/v1/nominals/{some_rows}/history", headers=auth("police:kent"))
    assert r.status_code == 200
    # registered, minutes, an identifier corrected
    assert [e["version"] for e in r.json()["events"]] == [1, 2, 3]
