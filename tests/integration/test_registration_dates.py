"""Dates the service fills in are London-local dates (docs/design.md#rules: Europe/London)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from service.auth import Principal
from service.bootstrap import Application
from tests.conftest import registration

POLICE = Principal(
    sub="test-police", agency="police:kent", scopes=frozenset({"records:read", "records:write"})
)


def test_a_registration_without_occurred_at_takes_the_london_date_of_recording(settings, db):
    # 23:30 UTC on 1 July is 00:30 on 2 July in London (BST).
    layer = Application.build(settings, db, clock=lambda: datetime(2026, 7, 1, 23, 30, tzinfo=UTC))
    try:
        body = registration()
        event_id = uuid.UUID(body.pop("event_id"))
        posted = layer.records.register(POLICE, event_id, None, body)
    finally:
        layer.close()
    assert posted.event["recorded_at"] == "2026-07-01T23:30:00.000000Z"
    assert posted.event["occurred_at"] == "2026-07-02"
