"""Identifiers learnt after registration, and HMPPS messages that then find the record
(docs/design.md#lifecycles; docs/integrating.md): a CRN added by a partner, and a prison identifier
matched by the national integration."""

from __future__ import annotations

from tests.conftest import event, random_crn, random_noms, random_pnc
from tests.integrations.conftest import (
    PRISON_CLIENT,
    hmpps_event,
    mapp_registration,
    sns,
)

PRISON_IDENTIFIER_ADDED = "probation-case.prison-identifier.added"


def prison_identifier_added(crn: str, noms: str) -> dict:
    return hmpps_event(PRISON_IDENTIFIER_ADDED, crn=crn, noms=noms)


def test_a_record_registered_with_a_pnc_only_is_found_by_a_crn_added_later(
    inbound, register, view, client, auth
):
    nominal_id = register("probation:midlands", identifiers={"pnc": random_pnc()}, level=1)
    crn = random_crn()
    before = inbound(sns(mapp_registration(crn, category="M2", level="M2")))
    assert before.status_code == 202, before.text
    assert before.json()["outcome"] == "unknown_person"

    r = client.post(
        f"/v1/nominals/{nominal_id}/events",
        json=event("IdentifierAdded", {"kind": "crn", "value": crn}),
        headers=auth("probation:midlands"),
    )
    assert r.status_code == 201, r.text
    after = inbound(sns(mapp_registration(crn, category="M2", level="M2")))
    assert after.status_code == 201, after.text
    assert after.json()["outcome"] == "applied"
    assert after.json()["nominal_id"] == nominal_id
    record = view(nominal_id)
    assert (record["category"], record["level"]) == (2, 2)
    assert record["identifiers"]["crn"] == crn


def test_a_prison_identifier_added_gives_the_noms_number_to_the_record_holding_the_crn(
    inbound, person, view
):
    crn, noms = random_crn(), random_noms()
    nominal_id, _, _ = person(identifiers={"crn": crn})
    r = inbound(sns(prison_identifier_added(crn, noms)))
    assert r.status_code == 201, r.text
    assert r.json()["outcome"] == "applied"
    assert [e["type"] for e in r.json()["events"]] == ["IdentifierAdded"]
    record = view(nominal_id)
    assert record["identifiers"]["noms"] == noms
    assert record["identifier_changes"][-1]["recorded_by"]["agency"] == "probation:national-delius"
    # A later prisoner movement names the person by the NOMS number alone, and finds them.
    moved = inbound(
        sns(
            hmpps_event(
                "prison-offender-events.prisoner.received",
                noms=noms,
                prisonId="LEI",
                reason="ADMISSION",
            )
        ),
        agency=PRISON_CLIENT,
    )
    assert moved.status_code == 201, moved.text
    assert view(nominal_id)["custody"]["establishment"] == "prison:LEI"


def test_a_prison_identifier_added_gives_the_crn_to_the_record_holding_the_noms_number(
    inbound, person, view
):
    crn, noms = random_crn(), random_noms()
    nominal_id, _, _ = person(identifiers={"noms": noms, "pnc": random_pnc()})
    message = sns(prison_identifier_added(crn, noms))
    r = inbound(message)
    assert r.status_code == 201, r.text
    assert view(nominal_id)["identifiers"]["crn"] == crn
    again = inbound(message)
    assert again.status_code == 200 and again.json()["outcome"] == "already_applied"


def test_a_prison_identifier_the_record_holds_changes_nothing(inbound, person):
    nominal_id, crn, noms = person()
    r = inbound(sns(prison_identifier_added(crn, noms)))
    assert r.status_code == 202 and r.json()["outcome"] == "no_change", r.text


def test_a_prison_identifier_different_from_the_one_held_is_not_applied(inbound, person, view):
    nominal_id, crn, _ = person()
    r = inbound(sns(prison_identifier_added(crn, random_noms())))
    assert r.status_code == 202 and r.json()["outcome"] == "not_applied", r.text
    assert view(nominal_id)["version"] == 1


def test_a_noms_number_held_by_another_record_is_not_applied(inbound, person, view):
    nominal_id, crn, _ = person(identifiers={"crn": random_crn()})
    crn = view(nominal_id)["identifiers"]["crn"]
    _, _, taken = person()
    r = inbound(sns(prison_identifier_added(crn, taken)))
    assert r.status_code == 202 and r.json()["outcome"] == "not_applied", r.text
    assert view(nominal_id)["version"] == 1


def test_a_prison_identifier_added_without_both_identifiers_is_malformed(inbound):
    r = inbound(sns(hmpps_event(PRISON_IDENTIFIER_ADDED, crn=random_crn())))
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["field"] == "personReference.identifiers"


def test_an_unknown_person_stays_unknown(inbound):
    r = inbound(sns(prison_identifier_added(random_crn(), random_noms())))
    assert r.status_code == 202 and r.json()["outcome"] == "unknown_person", r.text
