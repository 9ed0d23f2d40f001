"""Fixtures for the integrations: HMPPS messages as producers send them, and integration clients."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.conftest import random_crn, random_noms

PROBATION_CLIENT = "probation:national-delius"
PRISON_CLIENT = "prison:nomis"
INBOUND_SCOPES = "records:write inbound:hmpps"
INBOUND_URL = "/v1/inbound/hmpps-domain-events"


def hmpps_event(
    event_type: str,
    *,
    crn: str | None = None,
    noms: str | None = None,
    noms_type: str = "NOMS",
    occurred_at: str = "2026-11-20T10:15:00.000Z",
    version: Any = 1,
    **additional: Any,
) -> dict[str, Any]:
    identifiers = []
    if crn:
        identifiers.append({"type": "CRN", "value": crn})
    if noms:
        identifiers.append({"type": noms_type, "value": noms})
    return {
        "eventType": event_type,
        "version": version,
        "occurredAt": occurred_at,
        "description": f"{event_type} (test)",
        "detailUrl": "https://example.invalid/detail",
        "additionalInformation": additional,
        "personReference": {"identifiers": identifiers},
    }


def mapp_registration(
    crn: str, category: str = "M2", level: str = "M2", **kw: Any
) -> dict[str, Any]:
    return hmpps_event(
        "probation-case.registration.added",
        crn=crn,
        registerTypeCode="MAPP",
        registerTypeDescription="MAPPA",
        registrationCategoryCode=category,
        registrationLevelCode=level,
        createdDateAndTime="Fri Nov 20 10:15:00 GMT 2026",
        **kw,
    )


def sns(event: dict[str, Any], message_id: str | None = None) -> dict[str, Any]:
    """The event as an SNS HTTP notification delivers it."""
    return {
        "Type": "Notification",
        "MessageId": message_id or str(uuid.uuid4()),
        "TopicArn": "arn:aws:sns:eu-west-2:000000000000:hmpps-domain-events",
        "Message": json.dumps(event),
        "Timestamp": "2026-11-20T10:15:01.000Z",
        "MessageAttributes": {"eventType": {"Type": "String", "Value": event.get("eventType")}},
    }


@pytest.fixture
def inbound(client, auth):
    """inbound(body, agency=PROBATION_CLIENT) -> the response to posting the message."""

    def post(body: Any, agency: str = PROBATION_CLIENT, scopes: str = INBOUND_SCOPES, **kw: Any):
        return client.post(INBOUND_URL, json=body, headers=auth(agency, scopes), **kw)

    return post


@pytest.fixture
def person(register):
    """person(**overrides) -> (nominal_id, crn, noms) of a new record registered by probation."""

    def make(**overrides: Any) -> tuple[str, str, str]:
        crn, noms = random_crn(), random_noms()
        overrides.setdefault("identifiers", {"crn": crn, "noms": noms})
        nominal_id = register("probation:midlands", **overrides)
        return nominal_id, crn, noms

    return make


@pytest.fixture
def view(client, auth):
    def read(nominal_id: str) -> dict[str, Any]:
        r = client.get(f"/v1/nominals/{nominal_id}", headers=auth("probation:midlands"))
        assert r.status_code == 200, r.text
        return r.json()

    return read
