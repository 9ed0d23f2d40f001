"""An instant with no UTC form (it falls before year 1 or after 9999 in UTC) is a 422 naming
the field, not a 500: schemathesis found `occurred_at` of 0001-01-01 with a positive offset
raising OverflowError while it was formatted as UTC (found after merging main, issue 20)."""

import uuid


def test_an_instant_out_of_range_in_utc_is_refused_naming_the_field(client, auth, register):
    nominal_id = register("police:kent")
    body = {
        "event_id": str(uuid.uuid4()),
        "type": "EntryRecorded",
        "occurred_at": "0001-01-01T00:30:00+01:00",
        "payload": {"entry_type": "visit", "subject": "s", "body": "b"},
    }
    r = client.post(f"/v1/nominals/{nominal_id}/events", json=body, headers=auth("police:kent"))
    assert r.status_code == 422, r.text
    assert "occurred_at" in r.text and "out of range in UTC" in r.text
    r = client.get(
        f"/v1/nominals/{nominal_id}/state",
        params={"as_of": "9999-12-31T23:30:00-01:00"},
        headers=auth(
            "inspectorate:hmi-probation", "audit:read", Justification="Thematic review 2026"
        ),
    )
    assert r.status_code == 422, r.text
