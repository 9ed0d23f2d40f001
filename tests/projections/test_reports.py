"""The reports of docs/design.md#api at the edges of each rule of docs/design.md#rules.

Each test writes through the service with a set clock (recorded_at), lets the runner
catch up, and reads the report over HTTP filtered to an agency of its own, so the counts
are exactly its own records'.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime

import pytest

from tests.conftest import NOTHING, registration

REPORTS = [
    "late-minutes",
    "partnering-audit",
    "reviews-overdue",
    "actions-outstanding",
    "disclosure-coverage",
    "attendance",
    "registration-timeliness",
    "referrals",
    "level-profile",
]


def unique(kind: str) -> str:
    return f"{kind}:t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def report(client, auth, runner):
    def get(name: str, **params):
        runner.catch_up()
        r = client.get(
            f"/v1/reports/{name}", params=params, headers=auth("mappa:national", "reports:read")
        )
        assert r.status_code == 200, r.text
        return r.json()

    return get


def meeting(meeting_id: str, level: int, held_on: str, invited=(), attended=(), apologies=()):
    return {
        "meeting_id": meeting_id,
        "level": level,
        "held_on": held_on,
        "chair": "Chair",
        "invited": list(invited),
        "attended": [{"agency": a, "name": "N", "role": "R"} for a in attended],
        "apologies": list(apologies),
    }


def minutes(meeting_id: str, level: int, meeting_date: str):
    return {
        "meeting_id": meeting_id,
        "meeting_date": meeting_date,
        "level": level,
        "document": {
            "sha256": "a" * 64,
            "filename": "m.pdf",
            "media_type": "application/pdf",
            "size": 10,
        },
    }


# -- late minutes (000, para 5.37) ---------------------------------------------------------


def test_minutes_on_the_due_date_are_on_time_and_the_day_after_late(enrol, post, clock, report):
    police = unique("police")
    nid = enrol(police, level=2, category=2)
    clock.now = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)  # due date of a 19 Nov level 2 meeting
    post(police, nid, "MinutesUploaded", minutes("on-time", 2, "2026-11-19"))
    clock.now = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    post(police, nid, "MinutesUploaded", minutes("late", 2, "2026-11-19"))

    body = report("late-minutes", agency=police)

    rows = {r["meeting_id"]: r for r in body["rows"]}
    assert rows["on-time"]["due_on"] == "2026-12-03"
    assert rows["on-time"]["working_days_taken"] == 10 and rows["on-time"]["late"] is False
    assert rows["late"]["working_days_taken"] == 11 and rows["late"]["late"] is True
    assert body["summary"] == {
        "total": 2,
        "late": 1,
        "share_late": 0.5,
        "median_working_days": 10.5,
    }


def test_level_three_minutes_of_a_meeting_before_easter_skip_good_friday_and_easter_monday(
    enrol, post, clock, report
):
    police = unique("police")
    nid = enrol(police, level=3, category=2)
    clock.now = datetime(2026, 4, 13, 12, 0, tzinfo=UTC)
    post(police, nid, "MinutesUploaded", minutes("easter", 3, "2026-04-02"))

    row = report("late-minutes", agency=police)["rows"][0]

    assert row["due_on"] == "2026-04-13" and row["late"] is False and row["working_days_taken"] == 5


def test_minutes_across_christmas_and_new_year_skip_the_substitute_days(enrol, post, clock, report):
    police = unique("police")
    nid = enrol(police, level=2, category=2)
    # 25-26 Dec 2027 and 1 Jan 2028 fall at weekends: substitutes on 27, 28 Dec and 3 Jan.
    clock.now = datetime(2028, 1, 12, 12, 0, tzinfo=UTC)
    post(police, nid, "MinutesUploaded", minutes("christmas", 2, "2027-12-23"))

    row = report("late-minutes", agency=police)["rows"][0]

    assert row["due_on"] == "2028-01-11" and row["late"] is True and row["working_days_taken"] == 11


def test_level_two_and_level_three_minutes_of_the_same_day_have_different_due_dates(
    enrol, post, clock, report
):
    police = unique("police")
    nid = enrol(police, level=3, category=2)
    clock.now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    post(police, nid, "MinutesUploaded", minutes("l2", 2, "2026-11-19"))
    post(police, nid, "MinutesUploaded", minutes("l3", 3, "2026-11-19"))

    rows = {r["meeting_id"]: r for r in report("late-minutes", agency=police)["rows"]}
    only_l3 = report("late-minutes", agency=police, level=3)

    assert rows["l2"]["due_on"] == "2026-12-03" and rows["l2"]["late"] is False
    assert rows["l3"]["due_on"] == "2026-11-26" and rows["l3"]["late"] is True
    assert [r["meeting_id"] for r in only_l3["rows"]] == ["l3"]


def test_late_minutes_filter_on_meeting_dates(enrol, post, clock, report):
    police = unique("police")
    nid = enrol(police, level=2, category=2)
    clock.now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    post(police, nid, "MinutesUploaded", minutes("a", 2, "2026-11-02"))
    post(police, nid, "MinutesUploaded", minutes("b", 2, "2026-11-19"))

    body = report("late-minutes", agency=police, **{"from": "2026-11-10", "to": "2026-11-30"})

    assert [r["meeting_id"] for r in body["rows"]] == ["b"]


# -- reviews (000, para 5.1; 4.9) ----------------------------------------------------------


def test_level_two_review_due_at_exactly_sixteen_weeks(enrol, post, report):
    lead = unique("probation")
    nid = enrol(lead, level=2, category=2, lead_agency=lead)
    post(lead, nid, "MeetingHeld", meeting("m", 2, "2026-07-01"))

    on_the_day = report("reviews-overdue", agency=lead, as_of="2026-10-21")
    day_after = report("reviews-overdue", agency=lead, as_of="2026-10-22")

    assert on_the_day["summary"]["overdue"] == 0 and on_the_day["rows"] == []
    assert day_after["summary"]["overdue_levels_2_and_3"] == 1
    assert day_after["rows"][0]["review_due"] == "2026-10-21"
    assert day_after["rows"][0]["days_overdue"] == 1 and day_after["rows"][0]["nominal_id"] == nid


def test_level_three_review_due_at_exactly_eight_weeks(enrol, post, report):
    lead = unique("probation")
    nid = enrol(lead, level=3, category=2, lead_agency=lead)
    post(lead, nid, "MeetingHeld", meeting("m", 3, "2026-07-01"))

    assert report("reviews-overdue", agency=lead, as_of="2026-08-26")["rows"] == []
    assert (
        report("reviews-overdue", agency=lead, as_of="2026-08-27")["rows"][0]["review_due"]
        == "2026-08-26"
    )


def test_a_level_change_moves_the_review_to_the_new_interval(enrol, post, report):
    lead = unique("probation")
    nid = enrol(lead, level=2, category=2, lead_agency=lead)
    post(lead, nid, "MeetingHeld", meeting("m", 2, "2026-07-01"))
    post(
        lead, nid, "LevelChanged", {"to": 3, "rationale": "escalating", "decided_on": "2026-07-02"}
    )

    assert report("reviews-overdue", agency=lead, as_of="2026-08-27")["rows"][0]["level"] == 3


def test_level_one_review_due_sixteen_weeks_after_registration_then_after_the_last_review(
    enrol, post, clock, report
):
    lead = unique("probation")
    clock.now = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    nid = enrol(lead, level=1, category=1, lead_agency=lead)

    assert report("reviews-overdue", agency=lead, as_of="2026-10-21")["rows"] == []
    assert (
        report("reviews-overdue", agency=lead, as_of="2026-10-22")["summary"]["overdue_level_1"]
        == 1
    )

    post(
        lead,
        nid,
        "Level1ReviewRecorded",
        {"reviewed_on": "2026-10-01", "outcome": "remain_level_1", "reviewers": [lead]},
    )
    assert report("reviews-overdue", agency=lead, as_of="2027-01-21")["rows"] == []
    assert (
        report("reviews-overdue", agency=lead, as_of="2027-01-22")["rows"][0]["review_due"]
        == "2027-01-21"
    )


# -- registration (000, para 4.1) ----------------------------------------------------------


def test_registration_on_day_three_after_sentence_is_on_time_and_day_four_late(
    enrol, clock, report
):
    police = unique("police")
    clock.now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    on_time = enrol(police, sentence_date="2026-11-17")
    late = enrol(police, sentence_date="2026-11-16")
    unknown = enrol(police, sentence_date=None)

    body = report("registration-timeliness", agency=police)

    rows = {r["nominal_id"]: r for r in body["rows"]}
    assert rows[on_time]["days_after_sentence"] == 3 and rows[on_time]["late"] is False
    assert rows[late]["days_after_sentence"] == 4 and rows[late]["late"] is True
    assert rows[unknown]["late"] is None
    assert body["summary"]["registrations"] == 3 and body["summary"]["with_sentence_date"] == 2
    assert body["summary"]["late"] == 1 and body["summary"]["share_late"] == 0.5


# -- partnering (000, paras 5.35, 4.15, recommendations, 5.29) ------------------------------


def test_a_prison_partnered_after_the_person_was_received_closes_the_gap(
    enrol, post, clock, report
):
    police = unique("police")
    prison = unique("prison")
    nid = enrol(police, level=2, category=2)
    post(police, nid, "CustodyChanged", {"status": "received", "establishment": prison})

    before = report("partnering-audit", agency=police)
    clock.now = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    post(police, nid, "AgencyPartnered", {"agency": prison, "reason": "holds the person"})
    after = report("partnering-audit", agency=police)

    assert before["rows"][0]["prison_not_partnered"] is True
    assert before["summary"]["prison_not_partnered"] == 1
    assert after["rows"][0]["prison_not_partnered"] is False
    partner = next(p for p in after["rows"][0]["partners"] if p["agency"] == prison)
    assert partner == {"agency": prison, "since": "2026-11-21T09:00:00.000000Z", "by": police}


def test_a_lead_agency_later_partnered_and_made_lead_closes_the_gap(enrol, post, report):
    police = unique("police")
    probation = unique("probation")
    nid = enrol(police, lead_agency=None)
    assert report("partnering-audit", agency=police)["rows"][0]["no_lead_agency"] is True

    post(police, nid, "AgencyPartnered", {"agency": probation, "reason": "supervises"})
    post(police, nid, "LeadAgencyChanged", {"agency": probation, "rationale": "supervises"})

    row = report("partnering-audit", agency=police)["rows"][0]
    assert row["no_lead_agency"] is False and row["lead_agency"] == probation


def test_past_partners_police_offender_manager_and_level_mismatch(enrol, post, report):
    police = unique("police")
    other = unique("police")
    nid = enrol(police, level=2, category=2)
    post(police, nid, "AgencyPartnered", {"agency": other, "reason": "moved"})
    post(police, nid, "PartneringEnded", {"agency": other, "reason": "moved back"})
    post(police, nid, "MeetingHeld", meeting("m", 3, "2026-11-19"))
    row = report("partnering-audit", agency=police)["rows"][0]
    assert row["no_police_offender_manager"] is True and row["level_mismatch"] is True
    assert [p["agency"] for p in row["past_partners"]] == [other]
    assert row["past_partners"][0]["ended_by"] == police

    post(
        police,
        nid,
        "OfficerAssigned",
        {
            "agency": police,
            "officer": {"name": "DC A", "role": "OM", "contact": "a@example.org"},
            "supervisor": {"name": "DS B", "contact": "b@example.org"},
        },
    )
    post(
        police,
        nid,
        "LevelChanged",
        {"to": 3, "rationale": "as managed", "decided_on": "2026-11-19"},
    )
    row = report("partnering-audit", agency=police)["rows"][0]
    assert row["no_police_offender_manager"] is False and row["level_mismatch"] is False


# -- disclosure, actions, attendance, referrals, profile ------------------------------------


def test_a_meeting_with_no_disclosure_decision_is_a_gap(enrol, post, report):
    mappa = unique("mappa")
    police = unique("police")
    nid = enrol(police, level=2, category=2)
    post(police, nid, "AgencyPartnered", {"agency": mappa, "reason": "chairs"})
    post(mappa, nid, "MeetingHeld", meeting("covered", 2, "2026-11-10"))
    post(mappa, nid, "MeetingHeld", meeting("gap", 2, "2026-11-19"))
    post(
        mappa,
        nid,
        "DisclosureDecisionRecorded",
        {
            "meeting_id": "covered",
            "decision": "disclose",
            "recipient": "the school",
            "rationale": "safeguarding",
            "decided_on": "2026-11-10",
        },
    )

    body = report("disclosure-coverage", agency=mappa)

    rows = {r["meeting_id"]: r for r in body["rows"]}
    assert rows["gap"]["gap"] is True and rows["covered"]["gap"] is False
    assert rows["covered"]["disclosed"] == 1
    assert body["summary"] == {
        "meetings": 2,
        "without_decision": 1,
        "decisions": 1,
        "share_covered": 0.5,
    }


def test_actions_outstanding_overdue_and_completed(enrol, post, report):
    police = unique("police")
    nid = enrol(police, level=2, category=2)
    for action_id, due in (("done", "2026-11-01"), ("open", "2026-12-01"), ("over", "2026-11-15")):
        post(
            police,
            nid,
            "ActionSet",
            {
                "action_id": action_id,
                "description": "check address",
                "assigned_agency": police,
                "due_on": due,
            },
        )
    post(
        police,
        nid,
        "ActionCompleted",
        {"action_id": "done", "outcome": "address verified", "completed_on": "2026-10-30"},
    )

    body = report("actions-outstanding", agency=police, as_of="2026-11-20")

    assert body["summary"] == {
        "actions": 3,
        "completed": 1,
        "outstanding": 2,
        "overdue": 1,
        "as_of": "2026-11-20",
    }
    assert [(r["action_id"], r["overdue"]) for r in body["rows"]] == [
        ("over", True),
        ("open", False),
    ]


def test_attendance_per_agency_invited_attended_apologies_absent(enrol, post, report):
    police, probation, health = unique("police"), unique("probation"), unique("health")
    nid = enrol(police, level=2, category=2)
    post(
        police,
        nid,
        "MeetingHeld",
        meeting(
            "m",
            2,
            "2026-11-19",
            invited=[police, probation, health],
            attended=[police],
            apologies=[probation],
        ),
    )

    rows = {r["agency"]: r for r in report("attendance", agency=health)["rows"]}
    rows |= {r["agency"]: r for r in report("attendance", agency=probation)["rows"]}

    assert rows[health] == {
        "agency": health,
        "invited": 1,
        "attended": 0,
        "apologies": 0,
        "absent": 1,
        "share_attended": 0.0,
    }
    assert rows[probation]["apologies"] == 1 and rows[probation]["absent"] == 0


def referral(referral_id: str, release: str | None = None) -> dict:
    body = {
        "referral_id": referral_id,
        "requested_level": 2,
        "reasons": "needs a multi-agency plan",
        "rosh_level": "high",
        "imminence": "within weeks",
        "agencies_to_invite": [{"agency": "health:trust", "why": "treatment"}],
    }
    if release:
        body["expected_release_on"] = release
    return body


def test_referrals_answered_on_day_ten_on_time_day_eleven_late_and_undecided(
    enrol, post, clock, report
):
    police = unique("police")
    mappa = unique("mappa")
    nid = enrol(police, level=1, category=2)
    post(police, nid, "AgencyPartnered", {"agency": mappa, "reason": "coordinates"})
    clock.now = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    for rid in ("ten", "eleven", "open"):
        post(police, nid, "ReferralMade", referral(rid))
    for rid, on in (("ten", "2026-11-11"), ("eleven", "2026-11-12")):
        post(
            mappa,
            nid,
            "ReferralDecided",
            {"referral_id": rid, "decision": "level_2", "feedback": "accepted", "decided_on": on},
        )

    early = report("referrals", agency=police, as_of="2026-11-11")
    later = report("referrals", agency=police, as_of="2026-11-12")

    assert {r["referral_id"]: r["answered_late"] for r in early["rows"]} == {
        "ten": False,
        "eleven": True,
        "open": False,
    }
    assert {r["referral_id"]: r["answered_late"] for r in later["rows"]}["open"] is True
    assert later["summary"]["answered_late"] == 2 and later["summary"]["undecided"] == 1


def test_referrals_from_custody_six_months_before_release(enrol, post, clock, report):
    police = unique("police")
    nid = enrol(police, level=1, category=2)
    clock.now = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    post(police, nid, "ReferralMade", referral("exact", release="2027-05-01"))
    post(police, nid, "ReferralMade", referral("short", release="2027-04-30"))

    body = report("referrals", agency=police)

    assert {r["referral_id"]: r["custody_late"] for r in body["rows"]} == {
        "exact": False,
        "short": True,
    }
    assert body["summary"]["from_custody"] == 2 and body["summary"]["from_custody_late"] == 1


def test_level_profile_counts_active_records_by_category_and_level(enrol, post, report):
    lead = unique("probation")
    enrol(lead, category=1, level=1, lead_agency=lead)
    enrol(lead, category=3, level=2, lead_agency=lead)
    gone = enrol(lead, category=2, level=3, lead_agency=lead)
    post(lead, gone, "NominalDeregistered", {"rationale": "died"})

    body = report("level-profile", agency=lead)

    counts = {(c["category"], c["level"]): c["count"] for c in body["cells"]}
    assert len(body["cells"]) == 12 and body["total"] == 2
    assert counts[(1, 1)] == 1 and counts[(3, 2)] == 1 and counts[(2, 3)] == 0


# -- the API's edges ------------------------------------------------------------------------


def test_csv_download_has_a_header_and_a_row_per_record(enrol, post, clock, client, auth, runner):
    police = unique("police")
    nid = enrol(police, level=2, category=2)
    post(police, nid, "MinutesUploaded", minutes("m", 2, "2026-11-19"))
    runner.catch_up()

    r = client.get(
        "/v1/reports/late-minutes",
        params={"agency": police},
        headers=auth("mappa:national", "reports:read", Accept="text/csv"),
    )

    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 1 and rows[0]["nominal_id"] == nid and rows[0]["late"] == "False"


@pytest.mark.parametrize("name", REPORTS)
def test_reports_need_the_reports_scope(name, client, auth, footprint):
    mark = footprint.mark()
    assert (
        client.get(f"/v1/reports/{name}", headers=auth("police:kent", "records:read")).status_code
        == 403
    )
    assert client.get(f"/v1/reports/{name}").status_code == 401
    assert footprint.since(mark) == NOTHING


def test_a_bad_filter_is_a_validation_problem(client, auth):
    r = client.get(
        "/v1/reports/late-minutes",
        params={"area": "atlantis"},
        headers=auth("mappa:national", "reports:read"),
    )
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"


def test_reports_carry_no_names_or_identifiers_of_people(client, auth, writer, report, post):
    from tests.projections.conftest import principal

    police = unique("police")
    body = registration(name={"family": "Zzyzxfamily", "given": ["Qqgiven"]}, level=2, category=2)
    body["identifiers"]["noms"] = "A9876ZZ"
    event_id = uuid.UUID(body.pop("event_id"))
    nid = writer.records.register(principal(police), event_id, None, body).nominal_id
    post(police, nid, "MeetingHeld", meeting("m", 2, "2026-11-19", invited=[police]))
    post(police, nid, "MinutesUploaded", minutes("m", 2, "2026-11-19"))
    post(police, nid, "ReferralMade", referral("r"))
    post(
        police,
        nid,
        "ActionSet",
        {"action_id": "a", "description": "x", "assigned_agency": police, "due_on": "2026-12-01"},
    )

    for name in REPORTS:
        text = str(report(name, agency=police))
        assert nid in text or name not in ("late-minutes", "partnering-audit", "referrals")
        for secret in (
            "Zzyzxfamily",
            "Qqgiven",
            body["identifiers"]["pnc"],
            "A9876ZZ",
            body["identifiers"]["crn"],
            "1980-02-01",
        ):
            assert secret not in text, (name, secret)


def test_read_your_writes_the_view_shows_a_post_at_once(client, auth, register):
    from tests.conftest import event

    nid = register("police:kent")
    r = client.post(
        f"/v1/nominals/{nid}/events",
        headers=auth("police:kent"),
        json=event(
            "LevelChanged", {"to": 2, "rationale": "escalating", "decided_on": "2026-11-20"}
        ),
    )
    assert r.status_code == 201
    view = client.get(f"/v1/nominals/{nid}", headers=auth("police:kent")).json()
    assert view["level"] == 2 and view["version"] == r.json()["version"]


def test_metrics_show_each_projection_position_and_lag(client, runner):
    runner.catch_up()
    text = client.get("/metrics").text
    head = runner.head()
    for s in runner.status():
        assert f'mappa_projection_position{{projection="{s.name}"}}' in text
        assert f'mappa_projection_lag_events{{projection="{s.name}"}}' in text
    assert f"mappa_event_store_head {float(head)}" in text


def test_attendance_agrees_whichever_query_answers_it(enrol, post, report):
    """With no area, level or date filter the report reads rm_attendance alone; with one it
    joins the meetings and layer. A filter that leaves nothing out must change nothing."""
    police, health = unique("police"), unique("health")
    nid = enrol(police, level=2, category=2)
    post(police, nid, "MeetingHeld", meeting("m1", 2, "2026-11-19", [police, health], [police]))
    post(police, nid, "MeetingHeld", meeting("m2", 2, "2026-11-20", [health], apologies=[health]))

    national = report("attendance", agency=health)
    joined = report("attendance", agency=health, **{"from": "2000-01-01"})

    expected = {"agency": health, "invited": 2, "attended": 0, "apologies": 1, "absent": 1}
    assert national["rows"] == joined["rows"] == [expected | {"share_attended": 0.0}]
    assert joined["summary"]["invited"] == national["summary"]["invited"] == 2


def test_disclosure_coverage_counts_each_meeting_decisions_once(enrol, post, report):
    mappa, police = unique("mappa"), unique("police")
    nid = enrol(police, level=2, category=2)
    post(police, nid, "AgencyPartnered", {"agency": mappa, "reason": "chairs"})
    post(mappa, nid, "MeetingHeld", meeting("a", 2, "2026-11-18"))
    post(mappa, nid, "MeetingHeld", meeting("b", 2, "2026-11-19"))
    for decision in ("disclose", "do_not_disclose"):
        post(
            mappa,
            nid,
            "DisclosureDecisionRecorded",
            {
                "meeting_id": "a",
                "decision": decision,
                "recipient": "the employer" if decision == "disclose" else None,
                "rationale": "the risk to the employer's staff",
                "decided_on": "2026-11-18",
            },
        )

    body = report("disclosure-coverage", agency=mappa)

    assert body["summary"] == {
        "meetings": 2,
        "without_decision": 1,
        "decisions": 2,
        "share_covered": 0.5,
    }
    assert [(r["meeting_id"], r["decisions"], r["disclosed"], r["gap"]) for r in body["rows"]] == [
        ("a", 2, 1, False),
        ("b", 0, 0, True),
    ]
