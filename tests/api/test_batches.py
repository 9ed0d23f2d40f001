"""`POST /v1/batches` (docs/design.md#api): each event judged alone, stored once, in order.

Over real HTTP with real tokens. A batch answers 200 with one result per event, in order:
the status `POST /v1/nominals/{id}/events` would give it, and the stored event or a problem.
"""

from __future__ import annotations

import threading
import uuid

from tests.conftest import event


def _entry(nominal_id: str, subject: str = "Visit", **extra) -> dict:
    payload = {"entry_type": "visit", "subject": subject, "body": "Seen at home"}
    return event("EntryRecorded", payload) | {"nominal_id": nominal_id} | extra


def _stored(db, event_ids: list[str]) -> list[str]:
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT event_id::text FROM event_index WHERE event_id = ANY(%s::uuid[])",
            (event_ids,),
        ).fetchall()
    return [r[0] for r in rows]


def test_a_mixed_batch_answers_each_event_and_stores_only_the_good_ones(client, auth, register, db):
    mine, theirs = register("police:kent"), register("police:essex")
    already = _entry(mine, "Posted before")
    single = {k: v for k, v in already.items() if k != "nominal_id"}
    posted = client.post(f"/v1/nominals/{mine}/events", json=single, headers=auth("police:kent"))
    assert posted.status_code == 201
    batch = [
        _entry(mine, "New"),  # 201
        already,  # 200: stored before, the same body
        _entry(mine, "Stale", if_match=1),  # 412: the record is past version 1
        _entry(theirs, "Not partnered"),  # 404: as for no record
        _entry(str(uuid.uuid4()), "No such record"),  # 404
        _entry(mine, "Bad") | {"payload": {"entry_type": "visit", "subject": "x"}},  # 422
        event("MinutesUploaded", {}) | {"nominal_id": mine},  # 422: minutes come as a file
        {"nominal_id": mine, "type": "NoSuchType"},  # 422
        already | {"payload": already["payload"] | {"body": "Another body"}},  # 409
    ]
    r = client.post("/v1/batches", json={"events": batch}, headers=auth("police:kent"))

    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["index"] for x in results] == list(range(len(batch)))
    assert [x["status"] for x in results] == [201, 200, 412, 404, 404, 422, 422, 422, 409]
    assert results[0]["event"]["payload"]["subject"] == "New"
    assert results[1]["event"]["event_id"] == already["event_id"]
    assert results[3]["problem"] == results[4]["problem"]  # a stranger learns nothing
    assert results[5]["problem"]["errors"][0]["field"] == "payload.body"
    assert results[7]["problem"]["errors"][0]["field"].startswith("events.7")
    ids = [e.get("event_id") for e in batch if e.get("event_id")]
    assert sorted(_stored(db, ids)) == sorted({batch[0]["event_id"], already["event_id"]})


def test_a_record_s_events_are_stored_in_the_batch_s_order(client, auth, register):
    nominal_id = register("police:kent")
    action = {"action_id": "A-1", "description": "Home visit", "assigned_agency": "police:kent",
              "due_on": "2026-12-20"}  # fmt: skip
    done = {"action_id": "A-1", "outcome": "Visited; compliant", "completed_on": "2026-12-01"}
    batch = [
        event("ActionSet", action) | {"nominal_id": nominal_id},
        event("ActionCompleted", done) | {"nominal_id": nominal_id},
        _entry(nominal_id, "Third"),
    ]
    r = client.post("/v1/batches", json={"events": batch}, headers=auth("police:kent"))
    assert [x["status"] for x in r.json()["results"]] == [201, 201, 201]
    assert [x["event"]["version"] for x in r.json()["results"]] == [2, 3, 4]


def test_a_batch_retried_whole_by_four_clients_at_once_stores_each_event_once(
    client, auth, register, db
):
    nominals = [register("police:kent") for _ in range(5)]
    batch = [_entry(nominals[i % 5], f"event {i}") for i in range(50)]
    answers: list[list[int]] = []

    def send() -> None:
        r = client.post("/v1/batches", json={"events": batch}, headers=auth("police:kent"))
        assert r.status_code == 200, r.text
        answers.append([x["status"] for x in r.json()["results"]])

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(answers) == 4
    for i in range(50):  # each event stored by exactly one of the four, found by the others
        assert sorted(a[i] for a in answers) == [200, 200, 200, 201], i
    assert len(_stored(db, [e["event_id"] for e in batch])) == 50
    for nominal_id in nominals:
        history = client.get(f"/v1/nominals/{nominal_id}/history", headers=auth("police:kent"))
        assert [e["version"] for e in history.json()["events"]] == list(range(1, 12))


def test_a_batch_is_up_to_500_events_and_needs_records_write(client, auth, register):
    nominal_id = register("police:kent")
    too_many = [_entry(nominal_id, f"e{i}") for i in range(501)]
    r = client.post("/v1/batches", json={"events": too_many}, headers=auth("police:kent"))
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    r = client.post(
        "/v1/batches",
        json={"events": [_entry(nominal_id)]},
        headers=auth("police:kent", "records:read"),
    )
    assert r.status_code == 403
    empty = client.post("/v1/batches", json={"events": []}, headers=auth("police:kent"))
    assert empty.status_code == 422
