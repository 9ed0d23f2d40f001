"""Retraction, not deletion: `EntryRetracted` hides an entry from current views and keeps
it in history and in the hash chain."""

import uuid

from tests.audit.conftest import entry
from tests.conftest import NOTHING


def test_a_retracted_entry_leaves_the_view_and_stays_in_history_and_the_chain(
    client, auth, auditor, register, post
):
    nominal_id = register("police:kent")
    kept = post(nominal_id, "EntryRecorded", entry(subject="Kept"))
    wrong = post(nominal_id, "EntryRecorded", entry(subject="Posted to the wrong record"))
    retraction = post(
        nominal_id, "EntryRetracted", {"retracts": wrong["event_id"], "rationale": "Wrong nominal"}
    )
    h = auth("police:kent")

    view = client.get(f"/v1/nominals/{nominal_id}", headers=h).json()
    assert [e["subject"] for e in view["entries"]] == ["Kept"]

    history = client.get(f"/v1/nominals/{nominal_id}/history", headers=h).json()["events"]
    assert [e["event_id"] for e in history] == [
        history[0]["event_id"],
        kept["event_id"],
        wrong["event_id"],
        retraction["event_id"],
    ]
    assert history[2]["payload"]["subject"] == "Posted to the wrong record"
    assert history[3]["prev_hash"] == history[2]["hash"]

    before = client.get(
        f"/v1/nominals/{nominal_id}/state", params={"as_of": wrong["recorded_at"]}, headers=h
    ).json()["record"]
    assert [e["subject"] for e in before["entries"]] == ["Kept", "Posted to the wrong record"]

    verdict = client.get(f"/v1/nominals/{nominal_id}/verify", headers=auditor()).json()
    assert verdict["intact"] is True and verdict["events_checked"] == 4


def test_only_the_poster_or_mappa_retracts(client, auth, register, post, footprint):
    nominal_id = register("police:kent")
    posted = post(nominal_id, "EntryRecorded", entry(), agency="probation:midlands")
    mark = footprint.mark()
    r = client.post(
        f"/v1/nominals/{nominal_id}/events",
        json={
            "event_id": str(uuid.uuid4()),
            "type": "EntryRetracted",
            "occurred_at": "2026-11-20",
            "payload": {"retracts": posted["event_id"], "rationale": "Not mine"},
        },
        headers=auth("police:kent"),
    )
    assert r.status_code == 403
    assert footprint.since(mark) == NOTHING
    view = client.get(f"/v1/nominals/{nominal_id}", headers=auth("police:kent")).json()
    assert view["version"] == 2
    assert [e["event_id"] for e in view["entries"]] == [posted["event_id"]]
