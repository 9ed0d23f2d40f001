"""The invariants of docs/design.md#invariants, given/when/then on the Nominal aggregate.

No database: a record is built with `Nominal.register` and `record`, with the instants
passed in. Payloads are as the API hands them over (validated, dumped to JSON types).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.chain import GENESIS_HASH, chain_hash
from domain.errors import InvalidValue, InvariantViolated, NoChange, RecordClosed
from domain.nominal import EVENT_TYPES, Nominal

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
POLICE = "police:kent"
PROBATION = "probation:midlands"
PRISON = "prison:LEI"
MAPPA = "mappa:kent"
HEALTH = "health:kent"


def registration(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "identifiers": {"pnc": "2002/0073319Z", "crn": "X123456"},
        "name": {"family": "Example", "given": ["Sam"]},
        "aliases": [],
        "date_of_birth": "1980-02-01",
        "gender": "male",
        "area": "kent",
        "category": 1,
        "level": 1,
        "lead_agency": PROBATION,
        "sentence_date": "2026-11-18",
        "offence_summary": None,
    }
    payload.update(overrides)
    return payload


class Clock:
    """Instants one minute apart, so each event has its own recorded_at."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


def given(by: str = POLICE, clock: Clock | None = None, **overrides: Any) -> Nominal:
    clock = clock or Clock()
    return Nominal.register(
        nominal_id=uuid.uuid4(),
        event_id=str(uuid.uuid4()),
        occurred_at="2026-11-20",
        recorded_at=clock(),
        recorded_by={"sub": f"test-{by}", "agency": by},
        payload=registration(**overrides),
    )


def when(
    nominal: Nominal,
    event_type: str,
    payload: dict[str, Any],
    *,
    by: str = POLICE,
    at: datetime | None = None,
    event_id: str | None = None,
) -> Nominal.Event:
    return nominal.record(
        event_type,
        event_id=event_id or str(uuid.uuid4()),
        occurred_at="2026-11-20",
        recorded_at=at or nominal.modified_on + timedelta(minutes=1),
        recorded_by={"sub": f"test-{by}", "agency": by},
        payload=payload,
    )


def meeting(meeting_id: str = "m-1", level: int = 2) -> dict[str, Any]:
    return {
        "meeting_id": meeting_id,
        "level": level,
        "held_on": "2026-11-20",
        "chair": "A Chair",
        "invited": [POLICE, PROBATION],
        "attended": [{"agency": POLICE, "name": "P Officer", "role": "offender manager"}],
        "apologies": [],
        "cppc_considered": None,
    }


def minutes(level: int = 2, meeting_date: str = "2025-04-17") -> dict[str, Any]:
    return {
        "meeting_id": "m-1",
        "meeting_date": meeting_date,
        "level": level,
        "document": {
            "sha256": "a" * 64,
            "filename": "m.pdf",
            "media_type": "application/pdf",
            "size": 10,
        },
    }


def referral(referral_id: str = "r-1", requested_level: int = 2) -> dict[str, Any]:
    return {
        "referral_id": referral_id,
        "requested_level": requested_level,
        "reasons": "multi-agency management adds value",
        "rosh_level": "high",
        "imminence": "weeks",
        "agencies_to_invite": [{"agency": "housing:kent", "why": "accommodation"}],
        "expected_release_on": None,
    }


def action(action_id: str = "a-1", assigned: str = POLICE) -> dict[str, Any]:
    return {
        "action_id": action_id,
        "meeting_id": None,
        "description": "Visit the address",
        "assigned_agency": assigned,
        "due_on": "2026-12-01",
    }


def entry() -> dict[str, Any]:
    return {"entry_type": "intelligence", "subject": "Sighting", "body": "Seen near the school"}


def partnered(agency: str) -> dict[str, Any]:
    return {"agency": agency, "reason": "involved in the case"}


# -- registration ---------------------------------------------------------------------------


def test_registration_makes_the_registering_agency_and_the_lead_the_first_partners():
    nominal = given(by=POLICE, lead_agency=PROBATION)
    assert sorted(nominal.partners) == [POLICE, PROBATION]
    assert nominal.version == 1
    assert nominal.level == 1 and nominal.category == 1


def test_registration_without_a_lead_partners_the_registering_agency_only():
    nominal = given(by=POLICE, lead_agency=None)
    assert list(nominal.partners) == [POLICE]
    assert nominal.lead_agency is None


def test_category_3_is_never_registered_at_level_1():
    with pytest.raises(InvariantViolated, match="category 3"):
        given(category=3, level=1)


@pytest.mark.parametrize("level", [2, 3])
def test_category_3_is_registered_at_level_2_or_3(level):
    assert given(category=3, level=level).level == level


@pytest.mark.parametrize(
    ("field", "value"), [("level", 0), ("level", 4), ("category", 0), ("category", 5)]
)
def test_level_and_category_out_of_range_are_refused_at_registration(field, value):
    with pytest.raises(InvalidValue):
        given(**{field: value})


def test_registration_needs_an_identifier():
    with pytest.raises(InvalidValue) as refused:
        given(identifiers={})
    assert refused.value.field == "identifiers"


def test_registration_refuses_an_unknown_area():
    with pytest.raises(InvalidValue):
        given(area="atlantis")


# -- level and category ------------------------------------------------------------------


def level_change(to: int) -> dict[str, Any]:
    return {
        "to": to,
        "rationale": "Escalating contact",
        "decided_on": "2026-11-20",
        "meeting_id": None,
    }


def test_level_change_records_the_level_it_came_from():
    nominal = given(level=1)
    event = when(nominal, "LevelChanged", level_change(2))
    assert event.payload["from"] == 1 and event.payload["to"] == 2
    assert nominal.level == 2


def test_from_is_filled_by_the_server_whatever_the_caller_sent():
    nominal = given(level=2)
    event = when(nominal, "LevelChanged", level_change(3) | {"from": 1})
    assert event.payload["from"] == 2


def test_a_level_change_to_the_level_held_is_refused():
    nominal = given(level=2)
    with pytest.raises(NoChange):
        when(nominal, "LevelChanged", level_change(2))
    assert nominal.version == 1


@pytest.mark.parametrize("to", [0, 4])
def test_a_level_out_of_range_is_refused(to):
    with pytest.raises(InvalidValue):
        when(given(), "LevelChanged", level_change(to))


def test_category_3_cannot_move_to_level_1():
    nominal = given(category=3, level=2)
    with pytest.raises(InvariantViolated, match="category 3"):
        when(nominal, "LevelChanged", level_change(1))
    assert nominal.level == 2


def test_a_level_1_record_cannot_become_category_3():
    nominal = given(category=1, level=1)
    with pytest.raises(InvariantViolated, match="category 3"):
        when(nominal, "CategoryChanged", {"to": 3, "rationale": "reassessed"})
    assert nominal.category == 1


def test_a_level_2_record_can_become_category_3_and_says_from_which():
    nominal = given(category=2, level=2)
    event = when(nominal, "CategoryChanged", {"to": 3, "rationale": "reassessed"})
    assert nominal.category == 3
    assert event.payload["from"] == 2


def test_a_category_change_to_the_category_held_is_refused():
    with pytest.raises(NoChange):
        when(given(category=2), "CategoryChanged", {"to": 2, "rationale": "reassessed"})


@pytest.mark.parametrize("to", [0, 5])
def test_a_category_out_of_range_is_refused(to):
    with pytest.raises(InvalidValue):
        when(given(), "CategoryChanged", {"to": to, "rationale": "reassessed"})


# -- partnering and the lead agency -------------------------------------------------------


def test_partnering_an_agency_adds_it_to_the_partners():
    nominal = given()
    when(nominal, "AgencyPartnered", partnered(PRISON))
    assert nominal.is_partner(PRISON)
    assert nominal.partners[PRISON]["by"] == POLICE


def test_partnering_an_existing_partner_is_refused():
    nominal = given(by=POLICE)
    with pytest.raises(NoChange):
        when(nominal, "AgencyPartnered", partnered(POLICE))


def test_the_lead_agency_must_be_a_partner():
    nominal = given(lead_agency=PROBATION)
    with pytest.raises(InvariantViolated) as refused:
        when(nominal, "LeadAgencyChanged", {"agency": PRISON, "rationale": "moved to custody"})
    assert refused.value.field == "payload.agency"
    assert nominal.lead_agency == PROBATION


def test_a_partner_can_become_the_lead_and_the_previous_lead_is_recorded():
    nominal = given(lead_agency=PROBATION)
    when(nominal, "AgencyPartnered", partnered(PRISON))
    event = when(nominal, "LeadAgencyChanged", {"agency": PRISON, "rationale": "in custody"})
    assert nominal.lead_agency == PRISON
    assert event.payload["from"] == PROBATION


def test_a_lead_change_to_the_agency_already_leading_is_refused():
    with pytest.raises(NoChange):
        when(
            given(lead_agency=PROBATION),
            "LeadAgencyChanged",
            {"agency": PROBATION, "rationale": "x"},
        )


def test_the_lead_agency_partnering_cannot_end_while_it_leads():
    nominal = given(by=POLICE, lead_agency=PROBATION)
    with pytest.raises(InvariantViolated, match="leads"):
        when(nominal, "PartneringEnded", partnered(PROBATION))
    assert nominal.is_partner(PROBATION)


def test_partnering_can_end_for_a_partner_that_does_not_lead():
    nominal = given(by=POLICE, lead_agency=PROBATION)
    when(nominal, "PartneringEnded", partnered(POLICE))
    assert not nominal.is_partner(POLICE)
    assert nominal.past_partners[0]["agency"] == POLICE


def test_partnering_can_never_leave_no_responsible_authority_partner():
    nominal = given(by=POLICE, lead_agency=None)
    when(nominal, "AgencyPartnered", partnered(HEALTH))
    when(nominal, "AgencyPartnered", partnered(MAPPA))
    with pytest.raises(InvariantViolated, match="Responsible Authority"):
        when(nominal, "PartneringEnded", partnered(POLICE))
    assert nominal.is_partner(POLICE)


def test_partnering_of_a_duty_to_cooperate_agency_can_end():
    nominal = given(by=POLICE, lead_agency=None)
    when(nominal, "AgencyPartnered", partnered(HEALTH))
    when(nominal, "PartneringEnded", partnered(HEALTH))
    assert not nominal.is_partner(HEALTH)


def test_partnering_cannot_end_for_an_agency_that_is_not_a_partner():
    with pytest.raises(InvariantViolated):
        when(given(), "PartneringEnded", partnered(PRISON))


def test_an_officer_is_assigned_for_a_partner_only():
    nominal = given(by=POLICE)
    officer = {"name": "P Officer", "role": "offender manager", "contact": "01234"}
    with pytest.raises(InvariantViolated):
        when(nominal, "OfficerAssigned", {"agency": PRISON, "officer": officer, "supervisor": None})
    when(nominal, "OfficerAssigned", {"agency": POLICE, "officer": officer, "supervisor": None})
    assert nominal.officers[POLICE]["officer"] == officer


# -- area --------------------------------------------------------------------------------


def test_an_area_transfer_to_the_area_held_is_refused():
    nominal = given(area="kent")
    with pytest.raises(NoChange):
        when(nominal, "AreaTransferred", {"to_area": "kent", "rationale": "moved"})


def test_an_area_transfer_records_the_area_it_came_from():
    nominal = given(area="kent")
    event = when(
        nominal, "AreaTransferred", {"to_area": "leicestershire-rutland", "rationale": "moved"}
    )
    assert nominal.area == "leicestershire-rutland"
    assert event.payload["from_area"] == "kent"


# -- meetings and minutes ----------------------------------------------------------------


def test_a_meeting_is_held_at_level_2_or_3_only():
    nominal = given(level=2)
    with pytest.raises(InvariantViolated, match="levels 2 and 3"):
        when(nominal, "MeetingHeld", meeting(level=1))
    when(nominal, "MeetingHeld", meeting(level=2))
    when(nominal, "MeetingHeld", meeting("m-2", level=3))
    assert sorted(nominal.meetings) == ["m-1", "m-2"]


def test_a_meeting_is_recorded_once():
    nominal = given(level=2)
    when(nominal, "MeetingHeld", meeting("m-1"))
    with pytest.raises(InvariantViolated, match="already"):
        when(nominal, "MeetingHeld", meeting("m-1"))


def test_minutes_are_for_level_2_or_3_only():
    with pytest.raises(InvariantViolated, match="levels 2 and 3"):
        when(given(level=2), "MinutesUploaded", minutes(level=1))


def test_minutes_due_on_and_lateness_are_filled_by_the_server():
    # Level 2: ten working days after Maundy Thursday 2025 skips Good Friday and Easter
    # Monday: 6 May 2025 (000, para 5.37). Recorded on the due date: on time.
    nominal = given(level=2)
    on_time = when(
        nominal, "MinutesUploaded", minutes(level=2), at=datetime(2025, 5, 6, 16, 0, tzinfo=UTC)
    )
    assert on_time.payload["due_on"] == "2025-05-06"
    assert on_time.payload["late"] is False
    assert on_time.payload["working_days_taken"] == 10


def test_minutes_recorded_after_the_due_date_are_late_and_the_client_cannot_say_otherwise():
    nominal = given(level=2)
    late = when(
        nominal,
        "MinutesUploaded",
        minutes(level=3) | {"due_on": "2030-01-01", "late": False, "working_days_taken": 0},
        at=datetime(2025, 5, 6, 16, 0, tzinfo=UTC),
    )
    # Level 3: five working days -> 28 April 2025.
    assert late.payload["due_on"] == "2025-04-28"
    assert late.payload["late"] is True
    assert late.payload["working_days_taken"] == 10


def test_minutes_lateness_uses_the_london_date_of_recorded_at():
    # 23:30 UTC on 6 May 2025 is already 7 May in London (BST): one day late.
    nominal = given(level=2)
    event = when(
        nominal, "MinutesUploaded", minutes(level=2), at=datetime(2025, 5, 6, 23, 30, tzinfo=UTC)
    )
    assert event.payload["late"] is True


def test_a_disclosure_decision_names_a_known_meeting():
    nominal = given(level=2)
    decision = {
        "meeting_id": "m-9",
        "decision": "defer",
        "recipient": None,
        "rationale": "await the review",
        "decided_on": "2026-11-20",
    }
    with pytest.raises(InvariantViolated) as refused:
        when(nominal, "DisclosureDecisionRecorded", decision)
    assert refused.value.field == "payload.meeting_id"
    when(nominal, "MeetingHeld", meeting("m-9"))
    when(nominal, "DisclosureDecisionRecorded", decision)
    assert len(nominal.disclosure_decisions) == 1


def test_a_disclosure_names_its_recipient():
    decision = {
        "meeting_id": None,
        "decision": "disclose",
        "recipient": None,
        "rationale": "risk to a new partner",
        "decided_on": "2026-11-20",
    }
    with pytest.raises(InvalidValue):
        when(given(), "DisclosureDecisionRecorded", decision)


# -- actions -----------------------------------------------------------------------------


def completion(
    action_id: str = "a-1", outcome: str = "Address visited, no concerns"
) -> dict[str, Any]:
    return {"action_id": action_id, "outcome": outcome, "completed_on": "2026-11-25"}


def test_an_action_completes_once_with_its_outcome():
    nominal = given()
    when(nominal, "ActionSet", action())
    when(nominal, "ActionCompleted", completion())
    assert nominal.actions["a-1"]["outcome"] == "Address visited, no concerns"
    with pytest.raises(InvariantViolated, match="already completed"):
        when(nominal, "ActionCompleted", completion(outcome="again"))
    assert nominal.actions["a-1"]["outcome"] == "Address visited, no concerns"


@pytest.mark.parametrize("outcome", ["", "   "])
def test_an_action_completes_with_an_outcome(outcome):
    nominal = given()
    when(nominal, "ActionSet", action())
    with pytest.raises(InvalidValue) as refused:
        when(nominal, "ActionCompleted", completion(outcome=outcome))
    assert refused.value.field == "payload.outcome"
    assert nominal.actions["a-1"]["completed_on"] is None


def test_a_completed_action_must_exist():
    with pytest.raises(InvariantViolated) as refused:
        when(given(), "ActionCompleted", completion("a-unknown"))
    assert refused.value.field == "payload.action_id"


def test_an_action_is_set_once():
    nominal = given()
    when(nominal, "ActionSet", action())
    with pytest.raises(InvariantViolated):
        when(nominal, "ActionSet", action())


def test_an_action_names_a_known_meeting():
    with pytest.raises(InvariantViolated):
        when(given(), "ActionSet", action() | {"meeting_id": "m-unknown"})


# -- referrals ---------------------------------------------------------------------------


def decision(referral_id: str = "r-1", outcome: str = "level_2") -> dict[str, Any]:
    return {
        "referral_id": referral_id,
        "decision": outcome,
        "feedback": "accepted for level 2",
        "decided_on": "2026-11-25",
    }


def test_a_referral_is_decided_once():
    nominal = given()
    when(nominal, "ReferralMade", referral())
    when(nominal, "ReferralDecided", decision(), by=MAPPA)
    assert nominal.referrals["r-1"]["decision"]["decision"] == "level_2"
    with pytest.raises(InvariantViolated, match="already decided"):
        when(nominal, "ReferralDecided", decision(outcome="level_3"), by=MAPPA)
    assert nominal.referrals["r-1"]["decision"]["decision"] == "level_2"


def test_a_decided_referral_must_exist():
    with pytest.raises(InvariantViolated) as refused:
        when(given(), "ReferralDecided", decision("r-unknown"), by=MAPPA)
    assert refused.value.field == "payload.referral_id"


def test_a_referral_is_made_once_and_asks_for_level_2_or_3():
    nominal = given()
    with pytest.raises(InvariantViolated):
        when(nominal, "ReferralMade", referral(requested_level=1))
    when(nominal, "ReferralMade", referral())
    with pytest.raises(InvariantViolated, match="already"):
        when(nominal, "ReferralMade", referral())


# -- custody -----------------------------------------------------------------------------


def test_custody_transfer_and_release_need_the_person_in_custody():
    nominal = given()
    with pytest.raises(InvariantViolated):
        when(
            nominal,
            "CustodyChanged",
            {"status": "released", "establishment": None, "expected_release_on": None},
        )
    with pytest.raises(InvariantViolated):
        when(
            nominal,
            "CustodyChanged",
            {"status": "transferred", "establishment": PRISON, "expected_release_on": None},
        )
    when(
        nominal,
        "CustodyChanged",
        {"status": "received", "establishment": PRISON, "expected_release_on": "2027-06-01"},
    )
    assert nominal.custody["establishment"] == PRISON


def test_custody_establishment_is_a_prison():
    with pytest.raises(InvalidValue):
        when(
            given(),
            "CustodyChanged",
            {"status": "received", "establishment": POLICE, "expected_release_on": None},
        )


# -- deregistration ----------------------------------------------------------------------


def deregistration() -> dict[str, Any]:
    return {"rationale": "notification period ended"}


def samples(nominal: Nominal) -> dict[str, dict[str, Any]]:
    """One otherwise valid payload of every type but re-registration, for a level-1 record."""
    officer = {"name": "P Officer", "role": "offender manager", "contact": "01234"}
    plan = {
        k: "in place"
        for k in (
            "supervision",
            "monitoring_and_control",
            "interventions_and_treatment",
            "victim_safety_planning",
            "contingency",
        )
    }
    return {
        "AgencyPartnered": partnered(PRISON),
        "PartneringEnded": partnered(POLICE),
        "OfficerAssigned": {"agency": POLICE, "officer": officer, "supervisor": None},
        "EntryRecorded": entry(),
        "RestrictionRecorded": {
            "kind": "SHPO",
            "details": "x",
            "starts_on": "2026-11-20",
            "ends_on": None,
        },
        "RiskAssessmentRecorded": {
            "tool": "OASys",
            "rosh_level": "high",
            "score": 1.0,
            "assessed_on": "2026-11-20",
            "authorised_by": None,
        },
        "RiskManagementPlanUpdated": plan,
        "DisclosureDecisionRecorded": {
            "meeting_id": None,
            "decision": "defer",
            "recipient": None,
            "rationale": "x",
            "decided_on": "2026-11-20",
        },
        "LevelChanged": level_change(2),
        "CategoryChanged": {"to": 2, "rationale": "x"},
        "LeadAgencyChanged": {"agency": POLICE, "rationale": "x"},
        "MeetingHeld": meeting(),
        "MinutesUploaded": minutes(),
        "ReferralMade": referral(),
        "ReferralDecided": decision(),
        "Level1ReviewRecorded": {
            "reviewed_on": "2026-11-20",
            "outcome": "remain_level_1",
            "reviewers": [POLICE],
            "notes": None,
        },
        "ActionSet": action(),
        "ActionCompleted": completion(),
        "CustodyChanged": {
            "status": "received",
            "establishment": PRISON,
            "expected_release_on": None,
        },
        "AreaTransferred": {"to_area": "leicestershire-rutland", "rationale": "moved"},
        "NominalDeregistered": deregistration(),
        "EntryRetracted": {"retracts": str(uuid.uuid4()), "rationale": "x"},
        # docs/design.md#lifecycles
        "IdentifierAdded": {"kind": "noms", "value": "A1234BC"},
        "IdentifierCorrected": {
            "kind": "crn",
            "from": "X123456",
            "to": "X123457",
            "rationale": "x",
        },
        "PersonalDetailsCorrected": {"gender": "female", "rationale": "x"},
        "AliasAdded": {"alias": {"family": "Smith", "given": ["J"]}},
        "AliasRemoved": {"alias": {"family": "Smith", "given": ["J"]}, "rationale": "x"},
        "AddressRecorded": {
            "kind": "home",
            "lines": ["1 High Street"],
            "postcode": "ME14 1AA",
            "from_date": "2026-11-01",
        },
        "RestrictionVaried": {"restriction": str(uuid.uuid4()), "details": "x", "rationale": "x"},
        "RestrictionEnded": {
            "restriction": str(uuid.uuid4()),
            "ended_on": "2026-11-20",
            "reason": "discharged",
        },
        "AreaTransferRequested": {
            "to_area": "essex",
            "receiving": "mappa:essex",
            "rationale": "x",
            "handover_meeting_on": None,
        },
        "AreaTransferAccepted": {"transfer": str(uuid.uuid4()), "accepted_on": "2026-11-20"},
        "BreachRecorded": {"of": "licence", "occurred_on": "2026-11-20", "action": "warning"},
        "RecallRecorded": {"recalled_on": "2026-11-20", "reason": "x"},
        "FurtherOffenceRecorded": {
            "offence_summary": "x",
            "charged_on": "2026-11-20",
            "outcome": "charged",
            "serious": False,
        },
        "MappaStatusExplained": {
            "explained_on": "2026-11-20",
            "by": POLICE,
            "level_explained": 1,
            "views_sought": True,
        },
        "CriticalCaseRegistered": {"on": "2026-11-20", "rationale": "x"},
        "CriticalCaseEnded": {"on": "2026-11-20", "rationale": "x"},
    }


def test_samples_cover_every_event_type_but_registration_and_reregistration():
    assert set(samples(given())) == set(EVENT_TYPES) - {"NominalRegistered", "NominalReregistered"}


@pytest.mark.parametrize(
    "event_type", sorted(set(EVENT_TYPES) - {"NominalRegistered", "NominalReregistered"})
)
def test_nothing_but_reregistration_is_posted_to_a_deregistered_record(event_type):
    nominal = given(by=POLICE, lead_agency=PROBATION)
    when(nominal, "NominalDeregistered", deregistration())
    with pytest.raises(RecordClosed):
        when(nominal, event_type, samples(nominal)[event_type])
    assert nominal.version == 2
    assert nominal.deregistered


def test_a_deregistered_record_is_reregistered_and_then_takes_events_again():
    nominal = given()
    when(nominal, "NominalDeregistered", deregistration())
    when(nominal, "NominalReregistered", {"rationale": "new conviction"})
    assert not nominal.deregistered
    when(nominal, "EntryRecorded", entry())
    assert nominal.view()["status"] == "active"


def test_an_active_record_is_not_reregistered():
    with pytest.raises(NoChange):
        when(given(), "NominalReregistered", {"rationale": "new conviction"})


def test_an_unknown_event_type_and_a_second_registration_are_refused():
    nominal = given()
    with pytest.raises(InvalidValue):
        when(nominal, "NominalRenamed", {})
    with pytest.raises(InvalidValue):
        when(nominal, "NominalRegistered", registration())


# -- retraction --------------------------------------------------------------------------


def retraction(event_id: str) -> dict[str, Any]:
    return {"retracts": event_id, "rationale": "posted to the wrong record"}


@pytest.mark.parametrize(
    ("event_type", "view_key"),
    [
        ("EntryRecorded", "entries"),
        ("RestrictionRecorded", "restrictions"),
        ("RiskAssessmentRecorded", "risk_assessments"),
    ],
)
def test_a_retraction_hides_the_item_from_the_view_and_keeps_it_retracted(event_type, view_key):
    nominal = given()
    item = when(nominal, event_type, samples(nominal)[event_type])
    assert len(nominal.view()[view_key]) == 1
    when(nominal, "EntryRetracted", retraction(item.event_id))
    assert nominal.view()[view_key] == []
    assert item.event_id in nominal.retracted


def test_only_entries_restrictions_and_risk_assessments_are_retracted():
    nominal = given(level=2)
    held = when(nominal, "MeetingHeld", meeting())
    with pytest.raises(InvariantViolated) as refused:
        when(nominal, "EntryRetracted", retraction(held.event_id))
    assert refused.value.field == "payload.retracts"


def test_a_retraction_names_an_event_of_this_record():
    with pytest.raises(InvariantViolated):
        when(given(), "EntryRetracted", retraction(str(uuid.uuid4())))


def test_an_entry_is_retracted_once():
    nominal = given()
    item = when(nominal, "EntryRecorded", entry())
    when(nominal, "EntryRetracted", retraction(item.event_id))
    with pytest.raises(NoChange):
        when(nominal, "EntryRetracted", retraction(item.event_id))


def test_the_poster_of_an_entry_is_remembered_for_the_access_rule():
    nominal = given(by=POLICE, lead_agency=PROBATION)
    item = when(nominal, "EntryRecorded", entry(), by=PROBATION)
    assert nominal.posted_by(item.event_id) == PROBATION
    assert nominal.posted_by(str(uuid.uuid4())) is None


# -- a refused command changes nothing ---------------------------------------------------


def test_a_refused_command_leaves_the_record_as_it_was():
    nominal = given(category=3, level=2)
    before = nominal.view()
    for event_type, payload in [
        ("LevelChanged", level_change(1)),
        ("LevelChanged", level_change(2)),
        ("AgencyPartnered", partnered(POLICE)),
        ("PartneringEnded", partnered(PROBATION)),
        ("ActionCompleted", completion("nope")),
    ]:
        with pytest.raises(InvariantViolated):
            when(nominal, event_type, payload)
    assert nominal.view() == before
    assert nominal.pending_events[-1].originator_version == 1


# -- the hash chain ----------------------------------------------------------------------


def a_history() -> tuple[Nominal, list[Nominal.Event]]:
    nominal = given(by=POLICE, lead_agency=PROBATION, level=1)
    when(nominal, "AgencyPartnered", partnered(MAPPA))
    when(nominal, "LevelChanged", level_change(2))
    item = when(nominal, "EntryRecorded", entry())
    when(nominal, "MeetingHeld", meeting())
    when(nominal, "ActionSet", action())
    when(nominal, "ActionCompleted", completion())
    when(nominal, "EntryRetracted", retraction(item.event_id), by=MAPPA)
    events = list(nominal.collect_events())
    return nominal, events  # type: ignore[return-value]


def test_the_first_event_chains_from_64_zeros():
    _, events = a_history()
    assert events[0].prev_hash == GENESIS_HASH == "0" * 64


def test_each_event_chains_from_the_hash_of_the_one_before():
    nominal, events = a_history()
    assert [e.originator_version for e in events] == list(range(1, len(events) + 1))
    for before, after in zip(events, events[1:], strict=False):
        assert after.prev_hash == before.hash
    assert nominal.last_hash == events[-1].hash


def test_each_hash_is_sha256_of_prev_hash_and_the_canonical_event():
    _, events = a_history()
    for event in events:
        envelope = event.envelope()
        digest = envelope.pop("hash")
        assert digest == chain_hash(event.prev_hash, envelope)
        assert len(digest) == 64


def test_replaying_the_events_gives_the_same_state_and_hashes():
    nominal, events = a_history()
    replayed = None
    for event in events:
        replayed = event.mutate(replayed)
    assert isinstance(replayed, Nominal)
    assert replayed.view() == nominal.view()
    assert replayed.last_hash == nominal.last_hash
    assert replayed.version == nominal.version == len(events)


def test_the_hash_covers_the_payload():
    nominal, events = a_history()
    event = events[2]
    envelope = event.envelope()
    envelope.pop("hash")
    envelope["payload"] = dict(envelope["payload"], to=3)
    assert chain_hash(event.prev_hash, envelope) != event.hash


def custody(status: str, establishment: str | None = PRISON) -> dict[str, Any]:
    return {"status": status, "establishment": establishment, "expected_release_on": None}


def test_a_transfer_to_the_prison_already_holding_the_person_is_refused():
    nominal = given()
    when(nominal, "CustodyChanged", custody("received", PRISON))
    with pytest.raises(NoChange):
        when(nominal, "CustodyChanged", custody("transferred", PRISON))
    when(nominal, "CustodyChanged", custody("transferred", "prison:BMI"))
    assert nominal.custody["establishment"] == "prison:BMI"
    when(nominal, "CustodyChanged", custody("released", None))
    with pytest.raises(InvariantViolated):
        when(nominal, "CustodyChanged", custody("released", None))


def test_a_record_cannot_start_without_a_responsible_authority_partner():
    from datetime import UTC, datetime
    from uuid import uuid4

    import pytest

    from domain.errors import InvariantViolated
    from domain.nominal import Nominal

    payload = {
        "identifiers": {"crn": "X123456"},
        "name": {"family": "E", "given": []},
        "date_of_birth": "1980-01-01",
        "area": "kent",
        "category": 2,
        "level": 1,
        "lead_agency": None,
    }
    with pytest.raises(InvariantViolated, match="Responsible Authority"):
        Nominal.register(
            nominal_id=uuid4(),
            event_id=str(uuid4()),
            occurred_at="2026-11-20",
            recorded_at=datetime(2026, 11, 20, tzinfo=UTC),
            recorded_by={"sub": "h", "agency": "health:kent-nhs"},
            payload=dict(payload),
        )
    # with a Responsible Authority lead it may start
    nominal = Nominal.register(
        nominal_id=uuid4(),
        event_id=str(uuid4()),
        occurred_at="2026-11-20",
        recorded_at=datetime(2026, 11, 20, tzinfo=UTC),
        recorded_by={"sub": "h", "agency": "health:kent-nhs"},
        payload=payload | {"lead_agency": "probation:kss"},
    )
    assert set(nominal.partners) == {"health:kent-nhs", "probation:kss"}
