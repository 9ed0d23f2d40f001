"""Concurrent writers on one record: every post is stored, none fails (a shared-core fix:
a conflict found by a failing insert inside the recorder's pipeline used to leave the pooled
connection's prepared statements out of step with the server, and its next use failed)."""

from __future__ import annotations

import threading

from tests.conftest import event


def test_many_writers_on_one_record_all_succeed(client, auth, register):
    nominal_id = register("police:kent")
    statuses: list[int] = []
    lock = threading.Lock()

    def write(w: int) -> None:
        for i in range(12):
            body = event(
                "EntryRecorded", {"entry_type": "visit", "subject": f"w{w} {i}", "body": "x"}
            )
            r = client.post(
                f"/v1/nominals/{nominal_id}/events", json=body, headers=auth("police:kent")
            )
            with lock:
                statuses.append(r.status_code)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [201] * 96
    r = client.get(f"/v1/nominals/{nominal_id}", headers=auth("police:kent"))
    assert r.json()["version"] == 97
