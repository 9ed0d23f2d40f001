"""How the figures stood, and where they belong (issue 18).

- `as_of=D`: the figures as they stood at the end of day D (London), from the events recorded
  by then alone;
- `by=quarter&quarters=N`: the N quarters up to the one holding `as_of` (or today), each as it
  stood at its end;
- every area figure counts an event in the area the record was in when the event was
  recorded (docs/design.md#rules, "where a fact belongs"; docs/adr/022).
"""

from __future__ import annotations

import pytest

from tests.projections.conftest import at
from tests.projections.shapes import action, meeting, minutes, referral, unique

# -- where a fact belongs ---------------------------------------------------------------------


def test_a_move_leaves_past_minutes_actions_and_referrals_in_the_area_that_held_them(
    enrol, post, clock, report
):
    """The bug of issue 18: after an AreaTransferred, a record's past minutes, actions and
    referrals moved to the new area's figures, so an area's last year changed."""
    police = unique("police")
    clock.now = at("2026-02-02T10:00")
    nid = enrol(police, level=2, category=2, area="kent", sentence_date=None)
    post(police, nid, "MeetingHeld", meeting("k1", 2, "2026-02-02", invited=[police]))
    post(police, nid, "MinutesUploaded", minutes("k1", 2, "2026-02-02"))
    post(police, nid, "ActionSet", action("a1", police, "2026-12-31", "k1"))
    post(police, nid, "ReferralMade", referral("r1", level=3))
    clock.now = at("2026-05-04T10:00")
    post(police, nid, "AreaTransferred", {"to_area": "essex", "rationale": "moved house"})
    clock.now = at("2026-05-11T10:00")
    post(police, nid, "MeetingHeld", meeting("e1", 2, "2026-05-11", invited=[police]))
    post(police, nid, "MinutesUploaded", minutes("e1", 2, "2026-05-11"))

    def ids(name: str, area: str, key: str) -> list[str]:
        return [r[key] for r in report(name, agency=police, area=area)["rows"]]

    assert ids("late-minutes", "kent", "meeting_id") == ["k1"]
    assert ids("late-minutes", "essex", "meeting_id") == ["e1"]
    assert ids("actions-outstanding", "kent", "action_id") == ["a1"]
    assert ids("actions-outstanding", "essex", "action_id") == []
    assert ids("referrals", "kent", "referral_id") == ["r1"]
    assert ids("referrals", "essex", "referral_id") == []
    assert report("attendance", agency=police, area="kent")["summary"]["meetings"] == 1
    assert report("attendance", agency=police, area="essex")["summary"]["meetings"] == 1
    # Rows name the area that held the fact, not the area the record is in now.
    [row] = report("late-minutes", agency=police, area="kent")["rows"]
    assert row["area"] == "kent"


def test_a_transfer_mid_quarter_leaves_the_last_quarter_unchanged(enrol, post, clock, report):
    lead = unique("probation")
    clock.now = at("2026-02-02T10:00")
    nid = enrol(lead, level=1, category=1, lead_agency=lead, area="kent", sentence_date=None)
    clock.now = at("2026-03-02T10:00")
    post(lead, nid, "MinutesUploaded", minutes("q1", 2, "2026-02-23"))
    before = report(
        "late-minutes", agency=lead, area="kent", by="quarter", quarters=2, as_of="2026-05-01"
    )
    clock.now = at("2026-05-04T10:00")
    post(lead, nid, "AreaTransferred", {"to_area": "essex", "rationale": "moved house"})

    after = report(
        "late-minutes", agency=lead, area="kent", by="quarter", quarters=2, as_of="2026-05-31"
    )
    profile_kent = report("level-profile", agency=lead, area="kent", as_of="2026-03-31")
    profile_essex = report("level-profile", agency=lead, area="essex", as_of="2026-05-31")

    assert before["series"][0]["summary"] == after["series"][0]["summary"]
    assert after["series"][0]["summary"]["total"] == 1
    assert [p["quarter"] for p in after["series"]] == ["2026-Q1", "2026-Q2"]
    assert profile_kent["total"] == 1 and profile_essex["total"] == 1
    assert report("level-profile", agency=lead, area="kent", as_of="2026-05-31")["total"] == 0


# -- as_of: the day before and the day of an event --------------------------------------------


def test_as_of_counts_what_was_recorded_by_the_end_of_that_london_day(enrol, post, clock, report):
    """The bug of issue 18: no report could say what the figures were at a past date."""
    police = unique("police")
    clock.now = at("2026-09-01T10:00")
    nid = enrol(police, level=2, category=2, sentence_date=None)
    # 23:30 UTC on 30 September is 00:30 on 1 October in London (BST).
    clock.now = at("2026-09-30T23:30")
    post(police, nid, "MinutesUploaded", minutes("m", 2, "2026-09-28"))

    day_before = report("late-minutes", agency=police, as_of="2026-09-30")
    day_of = report("late-minutes", agency=police, as_of="2026-10-01")

    assert day_before["summary"]["total"] == 0 and day_before["rows"] == []
    assert day_of["summary"]["total"] == 1
    assert day_before["summary"]["as_of"] == "2026-09-30"


def test_as_of_sees_an_action_open_before_its_completion_and_done_after(enrol, post, clock, report):
    police = unique("police")
    clock.now = at("2026-10-01T10:00")
    nid = enrol(police, level=2, category=2, sentence_date=None)
    post(police, nid, "ActionSet", action("a", police, "2026-10-10"))
    clock.now = at("2026-10-20T10:00")
    post(
        police,
        nid,
        "ActionCompleted",
        {"action_id": "a", "outcome": "seen", "completed_on": "2026-10-20"},
    )

    open_then = report("actions-outstanding", agency=police, as_of="2026-10-19")
    done = report("actions-outstanding", agency=police, as_of="2026-10-20")

    assert (open_then["summary"]["outstanding"], open_then["summary"]["overdue"]) == (1, 1)
    assert [r["action_id"] for r in open_then["rows"]] == ["a"]
    assert (done["summary"]["completed"], done["summary"]["completed_late"]) == (1, 1)
    assert done["rows"] == []


def test_as_of_sees_a_partner_before_it_left_and_the_gap_it_left(enrol, post, clock, report):
    police = unique("police")
    prison = police.replace("police", "prison")
    clock.now = at("2026-10-01T10:00")
    nid = enrol(police, level=2, category=2, sentence_date=None)
    post(police, nid, "AgencyPartnered", {"agency": prison, "reason": "holds"})
    post(police, nid, "CustodyChanged", {"status": "received", "establishment": prison})
    clock.now = at("2026-10-15T10:00")
    post(police, nid, "PartneringEnded", {"agency": prison, "reason": "in error"})

    then = report("partnering-audit", agency=police, as_of="2026-10-14")["rows"][0]
    later = report("partnering-audit", agency=police, as_of="2026-10-15")["rows"][0]

    assert prison in [p["agency"] for p in then["partners"]] and then["past_partners"] == []
    assert then["prison_not_partnered"] is False
    assert [p["agency"] for p in later["past_partners"]] == [prison]
    assert later["prison_not_partnered"] is True


# -- by quarter ---------------------------------------------------------------------------------


def test_by_quarter_gives_each_quarter_as_it_stood_at_its_end(enrol, post, clock, report):
    police = unique("police")
    clock.now = at("2026-07-01T10:00")
    nid = enrol(police, level=2, category=2, sentence_date=None)
    post(police, nid, "ActionSet", action("q3", police, "2026-08-01"))
    post(police, nid, "ActionSet", action("q4", police, "2026-11-01"))
    clock.now = at("2026-10-05T10:00")
    post(
        police,
        nid,
        "ActionCompleted",
        {"action_id": "q3", "outcome": "x", "completed_on": "2026-10-05"},
    )

    body = report(
        "actions-outstanding", agency=police, by="quarter", quarters=3, as_of="2026-11-15"
    )

    assert [
        (p["quarter"], p["from"], p["to"], p["as_of"], p["complete"]) for p in body["series"]
    ] == [
        ("2026-Q2", "2026-04-01", "2026-06-30", "2026-06-30", True),
        ("2026-Q3", "2026-07-01", "2026-09-30", "2026-09-30", True),
        ("2026-Q4", "2026-10-01", "2026-12-31", "2026-11-15", False),
    ]
    q2, q3, q4 = (p["summary"] for p in body["series"])
    assert q2["actions"] == 0
    # At the end of Q3 the action due in August was still open, and overdue.
    assert (q3["actions"], q3["outstanding"], q3["overdue"], q3["completed"]) == (1, 1, 1, 0)
    assert (q4["actions"], q4["outstanding"], q4["overdue"]) == (1, 1, 1)
    assert body["by"] == "quarter"


def test_by_quarter_level_profile_and_csv(enrol, post, clock, client, auth, runner):
    lead = unique("probation")
    clock.now = at("2026-05-01T10:00")
    enrol(lead, level=1, category=1, lead_agency=lead, sentence_date=None)
    clock.now = at("2026-08-01T10:00")
    enrol(lead, level=2, category=2, lead_agency=lead, sentence_date=None)
    runner.catch_up()

    params = {"agency": lead, "by": "quarter", "quarters": "2", "as_of": "2026-09-30"}
    headers = auth("mappa:national", "reports:read")
    body = client.get("/v1/reports/level-profile", params=params, headers=headers).json()
    csv = client.get(
        "/v1/reports/level-profile", params=params, headers=headers | {"Accept": "text/csv"}
    )

    assert [p["total"] for p in body["series"]] == [1, 2]
    assert csv.status_code == 200 and csv.text.splitlines()[0].startswith("quarter,from,to")
    assert len(csv.text.splitlines()) == 3


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"by": "month"}, "by"),
        ({"by": "quarter", "quarters": "0"}, "quarters"),
        ({"by": "quarter", "quarters": "41"}, "quarters"),
        ({"as_of": "2026-02-30"}, "as_of"),
        ({"quarters": "4"}, "quarters"),
    ],
)
def test_a_series_it_cannot_give_is_refused_as_a_problem(params, field, client, auth):
    r = client.get(
        "/v1/reports/late-minutes", params=params, headers=auth("mappa:national", "reports:read")
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"][0]["field"].endswith(field)
