"""Object- and function-level access, as data: every route the app serves × every kind of
caller, over real HTTP with real tokens.

`ROWS` has one row per route of the app's own route table (`app.routes`): a route added
without a row fails `test_every_route_the_app_serves_has_a_row`. A row says how to call the
route on one record, what a caller meant to use it carries (`scopes`), and what each kind
of caller gets, in the order of `CALLERS`. `HIDDEN` is a 200 that must not show the record
(a look-up among the records the caller may read).

Every cell also checks what the request left behind (tests.conftest.Footprint): a refusal
appends no event, claims no identifier, stores no document; a read of a record, allowed or
refused, is one consultation-log row with that outcome (Data Protection Act 2018, s. 62),
and nothing else writes to the log. A stranger's 404 is compared, body for body, with the
answer for a record that does not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts

from service import access
from tests.conftest import NOTHING, event, random_crn, random_noms, random_pnc, registration
from tests.integrations.conftest import hmpps_event, sns

HIDDEN = "200, without the record"

STRANGER = "police:essex"
AUDITOR = "inspectorate:hmicfrs"
JUSTIFICATION = "Thematic inspection of MAPPA level 2 cases, 2026"
ALL_SCOPES = frozenset(
    {"records:read", "records:write", "audit:read", "reports:read", "feed:read", "inbound:hmpps"}
)

# Each agency type the access table (service/access.py) names, as a partner of the record.
# police:kent registers it and probation:midlands is its lead; the others are partnered.
PARTNERS = {
    "police": "police:kent",
    "probation": "probation:midlands",
    "prison": "prison:LEI",
    "yot": "yot:leicester",
    "health": "health:leicestershire-nhs",
    "mappa": "mappa:leicestershire-rutland",
}
REGISTRAR = PARTNERS["police"]


@dataclass(frozen=True)
class Caller:
    agency: str | None  # None: no token at all
    scopes: str  # "route": the row's scopes; "missing": every scope but those the route takes
    justification: bool = False


CALLERS: dict[str, Caller] = {
    **{f"{kind} partner": Caller(agency, "route") for kind, agency in PARTNERS.items()},
    "stranger": Caller(STRANGER, "route"),
    "partner, missing scope": Caller(REGISTRAR, "missing"),
    "auditor": Caller(AUDITOR, "audit:read", justification=True),
    "auditor without justification": Caller(AUDITOR, "audit:read"),
    "no token": Caller(None, ""),
}


@dataclass(frozen=True)
class Record:
    nominal_id: str
    identifiers: dict[str, str]
    document: str  # the sha256 of a document its minutes name
    registered: str = ""  # the event_id of its registration
    checkpoint: str = ""  # a signed checkpoint of the log that holds it


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    json: Any = None
    params: dict[str, str] | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None
    data: dict[str, str] | None = None
    text: str | None = None  # a text/plain body


@dataclass(frozen=True)
class Row:
    call: Callable[[Record], Call]
    scopes: str  # what a caller meant to use this route carries
    takes: frozenset[str]  # every scope the route accepts: "missing scope" carries none of them
    expect: tuple[int | str, ...]  # status per caller, in the order of CALLERS
    reads: bool = False  # a read of the record: each decision on it is logged
    leaves: dict[str, int] = field(default_factory=dict)  # what a success stores
    batch: bool = False  # POST /v1/batches: the status is the one event's, inside a 200


#                      police probation prison yot health mappa stranger missing auditor
#                                                                            unjustified no-token
READ = (200, 200, 200, 200, 200, 200, 404, 403, 200, 400, 401)
LOOK_UP = (200, 200, 200, 200, 200, 200, HIDDEN, 403, 200, 400, 401)
AUDIT_ONLY = (403, 403, 403, 403, 403, 403, 403, 403, 200, 400, 401)
NO_RECORD = (200, 200, 200, 200, 200, 200, 200, 403, 403, 403, 401)
# The transparency log holds hashes, sizes and positions: no personal data, no reason asked.
LOG = (200, 200, 200, 200, 200, 200, 200, 403, 200, 200, 401)
LOG_AUDIT = (403, 403, 403, 403, 403, 403, 403, 403, 200, 200, 401)
PUBLIC = (200,) * 11

RW = "records:read records:write"
READERS = frozenset({"records:read", "audit:read"})


def _pdf() -> bytes:
    return b"%PDF-1.4\n%minutes " + uuid.uuid4().hex.encode() + b"\n%%EOF\n"


def _minutes(nominal_id: str, content: bytes) -> Call:
    return Call(
        "POST",
        f"/v1/nominals/{nominal_id}/minutes",
        files={"file": ("minutes.pdf", content, "application/pdf")},
        data={
            "event_id": str(uuid.uuid4()),
            "meeting_id": f"M-{uuid.uuid4().hex[:8]}",
            "meeting_date": "2026-11-02",
            "level": "2",
        },
    )


def _restriction() -> dict[str, Any]:
    payload = {"kind": "other", "details": "Not to contact the victim", "starts_on": "2026-11-20"}
    return event("RestrictionRecorded", payload)


def _received(record: Record) -> dict[str, Any]:
    # A prison of its own each time: every delivery moves the record (received, transferred).
    prison = f"P{uuid.uuid4().hex[:6].upper()}"
    message = "prison-offender-events.prisoner.received"
    return sns(hmpps_event(message, crn=record.identifiers["crn"], prisonId=prison))


def _report(name: str) -> Row:
    return Row(
        lambda r: Call("GET", f"/v1/reports/{name}", params={"limit": "1"}),
        "reports:read",
        frozenset({"reports:read"}),
        NO_RECORD,
    )


def _log(call: Callable[[Record], Call]) -> Row:
    return Row(call, "feed:read", frozenset({"feed:read", "audit:read"}), LOG)


def _public(path: str) -> Row:
    return Row(lambda r: Call("GET", path), "", frozenset(), PUBLIC)


ROWS: dict[str, Row] = {
    "POST /v1/nominals": Row(
        lambda r: Call("POST", "/v1/nominals", json=registration()),
        RW,
        frozenset({"records:write"}),
        (201, 201, 201, 201, 201, 403, 201, 403, 403, 403, 401),
        leaves={"events": 1, "identifiers": 2},
    ),
    "POST /v1/batches": Row(
        lambda r: Call(
            "POST", "/v1/batches", json={"events": [_restriction() | {"nominal_id": r.nominal_id}]}
        ),
        RW,
        frozenset({"records:write"}),
        (201, 201, 201, 403, 403, 201, 404, 403, 403, 403, 401),
        leaves={"events": 1},
        batch=True,
    ),
    "POST /v1/nominals/{nominal_id}/events": Row(
        lambda r: Call("POST", f"/v1/nominals/{r.nominal_id}/events", json=_restriction()),
        RW,
        frozenset({"records:write"}),
        (201, 201, 201, 403, 403, 201, 404, 403, 403, 403, 401),
        leaves={"events": 1},
    ),
    "GET /v1/nominals/{nominal_id}": Row(
        lambda r: Call("GET", f"/v1/nominals/{r.nominal_id}"), RW, READERS, READ, reads=True
    ),
    "GET /v1/nominals": Row(
        lambda r: Call("GET", "/v1/nominals", params={"pnc": r.identifiers["pnc"]}),
        RW,
        READERS,
        LOOK_UP,
        reads=True,
    ),
    "GET /v1/nominals/{nominal_id}/history": Row(
        lambda r: Call("GET", f"/v1/nominals/{r.nominal_id}/history", params={"limit": "5"}),
        RW,
        READERS,
        READ,
        reads=True,
    ),
    "GET /v1/nominals/{nominal_id}/state": Row(
        lambda r: Call(
            "GET", f"/v1/nominals/{r.nominal_id}/state", params={"as_of": "2100-01-01T00:00:00Z"}
        ),
        RW,
        READERS,
        READ,
        reads=True,
    ),
    "GET /v1/nominals/{nominal_id}/verify": Row(
        lambda r: Call("GET", f"/v1/nominals/{r.nominal_id}/verify"),
        RW,
        frozenset({"audit:read"}),
        AUDIT_ONLY,
        reads=True,
    ),
    "GET /v1/nominals/{nominal_id}/access-log": Row(
        lambda r: Call("GET", f"/v1/nominals/{r.nominal_id}/access-log", params={"limit": "5"}),
        RW,
        frozenset({"audit:read"}),
        AUDIT_ONLY,
        reads=True,
    ),
    "POST /v1/nominals/{nominal_id}/minutes": Row(
        lambda r: _minutes(r.nominal_id, _pdf()),
        RW,
        frozenset({"records:write"}),
        (201, 201, 403, 403, 403, 201, 404, 403, 403, 403, 401),
        leaves={"events": 1, "documents": 1},
    ),
    "GET /v1/nominals/{nominal_id}/documents/{sha256}": Row(
        lambda r: Call("GET", f"/v1/nominals/{r.nominal_id}/documents/{r.document}"),
        RW,
        READERS,
        READ,
        reads=True,
    ),
    "GET /v1/feed": Row(
        lambda r: Call("GET", "/v1/feed", params={"limit": "1"}),
        "feed:read",
        frozenset({"feed:read"}),
        NO_RECORD,
    ),
    # The national probation and prison clients; no partnering needed, none is a stranger.
    "POST /v1/inbound/hmpps-domain-events": Row(
        lambda r: Call("POST", "/v1/inbound/hmpps-domain-events", json=_received(r)),
        "records:write inbound:hmpps",
        frozenset({"records:write", "inbound:hmpps"}),
        (403, 201, 201, 403, 403, 403, 403, 403, 403, 403, 401),
        leaves={"events": 1},
    ),
    # A witness (feed:read) follows the log; an auditor (audit:read) checks it too.
    "GET /v1/log/checkpoint": _log(lambda r: Call("GET", "/v1/log/checkpoint")),
    "GET /v1/log/public-key": _log(lambda r: Call("GET", "/v1/log/public-key")),
    "GET /v1/log/proof/inclusion": _log(
        lambda r: Call("GET", "/v1/log/proof/inclusion", params={"event_id": r.registered})
    ),
    "GET /v1/log/proof/consistency": _log(
        lambda r: Call("GET", "/v1/log/proof/consistency", params={"from": "1"})
    ),
    "POST /v1/log/verify": Row(
        lambda r: Call("POST", "/v1/log/verify", text=r.checkpoint),
        "feed:read",
        frozenset({"audit:read"}),
        LOG_AUDIT,
    ),
    **{
        f"GET /v1/reports/{name}": _report(name)
        for name in (
            "late-minutes",
            "minutes-outstanding",
            "partnering-audit",
            "reviews-overdue",
            "due-soon",
            "actions-outstanding",
            "disclosure-coverage",
            "attendance",
            "registration-timeliness",
            "referrals",
            "pre-release",
            "recording-activity",
            "plans-out-of-date",
            "outcomes",
            "level-profile",
            "profile",
        )
    },
    **{
        f"GET {path}": _public(path)
        for path in (
            "/health/live",
            "/health/ready",
            "/metrics",
            "/openapi.json",
            "/docs",
            "/docs/oauth2-redirect",
            "/redoc",
        )
    },
}

CASES = [(name, kind) for name in ROWS for kind in CALLERS]


def served_routes(app) -> set[str]:
    """ "METHOD path" for every route of the app's own table (HEAD comes with GET)."""
    found = set()
    for route in iter_route_contexts(app.routes):  # the included routers' routes, resolved
        methods = route.methods or {"GET"}
        found |= {f"{m} {route.path}" for m in methods - {"HEAD"}}
    return found


def _make_record(client, auth, partners: dict[str, str], log=None) -> Record:
    identifiers = {"pnc": random_pnc(), "crn": random_crn(), "noms": random_noms()}
    body = registration(identifiers=identifiers)
    r = client.post("/v1/nominals", json=body, headers=auth(REGISTRAR))
    assert r.status_code == 201, r.text
    nominal_id = r.json()["nominal_id"]
    identifiers = r.json()["event"]["payload"]["identifiers"]
    registered = r.json()["event"]["event_id"]
    held = {REGISTRAR, body["lead_agency"]}
    for agency in sorted(set(partners.values()) - held):
        partnered = event("AgencyPartnered", {"agency": agency, "reason": "joint management"})
        r = client.post(
            f"/v1/nominals/{nominal_id}/events", json=partnered, headers=auth(REGISTRAR)
        )
        assert r.status_code == 201, r.text
    call = _minutes(nominal_id, _pdf())
    r = client.post(call.path, files=call.files, data=call.data, headers=auth(REGISTRAR))
    assert r.status_code == 201, r.text
    document = r.json()["payload"]["document"]["sha256"]
    # A checkpoint that holds the record, whenever the served app last issued one.
    checkpoint = (log.checkpoint() or log.latest()[1]) if log is not None else ""
    return Record(nominal_id, identifiers, document, registered, checkpoint)


@pytest.fixture(scope="module")
def record(client, auth, service) -> Record:
    return _make_record(client, auth, PARTNERS, service.transparency)


def _send(client, token, row: Row, kind: str, call: Call):
    caller = CALLERS[kind]
    headers: dict[str, str] = {}
    if caller.agency is not None:
        scopes = {"route": row.scopes, "missing": " ".join(sorted(ALL_SCOPES - row.takes))}.get(
            caller.scopes, caller.scopes
        )
        headers["Authorization"] = f"Bearer {token(caller.agency, scopes)}"
    if caller.justification:
        headers["Justification"] = JUSTIFICATION
    if call.text is not None:
        headers["Content-Type"] = "text/plain"
    return client.request(
        call.method,
        call.path,
        json=call.json,
        params=call.params,
        files=call.files,
        data=call.data,
        content=call.text,
        headers=headers,
    )


def _left_behind(row: Row, status: int | str) -> dict[str, Any]:
    """What a request answered `status` must leave: see the module's docstring."""
    if row.reads and status in (200, 404, HIDDEN):
        outcome = "allowed" if status == 200 else "refused"
        return NOTHING | {"consultations": {outcome: 1}}
    if isinstance(status, int) and 200 <= status < 300:
        return NOTHING | row.leaves
    return NOTHING


def test_every_route_the_app_serves_has_a_row(app):
    served = served_routes(app)
    assert served - set(ROWS) == set(), "routes without a row in ROWS: add one each"
    assert set(ROWS) - served == set(), "rows for routes the app no longer serves"
    assert all(len(row.expect) == len(CALLERS) for row in ROWS.values())


def test_the_callers_include_each_agency_type_the_access_table_names():
    named = set(access.MAY_REGISTER) | set(access.INBOUND_CLIENTS)
    for rule in access.MAY_POST.values():
        if isinstance(rule, frozenset):
            named |= rule
    assert named == set(PARTNERS)


@pytest.mark.parametrize(("name", "kind"), CASES, ids=[f"{n} | {k}" for n, k in CASES])
def test_access_matrix(name, kind, record, client, token, footprint):
    row = ROWS[name]
    expected = row.expect[list(CALLERS).index(kind)]
    mark = footprint.mark()
    r = _send(client, token, row, kind, row.call(record))
    left = footprint.since(mark)
    if row.batch and r.status_code == 200:  # the batch was read: its one event's answer
        (result,) = r.json()["results"]
        r = httpx.Response(result["status"], json=result.get("problem") or result.get("event"))
        if r.status_code >= 400:
            r.headers["content-type"] = "application/problem+json"

    if expected == HIDDEN:
        assert r.status_code == 200, r.text
        assert r.json() == {"results": []}
    else:
        assert r.status_code == expected, r.text
    if r.status_code >= 400:
        assert r.headers["content-type"] == "application/problem+json"
        assert record.nominal_id not in r.text
    if name == "GET /v1/nominals" and expected == 200:
        assert [x["nominal_id"] for x in r.json()["results"]] == [record.nominal_id]
    assert left == _left_behind(row, expected)


NAMES_RECORD = [name for name in ROWS if "{nominal_id}" in name]
MISSING = Record("00000000-0000-4000-8000-000000000000", {}, "0" * 64)


@pytest.mark.parametrize("name", NAMES_RECORD)
def test_a_stranger_cannot_tell_a_record_from_no_record(name, record, client, token):
    row = ROWS[name]
    there = _send(client, token, row, "stranger", row.call(record))
    absent = _send(client, token, row, "stranger", row.call(MISSING))
    assert (there.status_code, there.json()) == (absent.status_code, absent.json())
    assert there.headers["content-type"] == absent.headers["content-type"]
    if there.status_code == 404:
        # And no one, partner or auditor, is told more about a record that does not exist.
        for kind in ("police partner", "auditor"):
            if row.expect[list(CALLERS).index(kind)] in (200, 201):
                other = _send(client, token, row, kind, row.call(MISSING))
                assert (other.status_code, other.json()) == (404, there.json()), kind


def test_unpartnering_takes_effect_on_the_very_next_request(client, auth, token):
    fresh = _make_record(client, auth, {"police": REGISTRAR, "stranger": STRANGER})
    refused = [n for n in ROWS if ROWS[n].expect[list(CALLERS).index("stranger")] in (404, HIDDEN)]
    assert len(refused) == 8  # post, minutes, a batch, and five reads
    for name in refused:
        r = _send(client, token, ROWS[name], "stranger", ROWS[name].call(fresh))
        assert r.status_code in (200, 201), (name, r.text)
        if ROWS[name].batch:
            assert r.json()["results"][0]["status"] == 201, (name, r.text)
    ended = event("PartneringEnded", {"agency": STRANGER, "reason": "no longer involved"})
    r = client.post(f"/v1/nominals/{fresh.nominal_id}/events", json=ended, headers=auth(REGISTRAR))
    assert r.status_code == 201, r.text
    for name in refused:
        r = _send(client, token, ROWS[name], "stranger", ROWS[name].call(fresh))
        if name == "GET /v1/nominals":
            assert r.json() == {"results": []}, name
        elif ROWS[name].batch:  # the batch is read; its one event is refused
            assert r.json()["results"][0]["status"] == 404, (name, r.text)
        else:
            assert r.status_code == 404, name


def test_a_held_identifier_is_not_revealed_to_a_stranger(record, client, auth):
    body = registration(identifiers={"pnc": record.identifiers["pnc"]})
    stranger = client.post("/v1/nominals", json=body, headers=auth(STRANGER))
    assert stranger.status_code == 409
    assert "existing_nominal_id" not in stranger.json() and record.nominal_id not in stranger.text
    partner_answer = client.post(
        "/v1/nominals",
        json=registration(identifiers={"pnc": record.identifiers["pnc"]}),
        headers=auth(REGISTRAR),
    )
    assert partner_answer.status_code == 409
    assert partner_answer.json()["existing_nominal_id"] == record.nominal_id


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
    agency, type_, payload, register, partner, client, auth, footprint
):
    nominal_id = register(REGISTRAR)
    partner(nominal_id, agency)
    mark = footprint.mark()
    r = client.post(
        f"/v1/nominals/{nominal_id}/events", json=event(type_, payload), headers=auth(agency)
    )
    assert r.status_code == 403, r.text
    assert footprint.since(mark) == NOTHING
