"""No oracle without a trace (hardening point 7).

A prober who may not read a record must learn nothing from the service that it could not
read: not from the order of the checks (409 before 422), not from the record's id in a
refusal, not from an auditor's look-up that answers differently when an identifier is held.
Every refused identifier claim leaves a row in the consultation log of the record holding it.
"""

from __future__ import annotations

import pytest

from tests.conftest import registration

AUDITOR = "inspectorate:hmi-probation"
REASON = "Thematic inspection of MAPPA records, 2026"


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()


def _held(client, auth) -> tuple[str, dict]:
    body = registration()
    r = client.post("/v1/nominals", json=body, headers=auth("police:kent"))
    assert r.status_code == 201, r.text
    return r.json()["nominal_id"], body["identifiers"]


def test_a_registration_is_judged_whole_before_its_identifiers_are_looked_at(client, auth):
    _, identifiers = _held(client, auth)
    # A body the domain refuses (category 3 is never managed at level 1), naming a held PNC:
    # the answer is the body's fault, as it would be for a PNC no one holds.
    held = registration(identifiers=identifiers, category=3, level=1)
    free = registration(category=3, level=1)
    answers = [
        _problem(client.post("/v1/nominals", json=b, headers=auth("police:essex")), 422)
        for b in (held, free)
    ]
    assert [a["errors"][0]["field"] for a in answers] == ["level", "level"]
    assert answers[0]["detail"] == answers[1]["detail"]


@pytest.mark.parametrize(
    ("agency", "scopes", "reveals"),
    [
        ("police:kent", "records:read records:write", True),  # the registering partner
        ("police:essex", "records:read records:write", False),  # a stranger
        ("police:essex", "records:read records:write audit:read", False),  # an auditing one
    ],
)
def test_the_holding_record_is_named_only_to_its_current_partners(
    client, auth, agency, scopes, reveals
):
    nominal_id, identifiers = _held(client, auth)
    again = registration(identifiers=identifiers)
    problem = _problem(client.post("/v1/nominals", json=again, headers=auth(agency, scopes)), 409)
    assert ("existing_nominal_id" in problem) is reveals
    if reveals:
        assert problem["existing_nominal_id"] == nominal_id
    assert nominal_id not in problem["detail"]


def test_an_auditor_s_look_up_without_a_reason_is_refused_whether_or_not_it_is_held(client, auth):
    _, identifiers = _held(client, auth)
    unheld = registration()["identifiers"]["pnc"]
    for scopes in ("audit:read", "records:read audit:read"):
        for pnc in (identifiers["pnc"], unheld):
            r = client.get("/v1/nominals", params={"pnc": pnc}, headers=auth(AUDITOR, scopes))
            assert _problem(r, 400)["title"] == "Justification required"
    with_reason = client.get(
        "/v1/nominals",
        params={"pnc": identifiers["pnc"]},
        headers=auth(AUDITOR, "audit:read", Justification=REASON),
    )
    assert with_reason.status_code == 200 and len(with_reason.json()["results"]) == 1


def test_each_refused_identifier_claim_is_logged_against_the_record_holding_it(client, auth):
    nominal_id, identifiers = _held(client, auth)
    again = registration(identifiers=identifiers)
    _problem(client.post("/v1/nominals", json=again, headers=auth("police:essex")), 409)

    log = client.get(
        f"/v1/nominals/{nominal_id}/access-log",
        headers=auth(AUDITOR, "audit:read", Justification=REASON),
    )
    assert log.status_code == 200, log.text
    claims = [e for e in log.json()["entries"] if e["action"] == "claim-identifier"]
    assert [(e["agency"], e["outcome"], e["route"]) for e in claims] == [
        ("police:essex", "refused", "POST /v1/nominals")
    ]
