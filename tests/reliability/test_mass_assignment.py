"""Server-owned fields in any request body are refused with 422 naming the field, and
nothing is appended."""

from __future__ import annotations

import pytest

from tests.conftest import event, registration

SERVER_OWNED = {
    "recorded_at": "2020-01-01T00:00:00Z",
    "recorded_by": {"sub": "someone-else", "agency": "mappa:x"},
    "version": 1,
    "position": 1,
    "hash": "0" * 64,
    "prev_hash": "0" * 64,
    "nominal_id": "00000000-0000-4000-8000-000000000000",
    "from": 3,
}

LEVEL_CHANGE = {
    "to": 2,
    "rationale": "Escalating contact with a known victim",
    "decided_on": "2026-11-20",
}


@pytest.mark.parametrize("field", list(SERVER_OWNED))
def test_registration_refuses_server_owned_fields(field, client, auth, stored_count):
    before = stored_count()
    body = registration() | {field: SERVER_OWNED[field]}
    r = client.post("/v1/nominals", json=body, headers=auth("police:kent"))
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]]
    assert stored_count() == before


@pytest.mark.parametrize("field", list(SERVER_OWNED))
def test_an_event_envelope_refuses_server_owned_fields(field, register, client, auth, stored_count):
    nominal_id = register("police:kent")
    body = event("LevelChanged", LEVEL_CHANGE) | {field: SERVER_OWNED[field]}
    r = client.post(f"/v1/nominals/{nominal_id}/events", json=body, headers=auth("police:kent"))
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]]
    assert stored_count(nominal_id) == 1


@pytest.mark.parametrize("field", list(SERVER_OWNED))
def test_an_event_payload_refuses_server_owned_fields(field, register, client, auth, stored_count):
    nominal_id = register("police:kent")
    body = event("LevelChanged", LEVEL_CHANGE | {field: SERVER_OWNED[field]})
    r = client.post(f"/v1/nominals/{nominal_id}/events", json=body, headers=auth("police:kent"))
    assert r.status_code == 422, r.text
    assert f"payload.{field}" in [e["field"] for e in r.json()["errors"]]
    assert stored_count(nominal_id) == 1


def test_the_server_fills_from_itself(register, client, auth):
    nominal_id = register("police:kent")
    r = client.post(
        f"/v1/nominals/{nominal_id}/events",
        json=event("LevelChanged", LEVEL_CHANGE),
        headers=auth("police:kent"),
    )
    assert r.status_code == 201, r.text
    assert r.json()["payload"]["from"] == 1
    assert r.json()["recorded_by"] == {"sub": "test-police:kent", "agency": "police:kent"}
