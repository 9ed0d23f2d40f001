"""The hash chain: intact records verify; every kind of tampering behind the service's back
(as a superuser with the append-only trigger off) is reported at its exact version."""

import os
import subprocess
import sys
import uuid
from pathlib import Path
from uuid import UUID

import pytest

from domain.chain import chain_hash
from tests.audit.conftest import as_superuser, separate_service

# Tampering happens in a database of this module's own: the session's shared database (and
# the read models rebuilt from it by other tests) never sees a broken stream.


@pytest.fixture(scope="module")
def tampered(database_url, data_dir):
    with separate_service(database_url, data_dir, f"mappa_tamper_{os.getpid()}") as parts:
        yield parts


@pytest.fixture(scope="module")
def settings(tampered):
    return tampered[0]


@pytest.fixture(scope="module")
def service(tampered):
    return tampered[1]


@pytest.fixture(scope="module")
def db(tampered):
    return tampered[1].db


@pytest.fixture(scope="module")
def client(tampered):
    return tampered[2]


def verify(client, auditor, nominal_id):
    r = client.get(f"/v1/nominals/{nominal_id}/verify", headers=auditor())
    assert r.status_code == 200, r.text
    return r.json()


def _state(db, nominal_id, version) -> bytes:
    with db.connect() as conn:
        row = conn.execute(
            "SELECT state FROM nominals_events"
            " WHERE originator_id = %s AND originator_version = %s",
            (nominal_id, version),
        ).fetchone()
    return bytes(row[0])


def test_an_untouched_record_is_intact(client, auditor, record_of):
    nominal_id = record_of(5)
    assert verify(client, auditor, nominal_id) == {
        "nominal_id": nominal_id,
        "intact": True,
        "events_checked": 5,
        "first_bad_version": None,
        "reason": None,
    }


def test_an_edited_row_is_reported_at_its_version(client, auditor, record_of, db):
    nominal_id = record_of(5)
    state = _state(db, nominal_id, 3)
    assert b"Body of entry 3" in state
    with as_superuser(db) as conn:
        conn.execute(
            "UPDATE nominals_events SET state = %s"
            " WHERE originator_id = %s AND originator_version = 3",
            (state.replace(b"Body of entry 3", b"Nothing of note"), nominal_id),
        )
    found = verify(client, auditor, nominal_id)
    assert (found["intact"], found["first_bad_version"]) == (False, 3)
    assert "hash does not match" in found["reason"]


def test_a_deleted_row_is_reported_at_its_version(client, auditor, record_of, db):
    nominal_id = record_of(5)
    with as_superuser(db) as conn:
        conn.execute(
            "DELETE FROM nominals_events WHERE originator_id = %s AND originator_version = 3",
            (nominal_id,),
        )
    found = verify(client, auditor, nominal_id)
    assert (found["intact"], found["first_bad_version"]) == (False, 3)
    assert "version 3 is missing" in found["reason"]


def test_a_deleted_last_row_is_reported_at_its_version(client, auditor, record_of, db):
    nominal_id = record_of(5)
    with as_superuser(db) as conn:
        conn.execute(
            "DELETE FROM nominals_events WHERE originator_id = %s AND originator_version = 5",
            (nominal_id,),
        )
    found = verify(client, auditor, nominal_id)
    assert (found["intact"], found["first_bad_version"]) == (False, 5)


def test_two_reordered_rows_are_reported_at_the_first(client, auditor, record_of, db):
    nominal_id = record_of(5)
    third, fourth = _state(db, nominal_id, 3), _state(db, nominal_id, 4)
    with as_superuser(db) as conn:
        for version, state in ((3, fourth), (4, third)):
            conn.execute(
                "UPDATE nominals_events SET state = %s"
                " WHERE originator_id = %s AND originator_version = %s",
                (state, nominal_id, version),
            )
    found = verify(client, auditor, nominal_id)
    assert (found["intact"], found["first_bad_version"]) == (False, 3)


def test_rows_moved_to_other_positions_are_reported(client, auditor, record_of, db):
    nominal_id = record_of(5)
    with as_superuser(db) as conn:
        # Swap the global positions of versions 3 and 4 (via a free number).
        conn.execute(
            "UPDATE nominals_events SET notification_id = -notification_id"
            " WHERE originator_id = %s AND originator_version IN (3, 4)",
            (nominal_id,),
        )
        conn.execute(
            "UPDATE nominals_events e SET notification_id = -o.notification_id"
            " FROM nominals_events o"
            " WHERE e.originator_id = %s AND o.originator_id = e.originator_id"
            " AND e.originator_version + o.originator_version = 7"
            " AND e.originator_version IN (3, 4)",
            (nominal_id,),
        )
    found = verify(client, auditor, nominal_id)
    assert (found["intact"], found["first_bad_version"]) == (False, 4)
    assert "out of order" in found["reason"]


def _forge(service, nominal_id: str, version: int, prev_hash: str):
    """A well-formed event appended by someone who knows the canonical form: the chain
    links, the hash is right; only what the service writes beside it is missing."""
    from datetime import UTC, datetime

    from eventsourcing.persistence import StoredEvent  # noqa: F401

    from domain.nominal import Nominal, envelope

    payload = {"entry_type": "intelligence", "subject": "Forged", "body": "Never posted by anyone"}
    event_id = str(uuid.uuid4())
    recorded_at = datetime.now(UTC)
    recorded_by = {"sub": "svc-kent-niche", "agency": "police:kent"}
    digest = chain_hash(
        prev_hash,
        envelope(
            event_id=event_id,
            type="EntryRecorded",
            nominal_id=UUID(nominal_id),
            version=version,
            occurred_at="2026-11-20",
            recorded_at=recorded_at,
            recorded_by=recorded_by,
            payload=payload,
            prev_hash=prev_hash,
        ),
    )
    forged = Nominal.EntryRecorded(
        originator_id=UUID(nominal_id),
        originator_version=version,
        timestamp=recorded_at,
        event_id=event_id,
        occurred_at="2026-11-20",
        recorded_by=recorded_by,
        payload=payload,
        prev_hash=prev_hash,
        hash=digest,
    )
    return service.ledger.app.mapper.to_stored_event(forged)


def test_a_forged_row_is_reported_at_its_version(client, auth, auditor, record_of, db, service):
    nominal_id = record_of(5)
    head = client.get(f"/v1/nominals/{nominal_id}", headers=auth("police:kent")).json()["last_hash"]
    stored = _forge(service, nominal_id, 6, head)
    with as_superuser(db) as conn:
        conn.execute(
            "INSERT INTO nominals_events (originator_id, originator_version, topic, state)"
            " VALUES (%s, %s, %s, %s)",
            (stored.originator_id, stored.originator_version, stored.topic, stored.state),
        )
    # The forgery reads as part of the record...
    view = client.get(f"/v1/nominals/{nominal_id}", headers=auth("police:kent")).json()
    assert view["version"] == 6
    # ...and verify says where it is.
    found = verify(client, auditor, nominal_id)
    assert (found["intact"], found["first_bad_version"]) == (False, 6)
    assert "not in the event index" in found["reason"]


def test_a_naively_forged_row_is_reported_at_its_version(
    client, auth, auditor, record_of, db, service
):
    nominal_id = record_of(3)
    stored = _forge(service, nominal_id, 4, "f" * 64)  # does not link to the chain
    with as_superuser(db) as conn:
        conn.execute(
            "INSERT INTO nominals_events (originator_id, originator_version, topic, state)"
            " VALUES (%s, %s, %s, %s)",
            (stored.originator_id, stored.originator_version, stored.topic, stored.state),
        )
    found = verify(client, auditor, nominal_id)
    assert (found["intact"], found["first_bad_version"]) == (False, 4)
    assert "prev_hash" in found["reason"]


def test_verify_is_for_auditors_who_say_why(client, auth, auditor, register):
    nominal_id = register("police:kent")
    url = f"/v1/nominals/{nominal_id}/verify"
    assert client.get(url, headers=auth("police:kent")).status_code == 403
    assert client.get(url, headers=auditor(None)).status_code == 400
    assert client.get(f"/v1/nominals/{uuid.uuid4()}/verify", headers=auditor()).status_code == 404


def _cli(settings, *args):
    env = os.environ | {
        "DATABASE_URL": settings.database_url,
        "MAPPA_DATA_DIR": str(settings.data_dir),
        "MAPPA_JWT_ISSUER": settings.jwt_issuer,
        "MAPPA_DEV_TOKENS": "true",
    }
    return subprocess.run(
        [str(Path(sys.executable).parent / "mappa-record"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_cli_verifies_one_record_and_all(settings, record_of, db):
    intact = record_of(3)
    broken = record_of(4)
    with as_superuser(db) as conn:
        conn.execute(
            "DELETE FROM nominals_events WHERE originator_id = %s AND originator_version = 2",
            (broken,),
        )
    one = _cli(settings, "verify", "--nominal", intact)
    assert one.returncode == 0, one.stderr
    assert one.stdout.strip() == f"{intact}: intact (3 events)"

    bad = _cli(settings, "verify", "--nominal", broken)
    assert bad.returncode == 1
    assert bad.stdout.startswith(f"{broken}: BROKEN at version 2:")

    every = _cli(settings, "verify", "--all")
    assert every.returncode == 1, every.stderr
    assert f"{broken}: BROKEN at version 2:" in every.stdout
    assert intact not in every.stdout
    assert "events/s" in every.stdout


def test_an_edited_snapshot_is_reported_at_its_version(client, auditor, record_of, db, service):
    nominal_id = record_of(100)  # the library snapshots every 100 events
    assert verify(client, auditor, nominal_id)["intact"] is True
    with db.connect() as conn:
        (state,) = conn.execute(
            "SELECT state FROM nominals_snapshots"
            " WHERE originator_id = %s AND originator_version = 100",
            (nominal_id,),
        ).fetchone()
    assert b"Body of entry 50" in bytes(state)
    with as_superuser(db) as conn:
        conn.execute(
            "UPDATE nominals_snapshots SET state = %s"
            " WHERE originator_id = %s AND originator_version = 100",
            (bytes(state).replace(b"Body of entry 50", b"Nothing of note!"), nominal_id),
        )
    # Rebuilding starts from the snapshot, so the edit shows in a record loaded afresh (a
    # process that holds the record in its cache shows the edit once it loads it again)...
    rebuilt = service.ledger.app.repository.get(UUID(nominal_id), version=100)
    assert "Nothing of note!" in [e["body"] for e in rebuilt.view()["entries"]]
    # ...and verify, which folds the events themselves, names the snapshot's version.
    found = verify(client, auditor, nominal_id)
    assert (found["intact"], found["first_bad_version"]) == (False, 100)
    assert "snapshot" in found["reason"]
