"""Every route of issue 2 × every kind of caller, over real HTTP with real signed tokens.

Callers: a partnered agency; a stranger agency (valid token, not partnered); a token
missing the route's scope; an expired token; a token for another audience; an unsigned
(`alg: none`) token. Each refusal is problem+json and changes nothing.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest
import rfc8785

from domain.calendar import london_date
from domain.chain import chain_hash
from domain.identifiers import CHECK_LETTERS
from tests.conftest import (
    AUDIENCE,
    ISSUER,
    NOTHING,
    event,
    random_crn,
    random_noms,
    random_pnc,
    registration,
)

PROBLEM = "application/problem+json"
PARTNER = "police:kent"
LEAD = "probation:midlands"
STRANGER = "police:elsewhere"
MAPPA = "mappa:kent"
RECEIVING = "mappa:essex"
NOMS = (random_noms(), random_noms())


def claims(agency: str, scopes: str, **overrides: Any) -> dict[str, Any]:
    now = int(datetime.now(UTC).timestamp())
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": f"test-{agency}",
        "agency": agency,
        "scope": scopes,
        "iat": now,
        "exp": now + 600,
    } | overrides


@pytest.fixture(scope="module")
def faulty_tokens(signing_key) -> dict[str, str]:
    """Tokens with one fault each, made with PyJWT directly (mint_token refuses odd input)."""
    now = int(datetime.now(UTC).timestamp())
    scopes = "records:read records:write"

    def signed(body: dict[str, Any]) -> str:
        return jwt.encode(
            body, signing_key.private_key, algorithm="ES256", headers={"kid": signing_key.kid}
        )

    return {
        # Expired well beyond the 30 s leeway.
        "expired": signed(claims(PARTNER, scopes, iat=now - 900, exp=now - 300)),
        "wrong audience": signed(claims(PARTNER, scopes, aud="someone-else")),
        "alg none": jwt.encode(
            claims(PARTNER, scopes), None, algorithm="none", headers={"kid": signing_key.kid}
        ),
    }


def assert_problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    body = r.json()
    assert body["status"] == status
    assert body["type"].startswith("https://") and body["title"] and body["detail"]
    return body


# -- the matrix ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    name: str
    scope: str  # the scope the route needs
    other_scope: str  # a scope the "missing scope" caller has instead
    ok: int


ROUTES = [
    Route("POST /v1/nominals", "records:write", "records:read", 201),
    Route("POST /v1/nominals/{id}/events", "records:write", "records:read", 201),
    Route("GET /v1/nominals/{id}", "records:read", "records:write", 200),
    Route("GET /v1/nominals?pnc=", "records:read", "records:write", 200),
    Route("GET /v1/nominals/{id}/history", "records:read", "records:write", 200),
]
CALLERS = ["partnered", "stranger", "missing scope", "expired", "wrong audience", "alg none"]


@dataclass
class Record:
    nominal_id: str
    pnc: str


@pytest.fixture
def record(client, auth) -> Record:
    body = registration()
    r = client.post("/v1/nominals", json=body, headers=auth(PARTNER))
    assert r.status_code == 201, r.text
    return Record(r.json()["nominal_id"], r.json()["event"]["payload"]["identifiers"]["pnc"])


def call(
    client: httpx.Client, route: Route, record: Record, headers: dict[str, str], new_pnc: str
) -> httpx.Response:
    nid = record.nominal_id
    if route.name == "POST /v1/nominals":
        return client.post(
            "/v1/nominals", headers=headers, json=registration(identifiers={"pnc": new_pnc})
        )
    if route.name == "POST /v1/nominals/{id}/events":
        body = event("EntryRecorded", {"entry_type": "other", "subject": "s", "body": "b"})
        return client.post(f"/v1/nominals/{nid}/events", headers=headers, json=body)
    if route.name == "GET /v1/nominals/{id}":
        return client.get(f"/v1/nominals/{nid}", headers=headers)
    if route.name == "GET /v1/nominals?pnc=":
        return client.get("/v1/nominals", params={"pnc": record.pnc}, headers=headers)
    return client.get(f"/v1/nominals/{nid}/history", headers=headers)


def headers_for(caller: str, route: Route, token, faulty_tokens) -> dict[str, str]:
    if caller == "partnered":
        return {"Authorization": f"Bearer {token(PARTNER)}"}
    if caller == "stranger":
        # Registration needs no partnering: its stranger is an agency that may not register.
        agency = "housing:kent" if route.name == "POST /v1/nominals" else STRANGER
        return {"Authorization": f"Bearer {token(agency)}"}
    if caller == "missing scope":
        return {"Authorization": f"Bearer {token(PARTNER, route.other_scope)}"}
    return {"Authorization": f"Bearer {faulty_tokens[caller]}"}


def expected_status(caller: str, route: Route) -> int:
    if caller == "partnered":
        return route.ok
    if caller == "stranger":
        return {"POST /v1/nominals": 403, "GET /v1/nominals?pnc=": 200}.get(route.name, 404)
    if caller == "missing scope":
        return 403
    return 401


def history_versions(client, auth, nominal_id: str) -> list[int]:
    r = client.get(f"/v1/nominals/{nominal_id}/history", headers=auth(PARTNER))
    assert r.status_code == 200, r.text
    return [e["version"] for e in r.json()["events"]]


def held(client, auth, pnc: str) -> bool:
    r = client.get("/v1/nominals", params={"pnc": pnc}, headers=auth(PARTNER))
    assert r.status_code == 200, r.text
    return bool(r.json()["results"])


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_route_by_caller(client, auth, token, faulty_tokens, record, route, caller):
    new_pnc = random_pnc()
    r = call(client, route, record, headers_for(caller, route, token, faulty_tokens), new_pnc)
    status = expected_status(caller, route)
    writes = route.name.startswith("POST")
    appended = caller == "partnered" and route.name == "POST /v1/nominals/{id}/events"
    registered = caller == "partnered" and route.name == "POST /v1/nominals"

    if status >= 400:
        body = assert_problem(r, status)
        if status == 401:
            assert r.headers["www-authenticate"] == "Bearer"
            assert body["detail"] == "a valid bearer token is required"
    else:
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/json")

    if route.name == "GET /v1/nominals?pnc=" and status == 200:
        found = [x["nominal_id"] for x in r.json()["results"]]
        assert found == ([record.nominal_id] if caller == "partnered" else [])
    if route.name == "GET /v1/nominals/{id}" and status == 200:
        assert r.headers["etag"] == '"1"'
        assert r.json()["nominal_id"] == record.nominal_id

    # Nothing was appended by a refused request, nor registered.
    assert history_versions(client, auth, record.nominal_id) == ([1, 2] if appended else [1])
    if writes:
        assert held(client, auth, new_pnc) is registered


@pytest.mark.parametrize("route", [r for r in ROUTES if "{id}" in r.name], ids=lambda r: r.name)
def test_a_stranger_gets_the_same_404_as_for_a_missing_record(client, auth, record, route):
    missing = Record(str(uuid.uuid4()), record.pnc)
    stranger = call(client, route, record, auth(STRANGER), random_pnc())
    absent = call(client, route, missing, auth(STRANGER), random_pnc())
    partner_absent = call(client, route, missing, auth(PARTNER), random_pnc())
    assert_problem(stranger, 404)
    assert stranger.json() == absent.json() == partner_absent.json()
    assert stranger.headers["content-type"] == absent.headers["content-type"]


def test_a_strangers_look_up_answers_as_for_an_identifier_no_one_holds(client, auth, record):
    known = client.get("/v1/nominals", params={"pnc": record.pnc}, headers=auth(STRANGER))
    unknown = client.get("/v1/nominals", params={"pnc": random_pnc()}, headers=auth(STRANGER))
    assert known.status_code == unknown.status_code == 200
    assert known.json() == unknown.json() == {"results": []}


def test_no_token_at_all_is_401(client, record, footprint):
    mark = footprint.mark()
    r = client.get(f"/v1/nominals/{record.nominal_id}")
    assert_problem(r, 401)
    r = client.get(
        f"/v1/nominals/{record.nominal_id}", headers={"Authorization": "Bearer not-a-jwt"}
    )
    assert_problem(r, 401)
    assert footprint.since(mark) == NOTHING  # not even a consultation row


def test_a_token_signed_with_another_key_is_401(client, record, footprint):
    from cryptography.hazmat.primitives.asymmetric import ec

    mark = footprint.mark()
    other = ec.generate_private_key(ec.SECP256R1())
    forged = jwt.encode(
        claims(PARTNER, "records:read"), other, algorithm="ES256", headers={"kid": "unknown"}
    )
    r = client.get(
        f"/v1/nominals/{record.nominal_id}", headers={"Authorization": f"Bearer {forged}"}
    )
    assert_problem(r, 401)
    body = event("EntryRecorded", {"entry_type": "other", "subject": "s", "body": "b"})
    r = client.post(
        f"/v1/nominals/{record.nominal_id}/events",
        json=body,
        headers={"Authorization": f"Bearer {forged}"},
    )
    assert_problem(r, 401)
    assert footprint.since(mark) == NOTHING


# -- idempotency and If-Match -------------------------------------------------------------


def entry_event(**extra: Any) -> dict[str, Any]:
    return event(
        "EntryRecorded",
        {"entry_type": "visit", "subject": "Home visit", "body": "At home"},
        **extra,
    )


def test_the_same_event_posted_twice_is_stored_once(client, auth, record):
    body = entry_event()
    first = client.post(
        f"/v1/nominals/{record.nominal_id}/events", json=body, headers=auth(PARTNER)
    )
    again = client.post(
        f"/v1/nominals/{record.nominal_id}/events", json=body, headers=auth(PARTNER)
    )
    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert history_versions(client, auth, record.nominal_id) == [1, 2]


def test_the_same_event_id_with_another_body_is_409_and_nothing_is_appended(client, auth, record):
    body = entry_event()
    url = f"/v1/nominals/{record.nominal_id}/events"
    assert client.post(url, json=body, headers=auth(PARTNER)).status_code == 201
    changed = body | {"payload": body["payload"] | {"body": "Not at home"}}
    assert_problem(client.post(url, json=changed, headers=auth(PARTNER)), 409)
    assert history_versions(client, auth, record.nominal_id) == [1, 2]


def test_the_same_registration_posted_twice_is_stored_once(client, auth):
    body = registration()
    first = client.post("/v1/nominals", json=body, headers=auth(PARTNER))
    again = client.post("/v1/nominals", json=body, headers=auth(PARTNER))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    changed = body | {"gender": "female"}
    assert_problem(client.post("/v1/nominals", json=changed, headers=auth(PARTNER)), 409)


def test_a_stale_if_match_is_412_and_appends_nothing(client, auth, record):
    url = f"/v1/nominals/{record.nominal_id}/events"
    etag = client.get(f"/v1/nominals/{record.nominal_id}", headers=auth(PARTNER)).headers["etag"]
    assert etag == '"1"'
    ok = client.post(url, json=entry_event(), headers=auth(PARTNER, **{"If-Match": etag}))
    assert ok.status_code == 201, ok.text
    assert ok.headers["etag"] == '"2"'
    stale = client.post(url, json=entry_event(), headers=auth(PARTNER, **{"If-Match": etag}))
    assert_problem(stale, 412)
    assert history_versions(client, auth, record.nominal_id) == [1, 2]


def test_a_malformed_if_match_is_400(client, auth, record):
    r = client.post(
        f"/v1/nominals/{record.nominal_id}/events",
        json=entry_event(),
        headers=auth(PARTNER, **{"If-Match": "yesterday"}),
    )
    assert_problem(r, 400)
    assert history_versions(client, auth, record.nominal_id) == [1]


# -- validation ------------------------------------------------------------------------------


def fields(r: httpx.Response) -> list[str]:
    return [e["field"] for e in assert_problem(r, 422)["errors"]]


def test_a_bad_pnc_names_its_field(client, auth):
    r = client.post(
        "/v1/nominals",
        json=registration(identifiers={"pnc": "2002/0073319A"}),
        headers=auth(PARTNER),
    )
    assert "identifiers.pnc" in fields(r)


def test_a_missing_rationale_names_its_field(client, auth, record):
    body = event("LevelChanged", {"to": 2, "decided_on": "2026-11-20"})
    r = client.post(f"/v1/nominals/{record.nominal_id}/events", json=body, headers=auth(PARTNER))
    assert "payload.rationale" in fields(r)
    assert history_versions(client, auth, record.nominal_id) == [1]


SERVER_OWNED = {
    "recorded_at": "2026-11-20T00:00:00Z",
    "version": 7,
    "hash": "0" * 64,
    "prev_hash": "0" * 64,
    "recorded_by": {"sub": "x", "agency": "police:kent"},
    "position": 1,
}


@pytest.mark.parametrize("name", sorted(SERVER_OWNED))
def test_server_owned_fields_are_refused_on_registration(client, auth, name):
    body = registration() | {name: SERVER_OWNED[name]}
    r = client.post("/v1/nominals", json=body, headers=auth(PARTNER))
    assert name in fields(r)
    assert not held(client, auth, body["identifiers"]["pnc"])


@pytest.mark.parametrize("name", sorted(SERVER_OWNED))
def test_server_owned_fields_are_refused_on_events(client, auth, record, name):
    body = entry_event(**{name: SERVER_OWNED[name]})
    r = client.post(f"/v1/nominals/{record.nominal_id}/events", json=body, headers=auth(PARTNER))
    assert name in fields(r)
    assert history_versions(client, auth, record.nominal_id) == [1]


def test_from_is_refused_in_a_level_change(client, auth, record):
    body = event("LevelChanged", {"from": 1, "to": 2, "rationale": "r", "decided_on": "2026-11-20"})
    r = client.post(f"/v1/nominals/{record.nominal_id}/events", json=body, headers=auth(PARTNER))
    assert "payload.from" in fields(r)
    assert history_versions(client, auth, record.nominal_id) == [1]


def test_an_unknown_payload_field_is_refused(client, auth, record):
    body = entry_event()
    body["payload"]["colour"] = "red"
    r = client.post(f"/v1/nominals/{record.nominal_id}/events", json=body, headers=auth(PARTNER))
    assert "payload.colour" in fields(r)


def test_an_unknown_event_type_is_refused(client, auth, record):
    r = client.post(
        f"/v1/nominals/{record.nominal_id}/events",
        json=event("NominalRenamed", {}),
        headers=auth(PARTNER),
    )
    assert "type" in fields(r)


def test_a_broken_invariant_is_422_and_appends_nothing(client, auth, record):
    body = event("LevelChanged", {"to": 1, "rationale": "r", "decided_on": "2026-11-20"})
    r = client.post(f"/v1/nominals/{record.nominal_id}/events", json=body, headers=auth(PARTNER))
    assert_problem(r, 422)
    assert history_versions(client, auth, record.nominal_id) == [1]


def test_malformed_json_is_400(client, auth):
    r = client.post(
        "/v1/nominals",
        content=b"{not json",
        headers=auth(PARTNER, **{"Content-Type": "application/json"}),
    )
    assert_problem(r, 400)


# -- identifiers -----------------------------------------------------------------------------


def test_a_duplicate_identifier_is_409_revealing_the_record_to_a_partner_only(client, auth, record):
    mine = client.post(
        "/v1/nominals", json=registration(identifiers={"pnc": record.pnc}), headers=auth(PARTNER)
    )
    assert assert_problem(mine, 409)["existing_nominal_id"] == record.nominal_id
    theirs = client.post(
        "/v1/nominals", json=registration(identifiers={"pnc": record.pnc}), headers=auth(STRANGER)
    )
    body = assert_problem(theirs, 409)
    assert "existing_nominal_id" not in body
    assert record.nominal_id not in theirs.text


def random_cro() -> str:
    year = 5
    serial = int(uuid.uuid4().int % 999_999) + 1
    letter = CHECK_LETTERS[(year * 10**6 + serial) % 23]
    return f"{serial:06d}/{year:02d}{letter}"


def test_look_up_by_each_identifier(client, auth):
    ids = {"pnc": random_pnc(), "crn": random_crn(), "noms": random_noms(), "cro": random_cro()}
    r = client.post("/v1/nominals", json=registration(identifiers=ids), headers=auth(PARTNER))
    assert r.status_code == 201, r.text
    nominal_id = r.json()["nominal_id"]
    short_pnc = ids["pnc"][2:]
    for kind, value in [*ids.items(), ("pnc", short_pnc)]:
        found = client.get("/v1/nominals", params={kind: value}, headers=auth(PARTNER))
        assert found.status_code == 200, found.text
        assert [x["nominal_id"] for x in found.json()["results"]] == [nominal_id], (kind, value)


def test_a_short_pnc_is_stored_in_its_four_digit_form(client, auth):
    pnc = random_pnc()
    r = client.post(
        "/v1/nominals", json=registration(identifiers={"pnc": pnc[2:]}), headers=auth(PARTNER)
    )
    assert r.status_code == 201, r.text
    assert r.json()["event"]["payload"]["identifiers"]["pnc"] == pnc
    dup = client.post(
        "/v1/nominals", json=registration(identifiers={"pnc": pnc}), headers=auth(PARTNER)
    )
    assert_problem(dup, 409)


def test_a_look_up_needs_an_identifier(client, auth):
    assert_problem(client.get("/v1/nominals", headers=auth(PARTNER)), 400)


# -- the whole catalogue ----------------------------------------------------------------------


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def catalogue(entry_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(poster, type, payload) for every type after registration, in an order the rules allow."""
    plan = {
        k: f"{k} in place"
        for k in (
            "supervision",
            "monitoring_and_control",
            "interventions_and_treatment",
            "victim_safety_planning",
            "contingency",
        )
    }
    return [
        (PARTNER, "AgencyPartnered", {"agency": MAPPA, "reason": "level 2 management"}),
        (MAPPA, "AgencyPartnered", {"agency": "prison:LEI", "reason": "in custody"}),
        (
            PARTNER,
            "OfficerAssigned",
            {
                "agency": PARTNER,
                "officer": {"name": "P Officer", "role": "MOSOVO", "contact": "01"},
                "supervisor": {"name": "S Super", "contact": "02"},
            },
        ),
        (
            PARTNER,
            "EntryRecorded",
            {"entry_type": "intelligence", "subject": "Sighting", "body": "Seen"},
        ),
        (
            PARTNER,
            "RestrictionRecorded",
            {
                "kind": "SHPO",
                "details": "No contact with children",
                "starts_on": "2026-11-20",
                "ends_on": "2031-11-20",
            },
        ),
        (
            LEAD,
            "RiskAssessmentRecorded",
            {"tool": "OASys", "rosh_level": "high", "score": 42, "assessed_on": "2026-11-19"},
        ),
        (LEAD, "RiskManagementPlanUpdated", plan),
        (
            PARTNER,
            "LevelChanged",
            {"to": 2, "rationale": "Escalating contact", "decided_on": "2026-11-20"},
        ),
        (
            MAPPA,
            "MeetingHeld",
            {
                "meeting_id": "m-1",
                "level": 2,
                "held_on": "2026-11-20",
                "chair": "A Chair",
                "invited": [PARTNER, LEAD],
                "attended": [{"agency": PARTNER, "name": "P Officer", "role": "MOSOVO"}],
                "apologies": [LEAD],
            },
        ),
        (
            PARTNER,
            "DisclosureDecisionRecorded",
            {
                "meeting_id": "m-1",
                "decision": "disclose",
                "recipient": "new partner",
                "rationale": "risk to her",
                "decided_on": "2026-11-20",
            },
        ),
        (
            MAPPA,
            "MinutesUploaded",
            {
                "meeting_id": "m-1",
                "meeting_date": "2026-11-20",
                "level": 2,
                "document": {
                    "sha256": sha("minutes"),
                    "filename": "m.pdf",
                    "media_type": "application/pdf",
                    "size": 1234,
                },
            },
        ),
        (
            PARTNER,
            "ReferralMade",
            {
                "referral_id": "r-1",
                "requested_level": 3,
                "reasons": "escalation",
                "rosh_level": "very_high",
                "imminence": "days",
                "agencies_to_invite": [{"agency": "housing:kent", "why": "address"}],
            },
        ),
        (
            MAPPA,
            "ReferralDecided",
            {
                "referral_id": "r-1",
                "decision": "level_2",
                "feedback": "managed at level 2",
                "decided_on": "2026-11-21",
            },
        ),
        (
            PARTNER,
            "Level1ReviewRecorded",
            {"reviewed_on": "2026-11-20", "outcome": "refer", "reviewers": [PARTNER, LEAD]},
        ),
        (
            MAPPA,
            "ActionSet",
            {
                "action_id": "a-1",
                "meeting_id": "m-1",
                "description": "Visit",
                "assigned_agency": PARTNER,
                "due_on": "2026-12-01",
            },
        ),
        (
            PARTNER,
            "ActionCompleted",
            {"action_id": "a-1", "outcome": "Visited, no concerns", "completed_on": "2026-11-25"},
        ),
        (PARTNER, "CategoryChanged", {"to": 2, "rationale": "reassessed"}),
        (PARTNER, "LeadAgencyChanged", {"agency": PARTNER, "rationale": "police lead now"}),
        (
            "prison:LEI",
            "CustodyChanged",
            {
                "status": "received",
                "establishment": "prison:LEI",
                "expected_release_on": "2027-11-20",
            },
        ),
        (PARTNER, "PartneringEnded", {"agency": LEAD, "reason": "case closed to probation"}),
        # docs/design.md#lifecycles ("@Type": the event id of the latest event of that type)
        (PARTNER, "IdentifierAdded", {"kind": "noms", "value": NOMS[0]}),
        (
            MAPPA,
            "IdentifierCorrected",
            {"kind": "noms", "from": NOMS[0], "to": NOMS[1], "rationale": "two digits swapped"},
        ),
        (
            "prison:LEI",
            "PersonalDetailsCorrected",
            {"ethnicity": "white_irish", "rationale": "self-declared on reception"},
        ),
        (PARTNER, "AliasAdded", {"alias": {"family": "Smith", "given": ["John"]}}),
        (
            PARTNER,
            "AliasRemoved",
            {"alias": {"family": "Smith", "given": ["John"]}, "rationale": "another man's name"},
        ),
        (
            PARTNER,
            "AddressRecorded",
            {
                "kind": "home",
                "lines": ["1 High Street", "Maidstone"],
                "postcode": "ME14 1AA",
                "from_date": "2026-11-01",
            },
        ),
        (
            MAPPA,
            "RestrictionVaried",
            {"restriction": "@RestrictionRecorded", "ends_on": "2032-11-20", "rationale": "varied"},
        ),
        (
            PARTNER,
            "RestrictionRecorded",
            {"kind": "VOO", "details": "No travel abroad", "starts_on": "2026-11-20"},
        ),
        (
            PARTNER,
            "RestrictionEnded",
            {"restriction": "@RestrictionRecorded", "ended_on": "2026-11-21", "reason": "revoked"},
        ),
        (
            PARTNER,
            "BreachRecorded",
            {"of": "notification_requirements", "occurred_on": "2026-11-21", "action": "warning"},
        ),
        ("prison:LEI", "RecallRecorded", {"recalled_on": "2026-11-21", "reason": "breach"}),
        (
            PARTNER,
            "FurtherOffenceRecorded",
            {
                "offence_summary": "Assault",
                "charged_on": "2026-11-21",
                "outcome": "charged",
                "serious": False,
            },
        ),
        (
            PARTNER,
            "MappaStatusExplained",
            {
                "explained_on": "2026-11-21",
                "by": PARTNER,
                "level_explained": 2,
                "views_sought": True,
            },
        ),
        (MAPPA, "LevelChanged", {"to": 3, "rationale": "imminent", "decided_on": "2026-11-21"}),
        (MAPPA, "CriticalCaseRegistered", {"on": "2026-11-21", "rationale": "the critical few"}),
        (MAPPA, "CriticalCaseEnded", {"on": "2026-11-21", "rationale": "risk reduced"}),
        (MAPPA, "LevelChanged", {"to": 2, "rationale": "reduced", "decided_on": "2026-11-21"}),
        (
            PARTNER,
            "AreaTransferRequested",
            {"to_area": "essex", "receiving": RECEIVING, "rationale": "moving to family"},
        ),
        (
            RECEIVING,
            "AreaTransferAccepted",
            {"transfer": "@AreaTransferRequested", "accepted_on": "@today"},
        ),
        (PARTNER, "AreaTransferred", {"to_area": "kent", "rationale": "moved to Kent"}),
        (PARTNER, "EntryRetracted", {"retracts": entry_id, "rationale": "wrong record"}),
        (PARTNER, "NominalDeregistered", {"rationale": "notification period ended"}),
        (MAPPA, "NominalReregistered", {"rationale": "new conviction"}),
    ]


def test_every_event_type_of_the_catalogue_is_posted_and_read_back(client, auth, record):
    from service.payloads import PAYLOADS

    url = f"/v1/nominals/{record.nominal_id}/events"
    entry_id = str(uuid.uuid4())
    posted = []
    latest: dict[str, str] = {"@today": london_date(datetime.now(UTC)).isoformat()}
    for poster, event_type, payload in catalogue(entry_id):
        payload = {k: latest.get(v, v) if isinstance(v, str) else v for k, v in payload.items()}
        body = event(event_type, payload)
        if event_type == "EntryRecorded":
            body["event_id"] = entry_id
        if event_type == "MinutesUploaded":
            # Minutes arrive with their document (issue 4): the upload route appends the event.
            r = client.post(
                f"/v1/nominals/{record.nominal_id}/minutes",
                headers=auth(poster),
                files={"file": ("m.pdf", b"%PDF-1.4\n%minutes\n%%EOF\n", "application/pdf")},
                data={
                    "event_id": body["event_id"],
                    "meeting_id": payload["meeting_id"],
                    "meeting_date": payload["meeting_date"],
                    "level": str(payload["level"]),
                },
            )
        else:
            r = client.post(url, json=body, headers=auth(poster))
        assert r.status_code == 201, (event_type, r.text)
        stored = r.json()
        assert stored["type"] == event_type and stored["recorded_by"]["agency"] == poster
        posted.append(stored)
        latest[f"@{event_type}"] = stored["event_id"]
    assert {e["type"] for e in posted} == set(PAYLOADS)

    history = client.get(f"/v1/nominals/{record.nominal_id}/history", headers=auth(PARTNER)).json()
    events = history["events"]
    assert [e["type"] for e in events] == ["NominalRegistered"] + [e["type"] for e in posted]
    assert events[1:] == posted
    assert [e["version"] for e in events] == list(range(1, len(events) + 1))
    for before, after in zip(events, events[1:], strict=False):
        assert after["prev_hash"] == before["hash"]
    # The hash covers every field shown but position and hash (docs/design.md#integrity),
    # in RFC 8785's canonical form: a standard JCS library recomputes every one.
    for e in events:
        covered = {k: v for k, v in e.items() if k not in ("position", "hash")}
        assert chain_hash(e["prev_hash"], covered) == e["hash"], e["type"]
        jcs = hashlib.sha256(e["prev_hash"].encode() + rfc8785.dumps(covered)).hexdigest()
        assert jcs == e["hash"], e["type"]

    view = client.get(f"/v1/nominals/{record.nominal_id}", headers=auth(PARTNER))
    assert view.headers["etag"] == f'"{len(events)}"'
    v = view.json()
    assert v["status"] == "active"
    assert (v["level"], v["category"], v["lead_agency"], v["area"]) == (2, 2, PARTNER, "kent")
    assert [p["agency"] for p in v["partners"]] == sorted([MAPPA, PARTNER, RECEIVING, "prison:LEI"])
    assert [p["agency"] for p in v["past_partners"]] == [LEAD]
    assert v["entries"] == []  # retracted
    assert len(v["restrictions"]) == 1 and len(v["risk_assessments"]) == 1
    assert v["risk_management_plan"]["supervision"] == "supervision in place"
    assert v["officers"][0]["agency"] == PARTNER
    assert v["meetings"][0]["meeting_id"] == "m-1"
    assert v["minutes"][0]["due_on"] == "2026-12-04" and "late" in v["minutes"][0]
    assert v["disclosure_decisions"][0]["recipient"] == "new partner"
    assert v["referrals"][0]["decision"]["decision"] == "level_2"
    assert v["level1_reviews"][0]["outcome"] == "refer"
    assert v["actions"][0]["outcome"] == "Visited, no concerns"
    assert v["custody"]["establishment"] == "prison:LEI"
    assert v["last_hash"] == events[-1]["hash"]
    level = next(e for e in events if e["type"] == "LevelChanged")
    assert level["payload"]["from"] == 1


def test_history_pages_in_order(client, auth, record):
    url = f"/v1/nominals/{record.nominal_id}/events"
    for _ in range(4):
        assert client.post(url, json=entry_event(), headers=auth(PARTNER)).status_code == 201
    page = client.get(
        f"/v1/nominals/{record.nominal_id}/history",
        params={"from_version": 2, "limit": 2},
        headers=auth(PARTNER),
    ).json()
    assert [e["version"] for e in page["events"]] == [2, 3]
    assert page["next_from_version"] == 4
    rest = client.get(
        f"/v1/nominals/{record.nominal_id}/history",
        params={"from_version": 4, "limit": 10},
        headers=auth(PARTNER),
    ).json()
    assert [e["version"] for e in rest["events"]] == [4, 5]
    assert rest["next_from_version"] is None


@pytest.mark.parametrize("value", [True, 2.0, "2"])
def test_a_level_is_a_whole_number_not_a_boolean_or_a_float(client, auth, record, value):
    body = event("LevelChanged", {"to": value, "rationale": "r", "decided_on": "2026-11-20"})
    r = client.post(f"/v1/nominals/{record.nominal_id}/events", json=body, headers=auth(PARTNER))
    assert "payload.to" in fields(r)
    assert history_versions(client, auth, record.nominal_id) == [1]


@pytest.mark.parametrize("name", ["category", "level"])
def test_a_registration_refuses_true_as_category_or_level(client, auth, name):
    r = client.post("/v1/nominals", json=registration(**{name: True}), headers=auth(PARTNER))
    assert name in fields(r)


def test_an_auditor_reads_any_record_with_a_justification_only(client, auth, record):
    url = f"/v1/nominals/{record.nominal_id}/history"
    auditor = "inspectorate:hmi"
    assert_problem(client.get(url, headers=auth(auditor, "audit:read")), 400)
    assert_problem(client.get(url, headers=auth(auditor, "audit:read", Justification="short")), 400)
    r = client.get(
        url, headers=auth(auditor, "audit:read", Justification="annual MAPPA audit 2026")
    )
    assert r.status_code == 200, r.text
    assert [e["version"] for e in r.json()["events"]] == [1]
    missing = client.get(
        f"/v1/nominals/{uuid.uuid4()}/history",
        headers=auth(auditor, "audit:read", Justification="annual MAPPA audit 2026"),
    )
    assert_problem(missing, 404)


def test_a_partner_whose_agency_may_not_post_the_type_is_403_and_nothing_is_appended(
    client, auth, record
):
    url = f"/v1/nominals/{record.nominal_id}/events"
    partnering = event("AgencyPartnered", {"agency": "health:kent", "reason": "mental health team"})
    assert client.post(url, json=partnering, headers=auth(PARTNER)).status_code == 201
    change = event("LevelChanged", {"to": 2, "rationale": "r", "decided_on": "2026-11-20"})
    assert_problem(client.post(url, json=change, headers=auth("health:kent")), 403)
    entry = client.post(url, json=entry_event(), headers=auth("health:kent"))
    assert entry.status_code == 201, entry.text
    assert history_versions(client, auth, record.nominal_id) == [1, 2, 3]


def test_a_partner_whose_partnering_ended_is_a_stranger(client, auth, record):
    url = f"/v1/nominals/{record.nominal_id}/events"
    ended = event("PartneringEnded", {"agency": PARTNER, "reason": "moved away"})
    assert client.post(url, json=ended, headers=auth(LEAD)).status_code == 201
    assert_problem(client.get(f"/v1/nominals/{record.nominal_id}", headers=auth(PARTNER)), 404)
    assert_problem(client.post(url, json=entry_event(), headers=auth(PARTNER)), 404)
    found = client.get("/v1/nominals", params={"pnc": record.pnc}, headers=auth(PARTNER))
    assert found.json() == {"results": []}


def test_an_auditor_with_records_read_too_looks_up_other_records_with_a_justification_only(
    client, auth, record
):
    # police:elsewhere is not partnered; its audit:read lets it read any record, with a reason.
    both = "records:read audit:read"
    bare = client.get("/v1/nominals", params={"pnc": record.pnc}, headers=auth(STRANGER, both))
    assert_problem(bare, 400)
    justified = client.get(
        "/v1/nominals",
        params={"pnc": record.pnc},
        headers=auth(STRANGER, both, Justification="annual MAPPA audit 2026"),
    )
    assert [x["nominal_id"] for x in justified.json()["results"]] == [record.nominal_id]
    # A look-up searches every record: an auditing token says why even for its own, so the
    # refusal never tells whether an identifier is held (tests/security/test_oracles.py).
    mine = client.post("/v1/nominals", json=registration(), headers=auth(STRANGER))
    pnc = mine.json()["event"]["payload"]["identifiers"]["pnc"]
    own = client.get("/v1/nominals", params={"pnc": pnc}, headers=auth(STRANGER, both))
    assert_problem(own, 400)
    own = client.get(
        "/v1/nominals",
        params={"pnc": pnc},
        headers=auth(STRANGER, both, Justification="annual MAPPA audit 2026"),
    )
    assert own.status_code == 200, own.text
    assert len(own.json()["results"]) == 1


def test_the_hash_of_a_registration_with_non_ascii_text_recomputes(client, auth):
    body = registration(
        name={"family": "Ó'Brien", "given": ["Zoë", "Siân"]},
        offence_summary="Café — “quoted” text, 東京",
        occurred_at="2026-11-20T09:15:00+00:00",
    )
    r = client.post("/v1/nominals", json=body, headers=auth(PARTNER))
    assert r.status_code == 201, r.text
    stored = r.json()["event"]
    assert stored["occurred_at"] == "2026-11-20T09:15:00.000000Z"
    assert stored["payload"]["name"]["given"] == ["Zoë", "Siân"]
    covered = {k: v for k, v in stored.items() if k not in ("position", "hash")}
    assert chain_hash(stored["prev_hash"], covered) == stored["hash"]


def test_a_deregistered_record_is_read_but_takes_only_reregistration(client, auth, record):
    url = f"/v1/nominals/{record.nominal_id}/events"
    closing = event("NominalDeregistered", {"rationale": "notification period ended"})
    assert client.post(url, json=closing, headers=auth(PARTNER)).status_code == 201
    refused = client.post(url, json=entry_event(), headers=auth(PARTNER))
    assert assert_problem(refused, 422)["type"].endswith("/record-deregistered")
    view = client.get(f"/v1/nominals/{record.nominal_id}", headers=auth(PARTNER))
    assert view.json()["status"] == "deregistered"
    reopening = event("NominalReregistered", {"rationale": "new conviction"})
    assert client.post(url, json=reopening, headers=auth(PARTNER)).status_code == 201
    assert history_versions(client, auth, record.nominal_id) == [1, 2, 3]
