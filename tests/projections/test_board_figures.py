"""The figures a Strategic Management Board is judged on (issue 18): outcomes, the profile of
the cases, partners who never record, plans out of date. Each test names its seed paragraph,
records its events at the instants a user would, and reads the reports over HTTP filtered to
agencies of its own."""

from __future__ import annotations

import pytest

from projections.profile import suppressed
from tests.projections.conftest import at
from tests.projections.shapes import meeting, unique

ENTRY = {"entry_type": "contact", "subject": "Home visit", "body": "Seen at home."}
PLAN = {
    "supervision": "weekly",
    "monitoring_and_control": "curfew",
    "interventions_and_treatment": "programme",
    "victim_safety_planning": "exclusion zone",
    "contingency": "recall",
}


# -- outcomes (000, recommendations and para 3.5) -----------------------------------------------


def test_outcomes_count_breaches_recalls_and_offences_where_and_at_what_level_they_happened(
    enrol, post, clock, report
):
    police = unique("police")
    probation = police.replace("police", "probation")
    clock.now = at("2026-02-02T10:00")
    nid = enrol(police, level=2, category=1, area="kent", lead_agency=probation, sentence_date=None)
    breach = {"of": "licence", "occurred_on": "2026-02-01"}
    post(police, nid, "BreachRecorded", breach | {"action": "warning"})
    post(police, nid, "BreachRecorded", breach | {"action": "recall"})
    post(probation, nid, "RecallRecorded", {"recalled_on": "2026-02-02", "reason": "breach"})
    offence = {"offence_summary": "assault", "charged_on": "2026-02-02", "outcome": "charged"}
    post(police, nid, "FurtherOffenceRecorded", offence | {"serious": True})
    clock.now = at("2026-05-04T10:00")
    post(police, nid, "LevelChanged", {"to": 3, "rationale": "r", "decided_on": "2026-05-04"})
    post(police, nid, "AreaTransferred", {"to_area": "essex", "rationale": "moved"})
    post(police, nid, "BreachRecorded", breach | {"occurred_on": "2026-05-04", "action": "arrest"})

    body = report("outcomes", agency=police)
    kent = report("outcomes", agency=police, area="kent")["summary"]
    quarters = report("outcomes", agency=police, by="quarter", quarters=2, as_of="2026-06-30")

    assert [(r["area"], r["category"], r["level"], r["breaches"]) for r in body["rows"]] == [
        ("essex", 1, 3, 1),
        ("kent", 1, 2, 2),
    ]
    assert (kent["breaches"], kent["breaches_warning"], kent["breaches_recall"]) == (2, 1, 1)
    assert (kent["further_offences"], kent["serious_further_offences"]) == (1, 1)
    assert kent["recalls"] == 0  # recorded by probation: `agency` is who recorded it
    assert report("outcomes", agency=probation, area="kent")["summary"]["recalls"] == 1
    assert [p["summary"]["breaches"] for p in quarters["series"]] == [2, 1]
    assert [p["summary"]["breaches_arrest"] for p in quarters["series"]] == [0, 1]


# -- the profile (004, standards: protected characteristics) -----------------------------------


def test_profile_counts_gender_age_band_and_ethnicity_and_hides_small_counts(
    enrol, post, clock, report
):
    lead = unique("probation")
    clock.now = at("2026-06-01T10:00")
    men = [enrol(lead, lead_agency=lead, gender="male", sentence_date=None) for _ in range(8)]
    enrol(lead, lead_agency=lead, gender="Female", sentence_date=None)
    other = enrol(lead, lead_agency=lead, gender="male", sentence_date=None)
    clock.now = at("2026-07-01T10:00")
    post(lead, other, "PersonalDetailsCorrected", {"gender": "Non-binary", "rationale": "r"})
    for nid in men[:5]:
        post(lead, nid, "PersonalDetailsCorrected", {"ethnicity": "white_irish", "rationale": "r"})

    body = report("profile", agency=lead)
    before = report("profile", agency=lead, as_of="2026-06-30")

    def cells(b: dict, dimension: str) -> dict:
        return {c["value"]: c["count"] for c in b["cells"] if c["dimension"] == dimension}

    assert body["summary"]["records"] == 10
    # Gender is counted as male, female or other: the text recorded is never shown.
    assert cells(body, "gender") == {"male": 8, "female": "<5", "other": "<5", "not recorded": 0}
    assert cells(body, "age_band")["40-49"] == 10 and cells(body, "age_band")["18-20"] == 0
    ethnicity = cells(body, "ethnicity")
    assert ethnicity["white_irish"] == 5 and ethnicity["not recorded"] == 5
    assert ethnicity["white_british"] == 0 and len(ethnicity) == 21  # every ONS group listed
    # The day before the corrections: no ethnicity recorded, and nine men and a woman, whose
    # one is hidden, so the nine are too.
    assert cells(before, "ethnicity")["not recorded"] == 10
    assert cells(before, "gender") == {"male": "<5", "female": "<5", "other": 0, "not recorded": 0}


def test_profile_of_fewer_than_five_records_shows_no_count(enrol, clock, report):
    lead = unique("probation")
    clock.now = at("2026-06-01T10:00")
    for _ in range(3):
        enrol(lead, lead_agency=lead, sentence_date=None)

    body = report("profile", agency=lead)

    assert body["summary"]["records"] == "<5"
    assert {c["count"] for c in body["cells"]} == {"<5"}


def test_profile_age_band_counts_from_the_month_of_birth(enrol, clock, report):
    lead = unique("probation")
    clock.now = at("2026-06-01T10:00")
    for born in ["2008-12-15"] * 5:
        enrol(lead, lead_agency=lead, date_of_birth=born, sentence_date=None)

    november = report("profile", agency=lead, as_of="2026-11-30")
    december = report("profile", agency=lead, as_of="2026-12-01")

    def band(body: dict) -> dict:
        return {c["value"]: c["count"] for c in body["cells"] if c["dimension"] == "age_band"}

    # Kept as December 2008: 18 from 1 December 2026 (docs/adr/025).
    assert band(november)["under 18"] == 5 and band(december)["18-20"] == 5


@pytest.mark.parametrize(
    ("counts", "shown"),
    [
        ({"a": 10, "b": 7}, {"a": 10, "b": 7}),
        ({"a": 10, "b": 3, "c": 2}, {"a": 10, "b": "<5", "c": "<5"}),
        ({"a": 10, "b": 6, "c": 2}, {"a": 10, "b": "<5", "c": "<5"}),
        ({"a": 10, "b": 0, "c": 1, "d": 8}, {"a": 10, "b": 0, "c": "<5", "d": "<5"}),
    ],
)
def test_small_cells_are_hidden_and_a_lone_hidden_cell_is_not_left_to_be_worked_out(counts, shown):
    assert suppressed(counts, sum(counts.values())) == shown


# -- partners who never record (000, paras 5.28 and 5.33) ---------------------------------------


def test_a_responsible_authority_partner_silent_for_twelve_months_is_flagged(
    enrol, post, clock, report
):
    police = unique("police")
    prison = police.replace("police", "prison")
    clock.now = at("2025-01-06T10:00")
    nid = enrol(police, level=2, category=2, sentence_date=None)
    post(police, nid, "AgencyPartnered", {"agency": prison, "reason": "holds the person"})
    clock.now = at("2025-03-03T10:00")
    post(police, nid, "EntryRecorded", ENTRY)

    def silent(agency: str, as_of: str) -> list[tuple]:
        rows = report("recording-activity", agency=agency, as_of=as_of)["rows"]
        return [(r["nominal_id"], r["last_posted_on"]) for r in rows]

    # The prison, partnered on 6 January 2025, has posted nothing: silent from 7 January 2026.
    assert silent(prison, "2026-01-06") == []
    assert silent(prison, "2026-01-07") == [(nid, None)]
    # The police posted on 3 March 2025: silent from 4 March 2026.
    assert silent(police, "2026-03-03") == []
    assert silent(police, "2026-03-04") == [(nid, "2025-03-03")]

    clock.now = at("2026-05-01T10:00")
    post(police, nid, "EntryRecorded", ENTRY)

    assert silent(police, "2026-04-30") == [(nid, "2025-03-03")]
    assert silent(police, "2026-05-01") == []
    summary = report("recording-activity", agency=prison, as_of="2026-05-01")["summary"]
    assert (summary["partners"], summary["silent"], summary["never_posted"]) == (1, 1, 1)
    assert summary["silent_prison"] == 1 and summary["silent_police"] == 0


def test_recording_activity_leaves_out_partners_outside_the_responsible_authority(
    enrol, post, clock, report
):
    police = unique("police")
    health = police.replace("police", "health")
    clock.now = at("2025-01-06T10:00")
    nid = enrol(police, level=2, category=2, sentence_date=None)
    post(police, nid, "AgencyPartnered", {"agency": health, "reason": "treatment"})

    assert (
        report("recording-activity", agency=health, as_of="2026-12-01")["summary"]["partners"] == 0
    )


# -- plans out of date (000, paras 4.19, 5.18, 5.20) ---------------------------------------------


def test_a_plan_older_than_the_last_meeting_or_a_new_restriction_is_out_of_date(
    enrol, post, clock, report
):
    police = unique("police")
    clock.now = at("2026-03-02T10:00")
    nid = enrol(police, level=2, category=2, lead_agency=police, sentence_date=None)
    enrol(police, level=2, category=2, lead_agency=police, sentence_date=None)  # no plan
    post(police, nid, "RiskManagementPlanUpdated", PLAN)
    clock.now = at("2026-04-01T16:00")
    post(police, nid, "MeetingHeld", meeting("m1", 2, "2026-04-01"))

    before = report("plans-out-of-date", agency=police, as_of="2026-03-31")
    after = report("plans-out-of-date", agency=police, as_of="2026-04-01")

    assert before["rows"] == [] and before["summary"]["without_plan"] == 1
    [row] = after["rows"]
    assert (row["nominal_id"], row["plan_on"], row["changed_on"], row["days_older"]) == (
        nid,
        "2026-03-02",
        "2026-04-01",
        30,
    )
    assert after["summary"]["after_meeting"] == 1 and after["summary"]["share_out_of_date"] == 1.0

    post(police, nid, "RiskManagementPlanUpdated", PLAN)  # the same day: up to date
    assert report("plans-out-of-date", agency=police, as_of="2026-04-01")["rows"] == []
    clock.now = at("2026-05-04T10:00")
    restriction = {"kind": "SHPO", "details": "no contact", "starts_on": "2026-05-04"}
    post(police, nid, "RestrictionRecorded", restriction)

    summary = report("plans-out-of-date", agency=police, as_of="2026-05-04")["summary"]
    assert (summary["out_of_date"], summary["after_restriction"]) == (1, 1)
