"""`GET /v1/nominals/{id}/state?as_of=`: the record as it stood, rebuilt from events."""

from datetime import datetime, timedelta

from tests.audit.conftest import entry


def _instant(recorded_at: str, micros: int = 0) -> str:
    t = datetime.fromisoformat(recorded_at.replace("Z", "+00:00")) + timedelta(microseconds=micros)
    return t.isoformat()


def test_state_at_each_recorded_instant_folds_exactly_the_events_recorded_by_then(
    client, auth, register, post
):
    nominal_id = register("police:kent")
    first = post(nominal_id, "EntryRecorded", entry(subject="First"))
    second = post(
        nominal_id, "LevelChanged", {"to": 2, "rationale": "Escalation", "decided_on": "2026-11-20"}
    )
    h = auth("police:kent")

    def state(as_of: str) -> dict:
        r = client.get(f"/v1/nominals/{nominal_id}/state", params={"as_of": as_of}, headers=h)
        assert r.status_code == 200, r.text
        return r.json()["record"]

    at_first = state(_instant(first["recorded_at"]))
    assert at_first["version"] == 2
    assert at_first["level"] == 1
    assert [e["subject"] for e in at_first["entries"]] == ["First"]

    just_before_second = state(_instant(second["recorded_at"], -1))
    assert just_before_second == at_first

    now = state(_instant(second["recorded_at"]))
    assert now["version"] == 3 and now["level"] == 2
    assert now == client.get(f"/v1/nominals/{nominal_id}", headers=h).json()


def test_the_same_as_of_gives_byte_identical_json(client, auth, register, post):
    nominal_id = register("police:kent")
    stored = post(nominal_id, "EntryRecorded", entry())
    post(nominal_id, "EntryRecorded", entry(subject="Later"))
    params = {"as_of": _instant(stored["recorded_at"])}
    h = auth("police:kent")
    bodies = [
        client.get(f"/v1/nominals/{nominal_id}/state", params=params, headers=h).content
        for _ in range(3)
    ]
    assert bodies[0] == bodies[1] == bodies[2]
    assert b'"Later"' not in bodies[0]


def test_before_registration_is_not_found(client, auth, register):
    nominal_id = register("police:kent")
    registered = client.get(
        f"/v1/nominals/{nominal_id}/history", headers=auth("police:kent")
    ).json()
    before = _instant(registered["events"][0]["recorded_at"], -1)
    r = client.get(
        f"/v1/nominals/{nominal_id}/state", params={"as_of": before}, headers=auth("police:kent")
    )
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


def test_an_instant_without_its_offset_is_refused(client, auth, register):
    nominal_id = register("police:kent")
    r = client.get(
        f"/v1/nominals/{nominal_id}/state",
        params={"as_of": "2026-11-20T12:00:00"},
        headers=auth("police:kent"),
    )
    assert r.status_code == 422


def test_strangers_get_404_and_auditors_must_say_why(client, auth, auditor, register):
    nominal_id = register("police:kent")
    as_of = "2100-01-01T00:00:00Z"
    url = f"/v1/nominals/{nominal_id}/state"
    assert (
        client.get(url, params={"as_of": as_of}, headers=auth("police:devon-cornwall")).status_code
        == 404
    )
    assert client.get(url, params={"as_of": as_of}, headers=auditor(None)).status_code == 400
    assert client.get(url, params={"as_of": as_of}, headers=auditor("too short")).status_code == 400
    r = client.get(url, params={"as_of": as_of}, headers=auditor())
    assert r.status_code == 200
    assert r.json()["record"]["nominal_id"] == nominal_id
