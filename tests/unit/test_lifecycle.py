"""docs/design.md#lifecycles, given/when/then on the Nominal aggregate: corrections, orders that
change, moves between areas, what happened next, and restricted entries.

No database; payloads are as the API hands them over (validated, dumped to JSON types).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from domain.errors import InvalidValue, InvariantViolated, NoChange, RecordClosed
from domain.nominal import Nominal
from domain.nominal.entries import placeholder, redacted
from tests.unit.test_nominal import MAPPA, POLICE, PRISON, PROBATION, Clock, given, when

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
ELSEWHERE = "mappa:essex"


def refused(kind: type[Exception], field: str | None = None):
    """pytest.raises, and the refusal names the field."""

    class Check:
        def __enter__(self):
            self.raises = pytest.raises(kind)
            self.info = self.raises.__enter__()
            return self.info

        def __exit__(self, *exc):
            done = self.raises.__exit__(*exc)
            if field is not None:
                assert self.info.value.field == field, self.info.value.field
            return done

    return Check()


def order(**overrides: Any) -> dict[str, Any]:
    return {
        "kind": "SHPO",
        "details": "No unsupervised contact with children under 16",
        "starts_on": "2025-01-10",
        "ends_on": "2030-01-09",
    } | overrides


def address(**overrides: Any) -> dict[str, Any]:
    return {
        "kind": "home",
        "lines": ["1 High Street", "Maidstone"],
        "postcode": "ME14 1AA",
        "from_date": "2026-01-01",
    } | overrides


# -- identifiers ------------------------------------------------------------------------------


def test_an_identifier_learnt_later_is_added_normalised_with_who_added_it():
    nominal = given(identifiers={"pnc": "2002/0073319Z"})
    when(nominal, "IdentifierAdded", {"kind": "crn", "value": " x123456 "}, by=PROBATION)
    view = nominal.view()
    assert view["identifiers"] == {"pnc": "2002/0073319Z", "crn": "X123456"}
    [change] = view["identifier_changes"]
    assert change["change"] == "added" and change["to"] == "X123456"
    assert change["recorded_by"]["agency"] == PROBATION


def test_an_identifier_of_a_kind_already_held_is_corrected_not_added():
    nominal = given(identifiers={"crn": "X123456"})
    with refused(InvariantViolated, "payload.kind"):
        when(nominal, "IdentifierAdded", {"kind": "crn", "value": "Y654321"})
    with refused(NoChange):
        when(nominal, "IdentifierAdded", {"kind": "crn", "value": "x123456"})
    assert nominal.version == 1


def test_an_identifier_that_is_not_one_is_refused_naming_the_value():
    nominal = given()
    with refused(InvalidValue, "payload.value"):
        when(nominal, "IdentifierAdded", {"kind": "noms", "value": "A12"})
    with refused(InvalidValue, "payload.kind"):
        when(nominal, "IdentifierAdded", {"kind": "nhs", "value": "123"})


def test_a_wrong_identifier_is_corrected_and_kept_as_past_with_the_reason():
    nominal = given(identifiers={"pnc": "2002/0073319Z", "crn": "X123456"})
    when(
        nominal,
        "IdentifierCorrected",
        {"kind": "crn", "from": "x123456", "to": "X123457", "rationale": "Mistyped at intake"},
        by=PROBATION,
    )
    view = nominal.view()
    assert view["identifiers"]["crn"] == "X123457"
    [past] = view["past_identifiers"]
    assert past["value"] == "X123456" and past["replaced_by"] == "X123457"
    assert past["rationale"] == "Mistyped at intake" and past["released_by"]["agency"] == PROBATION
    [change] = view["identifier_changes"]
    assert (change["change"], change["from"], change["to"]) == ("corrected", "X123456", "X123457")


def test_a_correction_names_the_identifier_held():
    nominal = given(identifiers={"crn": "X123456"})
    with refused(InvariantViolated, "payload.from"):
        when(
            nominal,
            "IdentifierCorrected",
            {"kind": "crn", "from": "X999999", "to": "X123457", "rationale": "typo"},
        )
    with refused(InvariantViolated, "payload.kind"):
        when(
            nominal,
            "IdentifierCorrected",
            {"kind": "noms", "from": "A1234BC", "to": "A1234BD", "rationale": "typo"},
        )
    with refused(NoChange):
        when(
            nominal,
            "IdentifierCorrected",
            {"kind": "crn", "from": "X123456", "to": "x123456", "rationale": "typo"},
        )
    with refused(InvalidValue, "payload.to"):
        when(
            nominal,
            "IdentifierCorrected",
            {"kind": "crn", "from": "X123456", "to": "123456", "rationale": "typo"},
        )


def test_a_short_pnc_names_the_one_held():
    nominal = given(identifiers={"pnc": "2002/0073319Z"})
    when(
        nominal,
        "IdentifierCorrected",
        {"kind": "pnc", "from": "02/73319Z", "to": "1979/0163001B", "rationale": "wrong person"},
    )
    assert nominal.identifiers["pnc"] == "1979/0163001B"
    assert nominal.pending_events[-1].payload["from"] == "2002/0073319Z"


# -- personal details and aliases ---------------------------------------------------------------


def test_personal_details_are_corrected_showing_what_they_were():
    nominal = given()
    when(
        nominal,
        "PersonalDetailsCorrected",
        {
            "date_of_birth": "1980-01-02",
            "ethnicity": "white_british",
            "rationale": "Day and month swapped at registration",
        },
    )
    view = nominal.view()
    assert view["date_of_birth"] == "1980-01-02" and view["ethnicity"] == "white_british"
    [correction] = view["personal_details_corrections"]
    assert correction["changes"]["date_of_birth"] == {"from": "1980-02-01", "to": "1980-01-02"}
    assert correction["changes"]["ethnicity"] == {"from": None, "to": "white_british"}
    assert correction["rationale"].startswith("Day and month")


def test_a_correction_that_changes_nothing_is_refused():
    nominal = given()
    with refused(NoChange):
        when(nominal, "PersonalDetailsCorrected", {"gender": "male", "rationale": "checked"})
    with refused(InvalidValue, "payload"):
        when(nominal, "PersonalDetailsCorrected", {"rationale": "nothing said"})
    with refused(InvalidValue, "payload.ethnicity"):
        when(nominal, "PersonalDetailsCorrected", {"ethnicity": "martian", "rationale": "x"})
    with refused(InvalidValue, "payload.date_of_birth"):
        when(nominal, "PersonalDetailsCorrected", {"date_of_birth": "2099-01-01", "rationale": "x"})


def test_a_name_is_corrected_whole():
    nominal = given()
    name = {"family": "Exampel", "given": ["Samuel"]}
    when(nominal, "PersonalDetailsCorrected", {"name": name, "rationale": "Spelling"})
    assert nominal.view()["name"] == name


def test_aliases_are_added_and_removed_with_who_and_why():
    nominal = given()
    alias = {"family": "Smith", "given": ["John"]}
    when(nominal, "AliasAdded", {"alias": alias})
    with refused(NoChange):
        when(nominal, "AliasAdded", {"alias": {"family": "SMITH", "given": ["john"]}})
    assert nominal.view()["aliases"] == [alias]
    when(nominal, "AliasRemoved", {"alias": alias, "rationale": "Another man's name"}, by=MAPPA)
    view = nominal.view()
    assert view["aliases"] == []
    [past] = view["past_aliases"]
    assert past["alias"] == alias and past["rationale"] == "Another man's name"
    assert past["removed"]["recorded_by"]["agency"] == MAPPA
    assert [c["change"] for c in view["alias_changes"]] == ["added", "removed"]


def test_only_an_alias_held_is_removed():
    nominal = given()
    with refused(InvariantViolated, "payload.alias"):
        when(nominal, "AliasRemoved", {"alias": {"family": "X", "given": []}, "rationale": "r"})


# -- addresses ---------------------------------------------------------------------------------


def test_the_latest_address_is_current_and_the_others_past():
    nominal = given()
    when(nominal, "AddressRecorded", address(), by=PROBATION)
    when(
        nominal,
        "AddressRecorded",
        address(kind="approved_premises", lines=["AP House"], from_date="2026-06-01"),
    )
    when(nominal, "AddressRecorded", address(lines=["Old Road"], from_date="2024-01-01"))
    view = nominal.view()
    assert view["address"]["kind"] == "approved_premises"
    assert [a["from_date"] for a in view["past_addresses"]] == ["2024-01-01", "2026-01-01"]


def test_an_address_from_a_future_day_or_the_same_again_is_refused():
    nominal = given()
    with refused(InvalidValue, "payload.from_date"):
        when(nominal, "AddressRecorded", address(from_date="2027-01-01"))
    when(nominal, "AddressRecorded", address())
    with refused(NoChange):
        when(nominal, "AddressRecorded", address(from_date="2026-02-01"))


# -- restrictions ------------------------------------------------------------------------------


def test_a_varied_order_shows_its_new_terms_and_what_they_were():
    nominal = given()
    shpo = when(nominal, "RestrictionRecorded", order()).event_id
    when(
        nominal,
        "RestrictionVaried",
        {
            "restriction": shpo,
            "details": "No contact with children under 16",
            "ends_on": "2032-01-09",
            "rationale": "Varied at Maidstone Crown Court",
        },
        by=MAPPA,
    )
    [item] = nominal.view()["restrictions"]
    assert item["details"] == "No contact with children under 16"
    assert item["ends_on"] == "2032-01-09"
    [variation] = item["variations"]
    assert variation["from"] == {"details": order()["details"], "ends_on": "2030-01-09"}
    assert variation["recorded_by"]["agency"] == MAPPA


def test_a_variation_names_an_order_of_the_record_in_force():
    nominal = given()
    with refused(InvariantViolated, "payload.restriction"):
        when(
            nominal,
            "RestrictionVaried",
            {"restriction": str(uuid.uuid4()), "details": "d", "rationale": "r"},
        )
    old = when(nominal, "RestrictionRecorded", order(ends_on="2026-01-01")).event_id
    with refused(InvariantViolated, "payload.restriction"):
        when(nominal, "RestrictionVaried", {"restriction": old, "details": "d", "rationale": "r"})
    shpo = when(nominal, "RestrictionRecorded", order()).event_id
    with refused(InvalidValue, "payload"):
        when(nominal, "RestrictionVaried", {"restriction": shpo, "rationale": "r"})
    with refused(NoChange):
        when(
            nominal,
            "RestrictionVaried",
            {"restriction": shpo, "details": order()["details"], "rationale": "r"},
        )
    with refused(InvalidValue, "payload.ends_on"):
        when(
            nominal,
            "RestrictionVaried",
            {"restriction": shpo, "ends_on": "2020-01-01", "rationale": "r"},
        )
    entry = when(
        nominal, "EntryRecorded", {"entry_type": "other", "subject": "s", "body": "b"}
    ).event_id
    with refused(InvariantViolated, "payload.restriction"):
        when(nominal, "RestrictionVaried", {"restriction": entry, "details": "d", "rationale": "r"})


def test_an_ended_order_leaves_the_current_list_and_cannot_be_ended_or_varied_again():
    nominal = given()
    shpo = when(nominal, "RestrictionRecorded", order()).event_id
    ended = {"restriction": shpo, "ended_on": "2026-11-19", "reason": "discharged"}
    when(nominal, "RestrictionEnded", ended, by=PROBATION)
    view = nominal.view()
    assert view["restrictions"] == [] and view["restriction_status"] == {}
    [past] = view["ended_restrictions"]
    assert past["ended"]["reason"] == "discharged" and past["ended"]["ended_on"] == "2026-11-19"
    with refused(InvariantViolated, "payload.restriction"):
        when(nominal, "RestrictionEnded", ended)
    with refused(InvariantViolated, "payload.restriction"):
        when(nominal, "RestrictionVaried", {"restriction": shpo, "details": "d", "rationale": "r"})


def test_an_order_ends_after_it_starts_and_not_after_today():
    nominal = given()
    shpo = when(nominal, "RestrictionRecorded", order()).event_id
    with refused(InvalidValue, "payload.ended_on"):
        when(
            nominal,
            "RestrictionEnded",
            {"restriction": shpo, "ended_on": "2024-01-01", "reason": "other"},
        )
    with refused(InvalidValue, "payload.ended_on"):
        when(
            nominal,
            "RestrictionEnded",
            {"restriction": shpo, "ended_on": "2027-01-01", "reason": "other"},
        )


def test_an_order_past_its_end_shows_as_expired_and_may_still_be_ended():
    nominal = given()
    old = when(nominal, "RestrictionRecorded", order(ends_on="2026-03-01")).event_id
    now = when(nominal, "RestrictionRecorded", order(ends_on=None)).event_id
    later = when(nominal, "RestrictionRecorded", order(starts_on="2027-01-01")).event_id
    status = nominal.view(today=date(2026, 11, 20))["restriction_status"]
    assert status == {old: "expired", now: "in_force", later: "not_yet_in_force"}
    assert nominal.view(today=date(2026, 2, 1))["restriction_status"][old] == "in_force"
    when(
        nominal,
        "RestrictionEnded",
        {"restriction": old, "ended_on": "2026-03-01", "reason": "expired"},
    )
    assert old not in nominal.view()["restriction_status"]


def test_a_retracted_order_is_unknown_to_variation_and_breach():
    nominal = given()
    shpo = when(nominal, "RestrictionRecorded", order()).event_id
    when(nominal, "EntryRetracted", {"retracts": shpo, "rationale": "wrong record"})
    with refused(InvariantViolated, "payload.restriction"):
        when(nominal, "RestrictionVaried", {"restriction": shpo, "details": "d", "rationale": "r"})
    with refused(InvariantViolated, "payload.of"):
        when(
            nominal,
            "BreachRecorded",
            {"of": shpo, "occurred_on": "2026-11-01", "action": "warning"},
        )


# -- moves between areas -----------------------------------------------------------------------


def requested(nominal: Nominal, to_area: str = "essex", receiving: str = ELSEWHERE) -> str:
    payload = {
        "to_area": to_area,
        "receiving": receiving,
        "rationale": "Moving to live with family",
        "handover_meeting_on": "2026-12-01",
    }
    return when(nominal, "AreaTransferRequested", payload, by=PROBATION).event_id


def test_a_transfer_is_requested_then_accepted_by_the_receiving_unit():
    nominal = given()
    transfer = requested(nominal)
    view = nominal.view()
    assert view["area"] == "kent"
    assert view["transfers"][0]["status"] == "open"
    assert nominal.open_transfer_receivers() == {ELSEWHERE}
    when(
        nominal,
        "AreaTransferAccepted",
        {"transfer": transfer, "accepted_on": "2026-11-20"},
        by=ELSEWHERE,
    )
    view = nominal.view()
    assert view["area"] == "essex"
    assert [a["area"] for a in view["area_history"]] == ["kent", "essex"]
    assert view["transfers"][0]["status"] == "accepted"
    assert view["transfers"][0]["accepted"]["recorded_by"]["agency"] == ELSEWHERE
    partner = next(p for p in view["partners"] if p["agency"] == ELSEWHERE)
    assert partner["reason"] == "area transfer from kent"
    assert nominal.open_transfer_receivers() == frozenset()
    accepted = nominal.pending_events[-1].payload
    assert (accepted["from_area"], accepted["to_area"]) == ("kent", "essex")


def test_an_acceptance_names_an_open_request_of_the_record():
    nominal = given()
    with refused(InvariantViolated, "payload.transfer"):
        when(
            nominal,
            "AreaTransferAccepted",
            {"transfer": str(uuid.uuid4()), "accepted_on": "2026-11-20"},
        )
    transfer = requested(nominal)
    with refused(InvalidValue, "payload.accepted_on"):
        when(nominal, "AreaTransferAccepted", {"transfer": transfer, "accepted_on": "2026-11-01"})
    accept = {"transfer": transfer, "accepted_on": "2026-11-20"}
    when(nominal, "AreaTransferAccepted", accept, by=ELSEWHERE)
    with refused(NoChange):
        when(nominal, "AreaTransferAccepted", accept, by=ELSEWHERE)


def test_a_move_by_the_one_step_transfer_supersedes_an_open_request():
    nominal = given()
    transfer = requested(nominal)
    when(nominal, "AreaTransferred", {"to_area": "surrey", "rationale": "moved"})
    view = nominal.view()
    assert view["transfers"][0]["status"] == "superseded"
    assert [a["area"] for a in view["area_history"]] == ["kent", "surrey"]
    with refused(InvariantViolated, "payload.transfer"):
        when(nominal, "AreaTransferAccepted", {"transfer": transfer, "accepted_on": "2026-11-20"})


def test_a_request_is_to_another_area_and_its_mappa_unit():
    nominal = given()
    with refused(NoChange):
        requested(nominal, to_area="kent")
    with refused(InvalidValue, "payload.receiving"):
        requested(nominal, receiving="police:essex")
    requested(nominal)
    with refused(NoChange):
        requested(nominal)


# -- what happened next ------------------------------------------------------------------------


def test_breaches_recalls_and_further_offences_are_kept():
    nominal = given()
    shpo = when(nominal, "RestrictionRecorded", order()).event_id
    when(
        nominal,
        "BreachRecorded",
        {"of": "licence", "occurred_on": "2026-11-01", "action": "recall"},
    )
    when(nominal, "BreachRecorded", {"of": shpo, "occurred_on": "2026-11-02", "action": "arrest"})
    when(
        nominal,
        "RecallRecorded",
        {"recalled_on": "2026-11-03", "reason": "Breach of licence"},
        by=PROBATION,
    )
    when(
        nominal,
        "FurtherOffenceRecorded",
        {
            "offence_summary": "Sexual assault",
            "charged_on": "2026-11-04",
            "outcome": "charged",
            "serious": True,
        },
    )
    view = nominal.view()
    assert [b["of"] for b in view["breaches"]] == ["licence", shpo]
    assert view["recalls"][0]["reason"] == "Breach of licence"
    assert view["further_offences"][0]["serious"] is True


def test_a_breach_names_what_was_breached_and_happened_by_today():
    nominal = given()
    with refused(InvariantViolated, "payload.of"):
        when(
            nominal,
            "BreachRecorded",
            {"of": str(uuid.uuid4()), "occurred_on": "2026-11-01", "action": "none"},
        )
    with refused(InvalidValue, "payload.occurred_on"):
        when(
            nominal,
            "BreachRecorded",
            {"of": "licence", "occurred_on": "2027-01-01", "action": "none"},
        )
    with refused(InvalidValue, "payload.recalled_on"):
        when(nominal, "RecallRecorded", {"recalled_on": "2027-01-01", "reason": "r"})


def test_telling_the_person_about_mappa_is_recorded():
    nominal = given()
    when(
        nominal,
        "MappaStatusExplained",
        {
            "explained_on": "2026-11-19",
            "by": "probation:midlands",
            "level_explained": 1,
            "views_sought": True,
        },
        by=PROBATION,
    )
    [told] = nominal.view()["mappa_status_explained"]
    assert told["by"] == PROBATION and told["views_sought"] is True
    with refused(InvalidValue):
        when(
            nominal,
            "MappaStatusExplained",
            {
                "explained_on": "2026-11-19",
                "by": "nobody",
                "level_explained": 1,
                "views_sought": False,
            },
        )


def test_a_critical_case_is_a_level_3_case_registered_and_ended_by_mappa():
    nominal = given(level=2)
    cppc = {"on": "2026-11-20", "rationale": "Imminent risk to a known victim"}
    with refused(InvariantViolated):
        when(nominal, "CriticalCaseRegistered", cppc, by=MAPPA)
    when(nominal, "LevelChanged", {"to": 3, "rationale": "escalated", "decided_on": "2026-11-20"})
    when(nominal, "CriticalCaseRegistered", cppc, by=MAPPA)
    assert nominal.view()["critical_case"]["rationale"] == cppc["rationale"]
    with refused(NoChange):
        when(nominal, "CriticalCaseRegistered", cppc, by=MAPPA)
    with refused(InvariantViolated, "payload.to"):
        when(nominal, "LevelChanged", {"to": 2, "rationale": "r", "decided_on": "2026-11-20"})
    when(nominal, "CriticalCaseEnded", {"on": "2026-11-20", "rationale": "Risk reduced"}, by=MAPPA)
    view = nominal.view()
    assert view["critical_case"] is None
    assert view["critical_cases_ended"][0]["ended"]["rationale"] == "Risk reduced"
    with refused(NoChange):
        when(nominal, "CriticalCaseEnded", {"on": "2026-11-20", "rationale": "again"}, by=MAPPA)
    when(nominal, "LevelChanged", {"to": 2, "rationale": "r", "decided_on": "2026-11-20"})


def test_a_deregistered_record_takes_no_correction():
    nominal = given()
    when(nominal, "NominalDeregistered", {"rationale": "Registration period ended"})
    with pytest.raises(RecordClosed):
        when(nominal, "IdentifierAdded", {"kind": "noms", "value": "A1234BC"})


# -- restricted entries ------------------------------------------------------------------------


def restricted_entry(nominal: Nominal, to: list[str], by: str = POLICE) -> str:
    payload = {
        "entry_type": "intelligence",
        "subject": "Counter-terrorism",
        "body": "Material from the counter-terrorism unit",
        "restricted_to": to,
    }
    return when(nominal, "EntryRecorded", payload, by=by).event_id


def test_a_restricted_entry_is_read_whole_by_its_poster_and_the_agencies_it_names():
    nominal = given()
    secret = restricted_entry(nominal, ["police:ct-south-east", "police:ct-south-east"])
    when(nominal, "EntryRecorded", {"entry_type": "visit", "subject": "Visit", "body": "Home"})
    assert nominal.items["entries"][secret]["restricted_to"] == ["police:ct-south-east"]
    assert nominal.restricted_from(POLICE) == frozenset()
    assert nominal.restricted_from("police:ct-south-east") == frozenset()
    assert nominal.restricted_from(PROBATION) == {secret}
    assert nominal.restricted_entries() == {secret}


def test_other_partners_see_that_a_restricted_entry_exists_and_nothing_of_it():
    nominal = given()
    secret = restricted_entry(nominal, ["police:ct-south-east"])
    shown = nominal.view(hidden=nominal.restricted_from(PROBATION))["entries"][0]
    assert shown == placeholder(nominal.items["entries"][secret])
    assert shown["restricted"] is True and shown["entry_type"] == "intelligence"
    assert shown["recorded_by"] == {"sub": "restricted", "agency": POLICE}
    assert "subject" not in shown and "body" not in shown and "restricted_to" not in shown
    event = nominal.pending_events[-1].envelope()
    hidden = redacted(event)
    assert hidden["payload"] == {"entry_type": "intelligence", "restricted": True}
    assert hidden["hash"] == event["hash"] and hidden["version"] == event["version"]


def test_an_entry_restricted_to_nobody_is_refused():
    nominal = given()
    with refused(InvalidValue, "payload.restricted_to"):
        restricted_entry(nominal, [])


def test_an_entry_for_every_partner_is_stored_as_before():
    nominal = given()
    payload = {"entry_type": "visit", "subject": "s", "body": "b", "restricted_to": None}
    event = when(nominal, "EntryRecorded", payload)
    assert "restricted_to" not in event.payload


# -- snapshots taken before section 3.1 --------------------------------------------------------


def test_a_snapshot_taken_before_section_3_1_gains_its_state():
    clock = Clock()
    nominal = given(clock=clock)
    state = dict(vars(nominal))
    for added in ("transfers", "area_history", "breaches", "ethnicity", "restricted"):
        state.pop(added)
    Nominal.upcast_v1_v2(state)
    assert state["transfers"] == {} and state["breaches"] == [] and state["ethnicity"] is None
    assert state["area_history"][0]["area"] == "kent"


def test_the_view_says_the_day_its_orders_are_for():
    nominal = given()
    assert nominal.view()["as_on"] == (T0 + timedelta(minutes=1)).date().isoformat()
    assert nominal.view(today=date(2030, 1, 1))["as_on"] == "2030-01-01"
    assert PRISON  # the prison may post addresses (tests/unit/test_access.py)
