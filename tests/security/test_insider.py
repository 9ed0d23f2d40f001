"""An insider leaves marks (hardening point 8).

The service's own connections cannot switch off the append-only triggers or alter a table;
what a database superuser does behind the service's back (a partner-index row inserted to
let a stranger read, a consultation-log row deleted or edited to hide a read) is found by
`mappa-record verify --all`, which exits 1 and names it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from uuid import UUID

import pytest
from psycopg import errors

from service.consultation import verify_log
from service.integrity import verify_nominal

REASON = "Checking the record after a reported intrusion"


def _mappa_record(settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "DATABASE_URL": settings.database_url,
        "MAPPA_DATA_DIR": str(settings.data_dir),
        "MAPPA_JWT_ISSUER": settings.jwt_issuer,
        "MAPPA_DEV_TOKENS": "true",
    }
    return subprocess.run(
        [Path(sys.executable).parent / "mappa-record", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _behind_the_service(db, sql: str, params: tuple = ()) -> None:
    """What a superuser can do: lift the append-only triggers, change rows, put them back."""
    with db.connect() as conn:
        conn.execute("SET session_replication_role = replica")  # triggers do not fire
        conn.execute(sql, params)
        conn.commit()


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE nominals_events DISABLE TRIGGER ALL",
        "ALTER TABLE consultation_log DISABLE TRIGGER consultation_log_append_only",
        "DROP TRIGGER nominals_events_append_only ON nominals_events",
        "ALTER TABLE nominal_partners ADD COLUMN note text",
        "SET session_replication_role = replica",
    ],
)
def test_the_service_s_own_connections_cannot_lift_the_triggers_or_alter_tables(service, statement):
    with (
        service.ledger.datastore.get_connection() as conn,
        pytest.raises((errors.InsufficientPrivilege, errors.ObjectNotInPrerequisiteState)),
    ):
        assert conn.execute("SELECT current_user").fetchone()["current_user"] == "mappa_app"
        conn.execute(statement)


def test_verify_finds_a_partner_index_row_inserted_behind_the_service(
    service, db, settings, register
):
    nominal_id = register("police:kent")
    assert verify_nominal(service.ledger.app, UUID(nominal_id)).intact
    _behind_the_service(
        db,
        "INSERT INTO nominal_partners (nominal_id, agency) VALUES (%s, %s)",
        (nominal_id, "police:essex"),
    )
    try:
        verdict = verify_nominal(service.ledger.app, UUID(nominal_id))
        assert not verdict.intact
        assert verdict.reason == (
            "the partner index names police:essex, which the events do not partner"
        )
        cli = _mappa_record(settings, "verify", "--all", "--quiet")
        assert cli.returncode == 1
        assert f"{nominal_id}: BROKEN" in cli.stdout and "police:essex" in cli.stdout
    finally:
        _behind_the_service(
            db,
            "DELETE FROM nominal_partners WHERE nominal_id = %s AND agency = %s",
            (nominal_id, "police:essex"),
        )
    assert verify_nominal(service.ledger.app, UUID(nominal_id)).intact


@pytest.mark.parametrize("tamper", ["delete", "edit", "insert"])
def test_verify_finds_the_consultation_log_thinned_edited_or_padded(
    service, db, client, auth, register, tamper
):
    nominal_id = register("police:kent")
    for _ in range(3):
        assert client.get(f"/v1/nominals/{nominal_id}", headers=auth("police:kent")).is_success
    assert verify_log(service.ledger.datastore).intact
    with db.connect() as conn:
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM consultation_log WHERE nominal_id = %s ORDER BY id", (nominal_id,)
            )
        ]
    middle = ids[1]
    with db.connect() as conn:
        saved = conn.execute("SELECT * FROM consultation_log WHERE id = %s", (middle,)).fetchone()
    if tamper == "delete":
        _behind_the_service(db, "DELETE FROM consultation_log WHERE id = %s", (middle,))
    elif tamper == "edit":
        _behind_the_service(
            db, "UPDATE consultation_log SET sub = 'someone-else' WHERE id = %s", (middle,)
        )
    else:
        _behind_the_service(
            db,
            "INSERT INTO consultation_log (sub, agency, nominal_id, route, action, outcome)"
            " VALUES ('ghost', 'police:kent', %s, 'GET /v1/nominals/{id}', 'read', 'allowed')",
            (nominal_id,),
        )
    try:
        verdict = verify_log(service.ledger.datastore)
        assert not verdict.intact
        if tamper == "delete":
            assert verdict.first_bad_id == ids[2]
            assert "removed" in verdict.reason
        elif tamper == "edit":
            assert verdict.first_bad_id == middle
            assert "does not match" in verdict.reason
        else:
            assert "no hash" in verdict.reason
    finally:
        _restore(db, tamper, middle, saved)
    assert verify_log(service.ledger.datastore).intact


def _restore(db, tamper: str, middle: int, saved: tuple) -> None:
    """Put the log back as it was, so the session's other tests find it intact."""
    with db.connect() as conn:
        conn.execute("SET session_replication_role = replica")
        if tamper == "delete":
            placeholders = ", ".join(["%s"] * len(saved))
            conn.execute(f"INSERT INTO consultation_log VALUES ({placeholders})", saved)
        elif tamper == "edit":
            conn.execute("UPDATE consultation_log SET sub = %s WHERE id = %s", (saved[2], middle))
        else:
            conn.execute("DELETE FROM consultation_log WHERE sub = 'ghost'")
        conn.commit()
