"""Floods end (hardening point 9): what one record, one officer or one connection can make
the service hold is bounded."""

from __future__ import annotations

import uuid
from uuid import UUID

from domain.nominal import VIEW_LIST_LIMIT
from service.auth import Principal
from service.records import NewEvent

POLICE = Principal(
    sub="test-police", agency="police:kent", scopes=frozenset({"records:read", "records:write"})
)


def test_a_record_s_view_holds_its_latest_items_and_points_to_the_rest(
    service, client, auth, register
):
    nominal_id = register("police:kent")
    more = 7
    for i in range(VIEW_LIST_LIMIT + more):
        service.records.post_event(
            POLICE,
            UUID(nominal_id),
            NewEvent(
                uuid.uuid4(),
                "EntryRecorded",
                "2026-11-20",
                {"entry_type": "contact", "subject": f"contact {i}", "body": "b"},
            ),
            None,
        )

    view = client.get(f"/v1/nominals/{nominal_id}", headers=auth("police:kent")).json()

    subjects = [e["subject"] for e in view["entries"]]
    assert subjects == [f"contact {i}" for i in range(more, VIEW_LIST_LIMIT + more)]
    assert view["omitted"] == {"entries": more}
    history = client.get(
        view["history"], params={"limit": 1000}, headers=auth("police:kent")
    ).json()
    recorded = [e["payload"]["subject"] for e in history["events"] if e["type"] == "EntryRecorded"]
    assert recorded == [f"contact {i}" for i in range(VIEW_LIST_LIMIT + more)]
