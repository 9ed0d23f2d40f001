"""Object- and function-level access, as data: every route x method x kind of caller.

To cover a new route, add one Route row: how to call it on a record, and what each kind
of caller gets. A status alone is checked as such; `HIDDEN` means a 200 that must not show
the record (a look-up among the records the caller may read).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import event, registration

HIDDEN = "200, without the record"

PARTNER = "police:kent"
STRANGER = "police:essex"
AUDITOR = "inspectorate:hmicfrs"
JUSTIFICATION = "Thematic inspection of MAPPA level 2 cases, 2026"

# kind of caller -> (agency, scopes, extra headers)
CALLERS: dict[str, tuple[str, str, dict[str, str]]] = {
    "partnered": (PARTNER, "records:read records:write", {}),
    "stranger": (STRANGER, "records:read records:write", {}),
    "partnered, missing scope": (PARTNER, "feed:read reports:read", {}),
    "auditor with justification": (AUDITOR, "audit:read", {"Justification": JUSTIFICATION}),
    "auditor without justification": (AUDITOR, "audit:read", {}),
}


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    json: dict[str, Any] | None = None


@dataclass(frozen=True)
class Route:
    name: str
    call: Callable[[str, dict[str, str]], Call]  # (nominal_id, identifiers) -> the request
    expect: dict[str, int | str]  # kind of caller -> status, or HIDDEN
    names_record: bool = True  # answers 404 for strangers and for unknown ids


def _entry() -> dict[str, Any]:
    return event(
        "EntryRecorded",
        {"entry_type": "contact", "subject": "Home visit", "body": "Seen at home; no concerns."},
    )


ROUTES: list[Route] = [
    Route(
        "register",
        lambda nid, ids: Call("POST", "/v1/nominals", registration()),
        {
            "partnered": 201,
            "stranger": 201,
            "partnered, missing scope": 403,
            "auditor with justification": 403,
            "auditor without justification": 403,
        },
        names_record=False,
    ),
    Route(
        "post event",
        lambda nid, ids: Call("POST", f"/v1/nominals/{nid}/events", _entry()),
        {
            "partnered": 201,
            "stranger": 404,
            "partnered, missing scope": 403,
            "auditor with justification": 403,
            "auditor without justification": 403,
        },
    ),
    Route(
        "view",
        lambda nid, ids: Call("GET", f"/v1/nominals/{nid}"),
        {
            "partnered": 200,
            "stranger": 404,
            "partnered, missing scope": 403,
            "auditor with justification": 200,
            "auditor without justification": 400,
        },
    ),
    Route(
        "history",
        lambda nid, ids: Call("GET", f"/v1/nominals/{nid}/history"),
        {
            "partnered": 200,
            "stranger": 404,
            "partnered, missing scope": 403,
            "auditor with justification": 200,
            "auditor without justification": 400,
        },
    ),
    Route(
        "look-up by PNC",
        lambda nid, ids: Call("GET", f"/v1/nominals?pnc={ids['pnc']}"),
        {
            "partnered": 200,
            "stranger": HIDDEN,
            "partnered, missing scope": 403,
            "auditor with justification": 200,
            "auditor without justification": 400,
        },
        names_record=False,
    ),
    Route(
        "look-up by CRN",
        lambda nid, ids: Call("GET", f"/v1/nominals?crn={ids['crn']}"),
        {
            "partnered": 200,
            "stranger": HIDDEN,
            "partnered, missing scope": 403,
            "auditor with justification": 200,
            "auditor without justification": 400,
        },
        names_record=False,
    ),
    # Issues 3, 4 and 7 add their rows here: state, verify, access-log, documents, minutes,
    # feed, reports, inbound.
]

CASES = [(route, kind) for route in ROUTES for kind in CALLERS]


@pytest.fixture(scope="module")
def record(client, auth) -> tuple[str, dict[str, str]]:
    body = registration()
    r = client.post("/v1/nominals", json=body, headers=auth(PARTNER))
    assert r.status_code == 201, r.text
    return r.json()["nominal_id"], r.json()["event"]["payload"]["identifiers"]


def _send(client, token, kind: str, call: Call):
    agency, scopes, extra = CALLERS[kind]
    headers = {"Authorization": f"Bearer {token(agency, scopes)}"} | extra
    return client.request(call.method, call.path, json=call.json, headers=headers)


@pytest.mark.parametrize(("route", "kind"), CASES, ids=[f"{r.name}-{k}" for r, k in CASES])
def test_access_matrix(route, kind, record, client, token):
    nominal_id, identifiers = record
    r = _send(client, token, kind, route.call(nominal_id, identifiers))
    expected = route.expect[kind]
    if expected == HIDDEN:
        assert r.status_code == 200, r.text
        assert nominal_id not in r.text
        assert r.json() == {"results": []}
        return
    assert r.status_code == expected, r.text
    if expected >= 400:
        assert r.headers["content-type"] == "application/problem+json"
        assert nominal_id not in r.text
    if expected == 200 and route.name.startswith("look-up"):
        assert [x["nominal_id"] for x in r.json()["results"]] == [nominal_id]


@pytest.mark.parametrize("route", [r for r in ROUTES if r.names_record], ids=lambda r: r.name)
def test_a_stranger_cannot_tell_a_record_from_no_record(route, record, client, token):
    nominal_id, identifiers = record
    unknown = "00000000-0000-4000-8000-000000000000"
    there = _send(client, token, "stranger", route.call(nominal_id, identifiers))
    absent = _send(client, token, "stranger", route.call(unknown, identifiers))
    assert there.status_code == absent.status_code == 404
    assert there.json() == absent.json()


def test_the_stranger_refusals_append_nothing(record, client, token, stored_count):
    nominal_id, identifiers = record
    before = stored_count(nominal_id)
    for route in ROUTES:
        if route.names_record:
            _send(client, token, "stranger", route.call(nominal_id, identifiers))
    assert stored_count(nominal_id) == before


def test_unpartnering_takes_effect_on_the_very_next_request(
    register, partner, unpartner, client, auth
):
    nominal_id = register(PARTNER)
    ids = client.get(f"/v1/nominals/{nominal_id}", headers=auth(PARTNER)).json()["identifiers"]
    partner(nominal_id, "police:essex")
    record_routes = [r for r in ROUTES if r.names_record or r.name.startswith("look-up")]
    for route in record_routes:
        call = route.call(nominal_id, ids)
        r = client.request(call.method, call.path, json=call.json, headers=auth(STRANGER))
        assert r.status_code in (200, 201), (route.name, r.text)
    unpartner(nominal_id, "police:essex")
    for route in record_routes:
        call = route.call(nominal_id, ids)
        r = client.request(call.method, call.path, json=call.json, headers=auth(STRANGER))
        if route.names_record:
            assert r.status_code == 404, route.name
        else:
            assert r.json() == {"results": []}, route.name


def test_a_held_identifier_is_not_revealed_to_a_stranger(record, client, auth):
    nominal_id, identifiers = record
    body = registration(identifiers={"pnc": identifiers["pnc"]})
    stranger = client.post("/v1/nominals", json=body, headers=auth(STRANGER))
    assert stranger.status_code == 409
    assert "existing_nominal_id" not in stranger.json() and nominal_id not in stranger.text
    partner_answer = client.post(
        "/v1/nominals",
        json=registration(identifiers={"pnc": identifiers["pnc"]}),
        headers=auth(PARTNER),
    )
    assert partner_answer.status_code == 409
    assert partner_answer.json()["existing_nominal_id"] == nominal_id


@pytest.mark.parametrize(
    ("agency", "type_", "payload"),
    [
        (
            "health:leicester-nhs",
            "LevelChanged",
            {"to": 2, "rationale": "r", "decided_on": "2026-11-20"},
        ),
        ("health:leicester-nhs", "AgencyPartnered", {"agency": "police:essex", "reason": "r"}),
        (
            "health:leicester-nhs",
            "ReferralDecided",
            {
                "referral_id": "R1",
                "decision": "level_2",
                "feedback": "f",
                "decided_on": "2026-11-20",
            },
        ),
    ],
)
def test_a_partner_posting_what_its_agency_may_not_is_a_403(
    agency, type_, payload, register, partner, client, auth, stored_count
):
    nominal_id = register(PARTNER)
    partner(nominal_id, agency)
    before = stored_count(nominal_id)
    r = client.post(
        f"/v1/nominals/{nominal_id}/events", json=event(type_, payload), headers=auth(agency)
    )
    assert r.status_code == 403, r.text
    assert stored_count(nominal_id) == before
