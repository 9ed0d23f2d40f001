"""Identifiers are ASCII (issue 16, point 3): a CRN written with Arabic-Indic digits
registered a second record for a person already held, since the identifier rules matched
any Unicode digit. Through the HTTP API, each look-alike of the domain's table is a 422
naming the identifier, for a registration and for a look-up, and nothing is stored."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import random_crn, registration
from tests.security.conftest import assert_refused
from tests.unit.test_identifiers import LOOKALIKES

PARTNER = "police:kent"
CASES = [pytest.param(k, la, id=f"{k}-{what}") for k, _, la, what in LOOKALIKES]


@pytest.mark.parametrize(("kind", "lookalike"), CASES)
def test_registering_with_a_look_alike_identifier_is_a_422_naming_it(
    client, auth, stored_count, table_count, kind, lookalike
):
    before, held = stored_count(), table_count("nominal_identifiers")
    body = registration(identifiers={kind: lookalike})
    r = client.post("/v1/nominals", json=body, headers=auth(PARTNER))
    problem = assert_refused(r, 422, f"identifiers.{kind}")
    assert "ASCII" in problem["detail"]
    assert stored_count() == before
    assert table_count("nominal_identifiers") == held


@pytest.mark.parametrize(("kind", "lookalike"), CASES)
def test_looking_up_a_look_alike_identifier_is_a_422_naming_it(client, auth, kind, lookalike):
    r = client.get("/v1/nominals", params={kind: lookalike}, headers=auth(PARTNER))
    assert_refused(r, 422, f"identifiers.{kind}")


ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def test_a_crn_in_arabic_indic_digits_does_not_register_a_second_record(
    client, auth, register, stored_count
):
    """The issue's example: X١٢٣٤٥٦ beside X123456, once for a random CRN."""
    crn = random_crn()
    first = register(PARTNER, identifiers={"crn": crn})
    before = stored_count()
    again = registration(identifiers={"crn": crn[0] + crn[1:].translate(ARABIC_INDIC)})
    r = client.post("/v1/nominals", json=again, headers=auth(PARTNER))
    assert_refused(r, 422, "identifiers.crn")
    assert stored_count() == before
    found = client.get("/v1/nominals", params={"crn": crn}, headers=auth(PARTNER)).json()
    assert [x["nominal_id"] for x in found["results"]] == [first]


def test_a_look_alike_in_an_hmpps_message_names_no_one(client, auth, register, stored_count):
    """An HMPPS message naming the person with look-alike digits is refused (it is not a CRN),
    not applied to the record holding the ASCII one."""
    from tests.integrations.conftest import INBOUND_SCOPES, INBOUND_URL, PROBATION_CLIENT, sns
    from tests.integrations.conftest import mapp_registration as hmpps_registration

    crn = random_crn()
    nominal_id = register("probation:midlands", identifiers={"crn": crn})
    before = stored_count(nominal_id)
    lookalike = crn[0] + crn[1:].translate(ARABIC_INDIC)
    message = sns(hmpps_registration(lookalike, category="M2", level="M2"), str(uuid.uuid4()))
    r = client.post(INBOUND_URL, json=message, headers=auth(PROBATION_CLIENT, INBOUND_SCOPES))
    problem = assert_refused(r, 400, "personReference.identifiers.0.value")
    assert "ASCII" in problem["detail"]
    assert stored_count(nominal_id) == before


def test_ascii_identifiers_still_register_and_are_found(client, auth, register):
    crn = random_crn()
    nominal_id = register(PARTNER, identifiers={"crn": crn.lower()})
    found = client.get("/v1/nominals", params={"crn": crn}, headers=auth(PARTNER)).json()
    assert [x["nominal_id"] for x in found["results"]] == [nominal_id]
