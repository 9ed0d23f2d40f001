"""The access table of service/access.py against the "who may post" column of
docs/design.md#the-catalogue.

The expected table is kept here as data, transcribed from docs/design.md, one row per event type
and agency type; the object-level check (the caller is a current partner) is the service's
and is tested through the API.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from domain.agencies import AGENCY_TYPES
from domain.errors import InvariantViolated
from domain.nominal import EVENT_TYPES, Nominal
from service import access
from service.access import Forbidden
from service.auth import Principal

RA = {"police", "probation", "prison"}
RA_AND_MAPPA = RA | {"mappa"}
MEETING_BODIES = {"mappa", "police", "probation"}
EVERYONE = set(AGENCY_TYPES)

# docs/design.md#the-catalogue, "who may post" (partnered, with records:write). A set names the
# agency types that may post; a string names a rule about one particular agency.
WHO_MAY_POST: dict[str, set[str] | str] = {
    "NominalRegistered": {"police", "probation", "prison", "yot", "health"},
    "AgencyPartnered": RA_AND_MAPPA,
    "PartneringEnded": RA_AND_MAPPA,
    "OfficerAssigned": "that agency, or mappa",
    "EntryRecorded": EVERYONE,
    "RestrictionRecorded": RA_AND_MAPPA,
    "RiskAssessmentRecorded": {"police", "probation", "prison", "yot", "health"},
    "RiskManagementPlanUpdated": "lead agency or mappa",
    "DisclosureDecisionRecorded": {"police", "probation", "mappa"},
    "LevelChanged": RA_AND_MAPPA,
    "CategoryChanged": RA_AND_MAPPA,
    "LeadAgencyChanged": RA_AND_MAPPA,
    "MeetingHeld": MEETING_BODIES,
    "MinutesUploaded": MEETING_BODIES,
    "ReferralMade": EVERYONE,
    "ReferralDecided": {"mappa"},
    "Level1ReviewRecorded": RA_AND_MAPPA,
    "ActionSet": MEETING_BODIES,
    "ActionCompleted": "the assigned agency, or mappa",
    "CustodyChanged": {"prison", "probation", "police"},
    "AreaTransferred": {"police", "probation", "mappa"},
    "NominalDeregistered": {"police", "probation", "mappa"},
    "NominalReregistered": {"police", "probation", "mappa"},
    "EntryRetracted": "the agency that posted it, or mappa",
    # docs/design.md#lifecycles
    "IdentifierAdded": RA_AND_MAPPA,
    "IdentifierCorrected": RA_AND_MAPPA,
    "PersonalDetailsCorrected": RA_AND_MAPPA,
    "AliasAdded": RA_AND_MAPPA,
    "AliasRemoved": RA_AND_MAPPA,
    "AddressRecorded": RA,
    "RestrictionVaried": RA_AND_MAPPA,
    "RestrictionEnded": RA_AND_MAPPA,
    "AreaTransferRequested": {"police", "probation", "mappa"},
    "AreaTransferAccepted": "the receiving mappa agency, not yet a partner",
    "BreachRecorded": RA_AND_MAPPA,
    "RecallRecorded": {"probation", "prison"},
    "FurtherOffenceRecorded": {"police", "probation", "mappa"},
    "MappaStatusExplained": RA_AND_MAPPA,
    "CriticalCaseRegistered": {"mappa"},
    "CriticalCaseEnded": {"mappa"},
}

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
LEAD = "probation:lead"
OTHER = "police:other"


def principal(agency: str, scopes: str = "records:read records:write") -> Principal:
    return Principal(sub=f"test-{agency}", agency=agency, scopes=frozenset(scopes.split()))


def agency_of(agency_type: str) -> str:
    return f"{agency_type}:a1"


def a_record() -> tuple[Nominal, str, str]:
    """A record with an entry posted by OTHER and an action assigned to OTHER."""
    nominal = Nominal.register(
        nominal_id=uuid.uuid4(),
        event_id=str(uuid.uuid4()),
        occurred_at="2026-11-20",
        recorded_at=T0,
        recorded_by={"sub": "s", "agency": OTHER},
        payload={
            "identifiers": {"crn": "X123456"},
            "name": {"family": "E", "given": []},
            "area": "kent",
            "category": 1,
            "level": 1,
            "lead_agency": LEAD,
        },
    )
    entry = nominal.record(
        "EntryRecorded",
        event_id=str(uuid.uuid4()),
        occurred_at="2026-11-20",
        recorded_at=T0,
        recorded_by={"sub": "s", "agency": OTHER},
        payload={"entry_type": "other", "subject": "s", "body": "b"},
    )
    nominal.record(
        "ActionSet",
        event_id=str(uuid.uuid4()),
        occurred_at="2026-11-20",
        recorded_at=T0,
        recorded_by={"sub": "s", "agency": OTHER},
        payload={
            "action_id": "a-1",
            "description": "d",
            "assigned_agency": OTHER,
            "due_on": "2026-12-01",
        },
    )
    return nominal, entry.event_id, "a-1"


def may_post(
    agency: str,
    event_type: str,
    payload: dict[str, Any] | None = None,
    nominal: Nominal | None = None,
) -> bool:
    who = principal(agency)
    try:
        if event_type == "NominalRegistered":
            access.require_may_register(who)
        else:
            access.require_may_post(who, nominal or a_record()[0], event_type, payload or {})
    except Forbidden:
        return False
    return True


def test_the_expected_table_covers_the_whole_catalogue():
    assert set(WHO_MAY_POST) == set(EVENT_TYPES)


def test_the_access_table_has_one_rule_per_postable_event_type():
    assert set(access.MAY_POST) == set(EVENT_TYPES) - {"NominalRegistered"}


SET_ROWS = [
    (event_type, agency_type, agency_type in allowed)
    for event_type, allowed in WHO_MAY_POST.items()
    if isinstance(allowed, set)
    for agency_type in sorted(AGENCY_TYPES)
]


@pytest.mark.parametrize(("event_type", "agency_type", "allowed"), SET_ROWS)
def test_who_may_post_by_agency_type(event_type, agency_type, allowed):
    assert may_post(agency_of(agency_type), event_type) is allowed


@pytest.mark.parametrize("agency_type", sorted(AGENCY_TYPES))
def test_an_officer_is_assigned_by_that_agency_or_mappa(agency_type):
    agency = agency_of(agency_type)
    for_itself = {"agency": agency, "officer": {}}
    for_another = {"agency": OTHER, "officer": {}}
    assert may_post(agency, "OfficerAssigned", for_itself) is True
    assert may_post(agency, "OfficerAssigned", for_another) is (agency_type == "mappa")


@pytest.mark.parametrize("agency_type", sorted(AGENCY_TYPES))
def test_the_risk_management_plan_is_updated_by_the_lead_agency_or_mappa(agency_type):
    assert may_post(agency_of(agency_type), "RiskManagementPlanUpdated") is (agency_type == "mappa")


def test_the_lead_agency_updates_the_plan():
    assert may_post(LEAD, "RiskManagementPlanUpdated") is True


@pytest.mark.parametrize("agency_type", sorted(AGENCY_TYPES))
def test_an_action_is_completed_by_the_assigned_agency_or_mappa(agency_type):
    nominal, _, action_id = a_record()
    payload = {"action_id": action_id, "outcome": "done", "completed_on": "2026-11-21"}
    assert may_post(agency_of(agency_type), "ActionCompleted", payload, nominal) is (
        agency_type == "mappa"
    )
    assert may_post(OTHER, "ActionCompleted", payload, nominal) is True


@pytest.mark.parametrize("agency_type", sorted(AGENCY_TYPES))
def test_an_entry_is_retracted_by_the_agency_that_posted_it_or_mappa(agency_type):
    nominal, entry_id, _ = a_record()
    payload = {"retracts": entry_id, "rationale": "wrong record"}
    assert may_post(agency_of(agency_type), "EntryRetracted", payload, nominal) is (
        agency_type == "mappa"
    )
    assert may_post(OTHER, "EntryRetracted", payload, nominal) is True


def a_transfer(receiving: str = "mappa:essex") -> tuple[Nominal, str]:
    nominal, _, _ = a_record()
    request = nominal.record(
        "AreaTransferRequested",
        event_id=str(uuid.uuid4()),
        occurred_at="2026-11-20",
        recorded_at=T0,
        recorded_by={"sub": "s", "agency": OTHER},
        payload={"to_area": "essex", "receiving": receiving, "rationale": "moving"},
    )
    return nominal, request.event_id


@pytest.mark.parametrize("agency_type", sorted(AGENCY_TYPES))
def test_a_transfer_is_accepted_by_the_receiving_unit_only(agency_type):
    nominal, transfer = a_transfer()
    payload = {"transfer": transfer, "accepted_on": "2026-11-20"}
    assert may_post(agency_of(agency_type), "AreaTransferAccepted", payload, nominal) is False
    assert may_post("mappa:essex", "AreaTransferAccepted", payload, nominal) is True


@pytest.mark.parametrize("agency", ["mappa:essex", "mappa:a1", "police:a1"])
def test_an_unknown_transfer_is_left_to_the_record_to_refuse_naming_it_not_a_403(agency):
    nominal, _ = a_transfer()
    payload = {"transfer": str(uuid.uuid4()), "accepted_on": "2026-11-20"}
    assert may_post(agency, "AreaTransferAccepted", payload, nominal) is True
    with pytest.raises(InvariantViolated) as refused:
        nominal.record(
            "AreaTransferAccepted",
            event_id=str(uuid.uuid4()),
            occurred_at="2026-11-20",
            recorded_at=T0,
            recorded_by={"sub": "s", "agency": agency},
            payload=payload,
        )
    assert refused.value.field == "payload.transfer"


def test_standing_is_partnering_or_an_open_transfer_naming_the_caller_for_its_acceptance():
    nominal, _ = a_transfer()
    receiving, stranger = principal("mappa:essex"), principal("mappa:surrey")
    assert access.has_standing(principal(OTHER), nominal, "EntryRecorded") is True
    assert access.has_standing(receiving, nominal, "AreaTransferAccepted") is True
    assert access.has_standing(receiving, nominal, "EntryRecorded") is False
    assert access.has_standing(stranger, nominal, "AreaTransferAccepted") is False
    assert access.has_standing(receiving, None, "AreaTransferAccepted") is False


def test_restricted_entries_are_read_whole_by_the_poster_the_named_and_auditors_who_say_why():
    nominal, _, _ = a_record()
    entry = nominal.record(
        "EntryRecorded",
        event_id=str(uuid.uuid4()),
        occurred_at="2026-11-20",
        recorded_at=T0,
        recorded_by={"sub": "s", "agency": OTHER},
        payload={
            "entry_type": "intelligence",
            "subject": "s",
            "body": "b",
            "restricted_to": ["police:ct"],
        },
    ).event_id
    auditor, why = principal("inspectorate:hmi", "audit:read"), "Thematic inspection 2026"
    assert access.hidden_entries(principal(OTHER), nominal, None) == frozenset()
    assert access.hidden_entries(principal("police:ct"), nominal, None) == frozenset()
    assert access.hidden_entries(principal(LEAD), nominal, None) == {entry}
    assert access.hidden_entries(auditor, nominal, why) == frozenset()
    assert access.hidden_entries(auditor, nominal, None) == {entry}
    assert access.sees_restricted(principal(LEAD), None, OTHER, ["police:ct"]) is False
    assert access.sees_restricted(auditor, why, OTHER, ["police:ct"]) is True


def test_registering_needs_records_write():
    with pytest.raises(Forbidden):
        access.require_may_register(principal("police:kent", "records:read"))


def test_reading_needs_a_partner_with_records_read_or_an_auditor_with_a_reason():
    nominal, _, _ = a_record()
    partners, why = nominal.partners, "Thematic inspection 2026"
    auditor = principal("inspectorate:hmi", "audit:read")
    assert access.read_outcome(principal(OTHER), partners, None) == "allowed"
    assert access.read_outcome(principal(OTHER, "records:write"), partners, None) == "refused"
    assert access.read_outcome(principal("police:stranger"), partners, None) == "refused"
    assert access.read_outcome(auditor, partners, why) == "allowed"
    # No record: nothing to log against, and the same silence for a partner or a stranger.
    assert access.read_outcome(principal(OTHER), None, None) is None
    assert access.read_outcome(principal("police:stranger"), None, None) is None
    assert access.read_outcome(auditor, None, why) is None
    # An auditor without a reason is refused whether or not the record exists.
    for held in (partners, None):
        with pytest.raises(access.JustificationRequired):
            access.read_outcome(auditor, held, None)
        with pytest.raises(access.JustificationRequired):
            access.read_outcome(auditor, held, "too short")


def test_require_scope_takes_any_of_the_scopes():
    access.require_scope(principal("police:kent", "audit:read"), "records:read", "audit:read")
    with pytest.raises(Forbidden):
        access.require_scope(principal("police:kent", "feed:read"), "records:read", "audit:read")
