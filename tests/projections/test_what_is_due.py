"""What falls due and what never arrived: the lists a MAPPA coordinator works from (issue 18).

Each test records its events at the instants a user would (the `clock`), so `as_of` sees
exactly the facts recorded by the end of that day, and reads the reports over HTTP filtered
to agencies of its own.
"""

from __future__ import annotations

from tests.projections.conftest import at
from tests.projections.shapes import (
    action,
    completed,
    decision,
    level,
    meeting,
    minutes,
    referral,
    unique,
)

# -- level 1 reviews (000, para 4.9; 004, North Wales) ----------------------------------------


def test_a_case_lowered_to_level_one_is_due_a_review_sixteen_weeks_after_it_fell(
    enrol, post, clock, report
):
    """The bug of issue 18: the level 1 review date was counted from the registration, so a
    level 2 case lowered to level 1 showed overdue at once."""
    lead = unique("probation")
    clock.now = at("2026-01-05T10:00")
    nid = enrol(lead, level=2, category=2, lead_agency=lead, sentence_date=None)
    clock.now = at("2026-11-02T10:00")
    post(lead, nid, "LevelChanged", level(1, "2026-11-02"), occurred_at="2026-11-02")

    after_the_fall = report("reviews-overdue", agency=lead, as_of="2026-11-20")
    on_the_day = report("reviews-overdue", agency=lead, as_of="2027-02-22")
    day_after = report("reviews-overdue", agency=lead, as_of="2027-02-23")

    assert after_the_fall["rows"] == [] and after_the_fall["summary"]["overdue_level_1"] == 0
    assert on_the_day["rows"] == []
    assert [(r["nominal_id"], r["review_due"]) for r in day_after["rows"]] == [(nid, "2027-02-22")]


def test_a_level_lowered_raised_and_lowered_again_counts_from_the_last_fall(
    enrol, post, clock, report
):
    lead = unique("probation")
    clock.now = at("2026-01-05T10:00")
    nid = enrol(lead, level=1, category=2, lead_agency=lead, sentence_date=None)
    for when, to in (("2026-03-02", 2), ("2026-06-01", 1), ("2026-07-01", 2), ("2026-09-01", 1)):
        clock.now = at(f"{when}T10:00")
        post(lead, nid, "LevelChanged", level(to, when), occurred_at=when)

    at_level_2 = report("reviews-overdue", agency=lead, as_of="2026-08-31")
    lowered = report("reviews-overdue", agency=lead, as_of="2026-12-22")
    overdue = report("reviews-overdue", agency=lead, as_of="2026-12-23")

    # At level 2 with no meeting yet: no due date, counted apart (not a level 1 review).
    assert at_level_2["rows"] == [] and at_level_2["summary"]["no_meeting_recorded"] == 1
    assert lowered["rows"] == []
    assert overdue["rows"][0]["review_due"] == "2026-12-22"
    assert overdue["rows"][0]["level1_review_since"] == "2026-09-01"


def test_a_level_one_review_after_the_fall_moves_the_date_on(enrol, post, clock, report):
    lead = unique("probation")
    clock.now = at("2026-01-05T10:00")
    nid = enrol(lead, level=2, category=2, lead_agency=lead, sentence_date=None)
    clock.now = at("2026-03-02T10:00")
    post(lead, nid, "LevelChanged", level(1, "2026-03-02"), occurred_at="2026-03-02")
    clock.now = at("2026-06-15T10:00")
    post(
        lead,
        nid,
        "Level1ReviewRecorded",
        {"reviewed_on": "2026-06-15", "outcome": "remain_level_1", "reviewers": [lead]},
    )

    # 2026-03-02 + 16 weeks = 2026-06-22: the review of 15 June came first.
    assert report("reviews-overdue", agency=lead, as_of="2026-06-23")["rows"] == []
    row = report("reviews-overdue", agency=lead, as_of="2026-10-06")["rows"][0]
    assert row["review_due"] == "2026-10-05" and row["days_overdue"] == 1


# -- minutes that never arrived (000, para 5.37) ----------------------------------------------


def test_minutes_never_uploaded_are_outstanding_after_their_due_date(enrol, post, clock, report):
    """The bug of issue 18: a level 2 meeting whose minutes never came was in no report."""
    mappa = unique("mappa")
    clock.now = at("2026-11-02T16:00")
    nid = enrol(mappa.replace("mappa", "police"), level=2, category=2, sentence_date=None)
    post(mappa.replace("mappa", "police"), nid, "AgencyPartnered", {"agency": mappa, "reason": "c"})
    # A Monday meeting: ten working days later is Monday 16 November.
    post(mappa, nid, "MeetingHeld", meeting("m1", 2, "2026-11-02"), occurred_at="2026-11-02")

    on_the_due_date = report("minutes-outstanding", agency=mappa, as_of="2026-11-16")
    day_after = report("minutes-outstanding", agency=mappa, as_of="2026-11-17")
    late_minutes = report("late-minutes", agency=mappa, as_of="2026-11-17")

    assert on_the_due_date["rows"] == [] and on_the_due_date["summary"]["outstanding"] == 0
    assert day_after["summary"]["outstanding"] == 1
    [row] = day_after["rows"]
    assert (row["nominal_id"], row["meeting_id"], row["level"]) == (nid, "m1", 2)
    assert (row["held_on"], row["due_on"], row["days_overdue"]) == ("2026-11-02", "2026-11-16", 1)
    assert row["area"] == "leicestershire-rutland" and row["agency"] == mappa
    assert late_minutes["summary"]["missing"] == 1 and late_minutes["summary"]["total"] == 0


def test_minutes_uploaded_after_an_outstanding_spell_are_late_not_missing(
    enrol, post, clock, report
):
    mappa = unique("mappa")
    police = mappa.replace("mappa", "police")
    clock.now = at("2026-11-02T16:00")
    nid = enrol(police, level=2, category=2, sentence_date=None)
    post(police, nid, "AgencyPartnered", {"agency": mappa, "reason": "chairs"})
    post(mappa, nid, "MeetingHeld", meeting("m1", 2, "2026-11-02"), occurred_at="2026-11-02")
    clock.now = at("2026-11-20T09:00")
    post(mappa, nid, "MinutesUploaded", minutes("m1", 2, "2026-11-02"), occurred_at="2026-11-20")

    during = report("minutes-outstanding", agency=mappa, as_of="2026-11-19")
    after = report("minutes-outstanding", agency=mappa, as_of="2026-11-20")
    now = report("minutes-outstanding", agency=mappa)
    late_then = report("late-minutes", agency=mappa, as_of="2026-11-19")["summary"]
    late_now = report("late-minutes", agency=mappa)["summary"]

    assert during["summary"]["outstanding"] == 1 and during["rows"][0]["days_overdue"] == 3
    assert after["rows"] == [] and now["rows"] == []
    assert (late_then["total"], late_then["late"], late_then["missing"]) == (0, 0, 1)
    assert (late_now["total"], late_now["late"], late_now["missing"]) == (1, 1, 0)


def test_level_three_minutes_over_christmas_are_due_after_the_substitute_day(
    enrol, post, clock, report
):
    """Christmas 2026 is a Friday, Boxing Day a Saturday: its substitute is Monday 28."""
    mappa = unique("mappa")
    police = mappa.replace("mappa", "police")
    clock.now = at("2026-12-21T16:00")
    nid = enrol(police, level=3, category=2, sentence_date=None)
    post(police, nid, "AgencyPartnered", {"agency": mappa, "reason": "chairs"})
    post(mappa, nid, "MeetingHeld", meeting("m3", 3, "2026-12-21"), occurred_at="2026-12-21")

    assert report("minutes-outstanding", agency=mappa, as_of="2026-12-30")["rows"] == []
    row = report("minutes-outstanding", agency=mappa, as_of="2026-12-31")["rows"][0]
    assert row["due_on"] == "2026-12-30" and row["level"] == 3


# -- what falls due (004, North Wales case administrator) -------------------------------------


def test_due_soon_lists_reviews_minutes_actions_and_referral_decisions_in_the_window(
    enrol, post, clock, report
):
    mappa = unique("mappa")
    police = mappa.replace("mappa", "police")
    lead = mappa.replace("mappa", "probation")
    clock.now = at("2026-11-02T10:00")
    one = enrol(police, level=1, category=1, lead_agency=lead, sentence_date=None)
    two = enrol(police, level=2, category=2, lead_agency=lead, sentence_date=None)
    for nid in (one, two):
        post(police, nid, "AgencyPartnered", {"agency": mappa, "reason": "chairs"})
    # Level 2: a meeting on 2 November; its minutes are due 16 November, the next meeting
    # 22 February. An action due 20 November, another in January; a referral to decide.
    post(mappa, two, "MeetingHeld", meeting("m1", 2, "2026-11-02"), occurred_at="2026-11-02")
    post(mappa, two, "ActionSet", action("a1", police, "2026-11-20", "m1"))
    post(mappa, two, "ActionSet", action("a2", police, "2027-01-20", "m1"))
    post(police, one, "ReferralMade", referral("r1"))

    body = report("due-soon", agency=lead, within_days=28, as_of="2026-11-03")
    by_police = report("due-soon", agency=police, within_days=28, as_of="2026-11-03")
    by_mappa = report("due-soon", agency=mappa, within_days=28, as_of="2026-11-03")

    assert body["summary"]["from"] == "2026-11-03" and body["summary"]["to"] == "2026-12-01"
    # Level 1 record registered 2 November: review due 22 February, outside the window.
    assert body["rows"] == []
    kinds = {(r["kind"], r["nominal_id"], r["due_on"]) for r in by_police["rows"]}
    assert kinds == {("action", two, "2026-11-20"), ("referral_decision", one, "2026-11-12")}
    assert {(r["kind"], r["due_on"]) for r in by_mappa["rows"]} == {("minutes", "2026-11-16")}
    assert by_police["summary"]["by_kind"] == {
        "level_1_review": 0,
        "review": 0,
        "minutes": 0,
        "action": 1,
        "referral_decision": 1,
    }
    later = report("due-soon", agency=lead, within_days=120, as_of="2026-11-03")
    assert {(r["kind"], r["nominal_id"], r["due_on"]) for r in later["rows"]} == {
        ("level_1_review", one, "2027-02-22"),
        ("review", two, "2027-02-22"),
    }


def test_due_soon_drops_what_was_done_and_counts_nothing_already_overdue(
    enrol, post, clock, report
):
    mappa = unique("mappa")
    police = mappa.replace("mappa", "police")
    clock.now = at("2026-11-02T10:00")
    nid = enrol(police, level=2, category=2, sentence_date=None)
    post(police, nid, "AgencyPartnered", {"agency": mappa, "reason": "chairs"})
    post(police, nid, "ActionSet", action("done", police, "2026-11-20"))
    post(police, nid, "ActionSet", action("past", police, "2026-11-01"))
    post(police, nid, "ReferralMade", referral("r1"))
    clock.now = at("2026-11-05T10:00")
    post(police, nid, "ActionCompleted", completed("done", "2026-11-05"))
    post(mappa, nid, "ReferralDecided", decision("r1", "2026-11-05"))

    body = report("due-soon", agency=police, within_days=28, as_of="2026-11-05")
    before = report("due-soon", agency=police, within_days=28, as_of="2026-11-04")

    assert body["rows"] == []
    assert {r["kind"] for r in before["rows"]} == {"action", "referral_decision"}


def test_due_soon_refuses_a_window_it_cannot_mean(client, auth):
    headers = auth("mappa:national", "reports:read")
    for days in ("-1", "367", "soon"):
        r = client.get("/v1/reports/due-soon", params={"within_days": days}, headers=headers)
        assert r.status_code == 422, (days, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["errors"][0]["field"].endswith("within_days")


# -- pre-release work (000, paras 4.11, 6.39; 004, early identification) ----------------------


def test_pre_release_flags_no_referral_at_eight_months_and_no_decision_at_six(
    enrol, post, clock, report
):
    police = unique("police")
    prison = police.replace("police", "prison")
    mappa = police.replace("police", "mappa")
    clock.now = at("2026-11-02T10:00")
    eight = enrol(police, level=1, category=2, sentence_date=None)
    six = enrol(police, level=1, category=2, sentence_date=None)
    far = enrol(police, level=1, category=2, sentence_date=None)
    for nid, release in ((eight, "2027-07-02"), (six, "2027-05-01"), (far, "2027-07-03")):
        post(police, nid, "AgencyPartnered", {"agency": prison, "reason": "holds"})
        post(
            police,
            nid,
            "CustodyChanged",
            {"status": "received", "establishment": prison, "expected_release_on": release},
        )
    post(police, six, "AgencyPartnered", {"agency": mappa, "reason": "coordinates"})
    post(police, six, "ReferralMade", referral("r1", release="2027-05-01"))

    body = report("pre-release", agency=police, as_of="2026-11-02")

    rows = {r["nominal_id"]: r for r in body["rows"]}
    # 2 July 2027 is within eight months of 2 November 2026; 3 July is not.
    assert set(rows) == {eight, six}
    assert rows[eight]["no_referral"] is True and rows[eight]["no_level_decision"] is False
    assert rows[six]["no_referral"] is False and rows[six]["no_level_decision"] is True
    assert rows[six]["prison_not_partnered"] is False and rows[six]["establishment"] == prison
    assert body["summary"]["releasing_within_8_months"] == 2

    clock.now = at("2026-11-09T10:00")
    post(mappa, six, "ReferralDecided", decision("r1", "2026-11-09", "level_2"))
    decided = report("pre-release", agency=police, as_of="2026-11-09")
    before = report("pre-release", agency=police, as_of="2026-11-08")
    # A week on, the release of 3 July is within eight months too.
    assert {r["nominal_id"] for r in decided["rows"]} == {eight, far}
    assert {r["nominal_id"] for r in before["rows"]} == {eight, six, far}


def test_pre_release_flags_a_holding_prison_that_is_not_a_partner(enrol, post, clock, report):
    police = unique("police")
    prison = police.replace("police", "prison")
    clock.now = at("2026-11-02T10:00")
    nid = enrol(police, level=2, category=2, sentence_date=None)
    post(
        police,
        nid,
        "CustodyChanged",
        {"status": "received", "establishment": prison, "expected_release_on": "2027-01-15"},
    )

    row = report("pre-release", agency=police, as_of="2026-11-02")["rows"][0]

    # Managed at level 2 already: neither a referral nor a level decision is wanting.
    assert row["prison_not_partnered"] is True
    assert row["no_referral"] is False and row["no_level_decision"] is False
    # Still in custody the day after the expected release: counted apart, not listed.
    passed = report("pre-release", agency=police, as_of="2027-01-16")
    assert passed["rows"] == [] and passed["summary"]["release_date_passed"] == 1
    assert passed["summary"]["releasing_within_8_months"] == 0
