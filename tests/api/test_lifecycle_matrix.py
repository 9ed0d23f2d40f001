"""The events of docs/design.md#lifecycles through `POST /v1/nominals/{id}/events`, over real
HTTP with real signed tokens: each event type × a partner the access table allows, a partner
of an agency type it refuses, a stranger, and a token missing `records:write`. Every refusal
is problem+json and stores nothing; an unknown restriction, transfer or breached order is a
422 naming it,never a 403.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from domain.calendar import london_date
from tests.api.test_routes_matrix import assert_problem
from tests.conftest import event, random_crn, random_noms, random_pnc, registration

POLICE = "police:kent"
PROBATION = "probation:midlands"
PRISON = "prison:LEI"
MAPPA = "mappa:kent"
HEALTH = "health:kent"
RECEIVING = "mappa:essex"
TODAY = london_date(datetime.now(UTC)).isoformat()
STRANGER = "police:elsewhere"


@dataclass
class Record:
    client: httpx.Client
    auth: Callable[..., dict[str, str]]
    nominal_id: str
    crn: str

    def post(self, agency: str, type_: str, payload: dict[str, Any], **kw: Any) -> httpx.Response:
        return self.client.post(
            f"/v1/nominals/{self.nominal_id}/events",
            json=event(type_, payload),
            headers=self.auth(agency, **kw),
        )

    def posted(self, agency: str, type_: str, payload: dict[str, Any]) -> dict[str, Any]:
        r = self.post(agency, type_, payload)
        assert r.status_code == 201, r.text
        return r.json()

    def versions(self) -> list[int]:
        r = self.client.get(f"/v1/nominals/{self.nominal_id}/history", headers=self.auth(POLICE))
        assert r.status_code == 200, r.text
        return [e["version"] for e in r.json()["events"]]

    def view(self, agency: str = POLICE) -> dict[str, Any]:
        r = self.client.get(f"/v1/nominals/{self.nominal_id}", headers=self.auth(agency))
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
def record(client, auth) -> Record:
    crn = random_crn()
    body = registration(identifiers={"crn": crn}, level=3, category=2)
    r = client.post("/v1/nominals", json=body, headers=auth(POLICE))
    assert r.status_code == 201, r.text
    rec = Record(client, auth, r.json()["nominal_id"], crn)
    for agency in (PRISON, MAPPA, HEALTH):
        rec.posted(POLICE, "AgencyPartnered", {"agency": agency, "reason": "involved"})
    return rec


def an_order(rec: Record) -> str:
    return rec.posted(
        POLICE,
        "RestrictionRecorded",
        {"kind": "SHPO", "details": "No contact", "starts_on": "2025-01-01", "ends_on": None},
    )["event_id"]


def a_transfer(rec: Record) -> str:
    return rec.posted(
        PROBATION,
        "AreaTransferRequested",
        {"to_area": "essex", "receiving": RECEIVING, "rationale": "Moving to family"},
    )["event_id"]


ALIAS = {"family": "Smith", "given": ["John"]}

# type -> (a partner it allows, a partner of a type it refuses, the payload on the record)
CASES: dict[str, tuple[str, str, Callable[[Record], dict[str, Any]]]] = {
    "IdentifierAdded": (POLICE, HEALTH, lambda r: {"kind": "noms", "value": random_noms()}),
    "IdentifierCorrected": (
        MAPPA,
        HEALTH,
        lambda r: {"kind": "crn", "from": r.crn, "to": random_crn(), "rationale": "Mistyped"},
    ),
    "PersonalDetailsCorrected": (
        PRISON,
        HEALTH,
        lambda r: {"date_of_birth": "1980-01-02", "rationale": "Day and month swapped"},
    ),
    "AliasAdded": (PROBATION, HEALTH, lambda r: {"alias": ALIAS}),
    "AliasRemoved": (
        POLICE,
        HEALTH,
        lambda r: (
            r.posted(POLICE, "AliasAdded", {"alias": ALIAS})
            and {"alias": ALIAS, "rationale": "Not his"}
        ),
    ),
    "AddressRecorded": (
        PRISON,
        MAPPA,
        lambda r: {
            "kind": "approved_premises",
            "lines": ["AP House", "Maidstone"],
            "postcode": "me14 1aa",
            "from_date": "2026-11-01",
        },
    ),
    "RestrictionVaried": (
        MAPPA,
        HEALTH,
        lambda r: {"restriction": an_order(r), "ends_on": "2031-01-01", "rationale": "Varied"},
    ),
    "RestrictionEnded": (
        PROBATION,
        HEALTH,
        lambda r: {"restriction": an_order(r), "ended_on": "2026-11-01", "reason": "discharged"},
    ),
    "AreaTransferRequested": (
        PROBATION,
        PRISON,
        lambda r: {"to_area": "essex", "receiving": RECEIVING, "rationale": "Moving"},
    ),
    "AreaTransferAccepted": (
        RECEIVING,
        MAPPA,  # a partner, and a MAPPA unit, but not the one the request names
        lambda r: {"transfer": a_transfer(r), "accepted_on": TODAY},
    ),
    "BreachRecorded": (
        POLICE,
        HEALTH,
        lambda r: {"of": an_order(r), "occurred_on": "2026-11-01", "action": "arrest"},
    ),
    "RecallRecorded": (
        PROBATION,
        POLICE,
        lambda r: {"recalled_on": "2026-11-02", "reason": "Breach of licence"},
    ),
    "FurtherOffenceRecorded": (
        POLICE,
        PRISON,
        lambda r: {
            "offence_summary": "Assault",
            "charged_on": "2026-11-03",
            "outcome": "charged",
            "serious": False,
        },
    ),
    "MappaStatusExplained": (
        PRISON,
        HEALTH,
        lambda r: {
            "explained_on": "2026-11-04",
            "by": PRISON,
            "level_explained": 3,
            "views_sought": True,
        },
    ),
    "CriticalCaseRegistered": (
        MAPPA,
        POLICE,
        lambda r: {"on": "2026-11-05", "rationale": "Imminent risk of serious harm"},
    ),
    "CriticalCaseEnded": (
        MAPPA,
        PROBATION,
        lambda r: (
            r.posted(MAPPA, "CriticalCaseRegistered", {"on": "2026-11-05", "rationale": "x"})
            and {"on": "2026-11-06", "rationale": "Risk reduced"}
        ),
    ),
}
CALLERS = ["allowed partner", "refused partner", "stranger", "missing scope"]


def test_the_matrix_covers_every_event_of_section_3_1():
    from domain.nominal import EVENT_TYPES

    # Section 3's 24 types (tests/api/test_routes_matrix.py, tests/unit/test_access.py) and 3.1's.
    assert set(CASES) <= set(EVENT_TYPES)
    assert len(set(EVENT_TYPES) - set(CASES)) == 24


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("event_type", sorted(CASES))
def test_event_type_by_caller(record, event_type, caller):
    allowed, refused, make = CASES[event_type]
    payload = make(record)
    before = record.versions()
    if caller == "allowed partner":
        r = record.post(allowed, event_type, payload)
        assert r.status_code == 201, r.text
        assert r.json()["type"] == event_type
        assert record.versions() == [*before, before[-1] + 1]
        return
    agency, scopes, status = {
        "refused partner": (refused, "records:read records:write", 403),
        "stranger": (STRANGER, "records:read records:write", 404),
        "missing scope": (allowed, "records:read", 403),
    }[caller]
    r = record.post(agency, event_type, payload, scopes=scopes)
    assert_problem(r, status)
    assert record.versions() == before


@pytest.mark.parametrize(
    ("event_type", "payload", "field"),
    [
        (
            "RestrictionVaried",
            {"restriction": str(uuid.uuid4()), "details": "x", "rationale": "x"},
            "payload.restriction",
        ),
        (
            "RestrictionEnded",
            {"restriction": str(uuid.uuid4()), "ended_on": "2026-11-01", "reason": "other"},
            "payload.restriction",
        ),
        (
            "BreachRecorded",
            {"of": str(uuid.uuid4()), "occurred_on": "2026-11-01", "action": "none"},
            "payload.of",
        ),
        (
            "AreaTransferAccepted",
            {"transfer": str(uuid.uuid4()), "accepted_on": TODAY},
            "payload.transfer",
        ),
    ],
)
def test_an_unknown_restriction_or_transfer_is_a_422_naming_it(record, event_type, payload, field):
    before = record.versions()
    # MAPPA is a partner that may post each of these, but is not the receiving unit of the
    # (unknown) transfer: still a 422, not a 403.
    r = record.post(MAPPA, event_type, payload)
    body = assert_problem(r, 422)
    assert body["errors"][0]["field"] == field
    assert record.versions() == before


def test_the_receiving_unit_may_accept_before_it_is_a_partner_and_then_reads_the_record(record):
    transfer = a_transfer(record)
    stranger_view = record.client.get(
        f"/v1/nominals/{record.nominal_id}", headers=record.auth(RECEIVING)
    )
    assert_problem(stranger_view, 404)  # the request gives standing to accept, not to read
    # An unknown transfer, from the unit an open request names: a 422 naming it.
    r = record.post(
        RECEIVING,
        "AreaTransferAccepted",
        {"transfer": str(uuid.uuid4()), "accepted_on": TODAY},
    )
    assert assert_problem(r, 422)["errors"][0]["field"] == "payload.transfer"
    # Anything else from it is a stranger's post.
    assert_problem(
        record.post(
            RECEIVING, "EntryRecorded", {"entry_type": "other", "subject": "s", "body": "b"}
        ),
        404,
    )
    record.posted(RECEIVING, "AreaTransferAccepted", {"transfer": transfer, "accepted_on": TODAY})
    view = record.view(RECEIVING)
    assert view["area"] == "essex"
    assert RECEIVING in [p["agency"] for p in view["partners"]]


def test_a_crn_held_by_another_record_is_a_409_naming_the_holder_to_its_partners_only(
    record, client, auth
):
    other = client.post(
        "/v1/nominals", json=registration(identifiers={"pnc": random_pnc()}), headers=auth(POLICE)
    ).json()
    nid = other["nominal_id"]
    claim = event("IdentifierAdded", {"kind": "crn", "value": record.crn})
    r = client.post(f"/v1/nominals/{nid}/events", json=claim, headers=auth(POLICE))
    assert assert_problem(r, 409)["existing_nominal_id"] == record.nominal_id
    r = client.post(
        f"/v1/nominals/{nid}/events",
        json=event("AgencyPartnered", {"agency": "police:essex", "reason": "moved"}),
        headers=auth(POLICE),
    )
    assert r.status_code == 201
    added = event("IdentifierAdded", {"kind": "crn", "value": record.crn})
    r = client.post(f"/v1/nominals/{nid}/events", json=added, headers=auth("police:essex"))
    body = assert_problem(r, 409)
    assert "existing_nominal_id" not in body
    assert [
        e["version"]
        for e in client.get(f"/v1/nominals/{nid}/history", headers=auth(POLICE)).json()["events"]
    ] == [1, 2]


def test_two_records_racing_over_http_to_add_one_crn_get_one_201_and_one_409(client, auth):
    import threading

    ids = [
        client.post(
            "/v1/nominals",
            json=registration(identifiers={"pnc": None, "noms": random_noms()}),
            headers=auth(POLICE),
        ).json()["nominal_id"]
        for _ in range(2)
    ]
    crn = random_crn()
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def add(nid: str) -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=30) as own:
            barrier.wait(timeout=10)
            r = own.post(
                f"/v1/nominals/{nid}/events",
                json=event("IdentifierAdded", {"kind": "crn", "value": crn}),
                headers=auth(POLICE),
            )
            statuses.append(r.status_code)

    threads = [threading.Thread(target=add, args=(nid,)) for nid in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(statuses) == [201, 409]
    found = client.get("/v1/nominals", params={"crn": crn}, headers=auth(POLICE)).json()
    assert len(found["results"]) == 1


@pytest.mark.parametrize(
    ("event_type", "payload", "field"),
    [
        ("IdentifierAdded", {"kind": "nhs", "value": "1"}, "payload.kind"),
        ("IdentifierAdded", {"kind": "crn", "value": "12"}, "payload.value"),
        (
            "AddressRecorded",
            {
                "kind": "home",
                "lines": ["1 Road"],
                "postcode": "NOT A CODE",
                "from_date": "2026-01-01",
            },
            "payload.postcode",
        ),
        (
            "PersonalDetailsCorrected",
            {"ethnicity": "martian", "rationale": "x"},
            "payload.ethnicity",
        ),
        (
            "EntryRecorded",
            {"entry_type": "other", "subject": "s", "body": "b", "restricted_to": []},
            "payload.restricted_to",
        ),
        (
            "FurtherOffenceRecorded",
            {
                "offence_summary": "x",
                "charged_on": "2026-01-01",
                "outcome": "charged",
                "serious": "yes",
            },
            "payload.serious",
        ),
        (
            "IdentifierCorrected",
            {"kind": "crn", "from_": "X1", "to": "X2", "rationale": "x"},
            "payload.from",
        ),
    ],
)
def test_a_payload_refused_names_its_field(record, event_type, payload, field):
    before = record.versions()
    body = assert_problem(record.post(POLICE, event_type, payload), 422)
    assert field in [e["field"] for e in body["errors"]], body
    assert record.versions() == before
