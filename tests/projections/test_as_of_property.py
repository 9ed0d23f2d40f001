"""For random histories, every report as of a day T equals the same report on a store that
holds only the events recorded by the end of T (issue 18: "as_of=T equals the report computed
from only the events recorded up to T").

Two worlds: the session's database, where the whole history is posted and the report is
asked `as_of=T` (the read models' history: the rows that stood at T); and a database of its
own, where only the events recorded by the end of T (London) are posted, with the same ids
and instants, and the report is asked with `today=T` and no cutoff (the read models as they
stand). Every report, its summary and its rows, for each agency of the history and by area.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.routes.reports import reports_engine_for
from domain.calendar import end_of_london_day, london_date
from domain.errors import DomainError
from projections import (
    actions,
    attendance,
    disclosure_coverage,
    due_soon,
    late_minutes,
    level_profile,
    minutes_outstanding,
    outcomes,
    partnering_audit,
    plans_out_of_date,
    pre_release,
    profile,
    recording_activity,
    referrals,
    registration_timeliness,
    review_schedule,
)
from projections.base import Filters
from projections.runner import ProjectionRunner
from service.access import Forbidden, NotFound
from service.bootstrap import Application
from service.records import NewEvent
from service.runtime.database import open_database
from service.runtime.settings import Settings
from service.store.migrate import migrate
from tests.conftest import _database_on, registration
from tests.projections.conftest import Clock, principal
from tests.projections.test_fold_property import unique_pnc

REPORTS = {
    "late-minutes": late_minutes.report,
    "minutes-outstanding": minutes_outstanding.report,
    "partnering-audit": partnering_audit.report,
    "reviews-overdue": review_schedule.report,
    "due-soon": due_soon.report,
    "actions-outstanding": actions.report,
    "disclosure-coverage": disclosure_coverage.report,
    "attendance": attendance.report,
    "registration-timeliness": registration_timeliness.report,
    "referrals": referrals.report,
    "pre-release": pre_release.report,
    "recording-activity": recording_activity.report,
    "plans-out-of-date": plans_out_of_date.report,
    "outcomes": outcomes.report,
    "level-profile": level_profile.report,
    "profile": profile.report,
}
START = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
MEETINGS = ["m1", "m2"]
IDS = ["x1"]  # one action, one referral: their later events find them


@dataclass
class World:
    records: Application
    runner: ProjectionRunner
    clock: Clock
    db: Any


@pytest.fixture(scope="session")
def truncated(database_url: str, data_dir) -> Iterator[World]:
    """A database of its own for the events recorded by T, with its service and runner."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    url = _database_on(database_url, f"{make_url(database_url).database}_as_of")
    s = Settings(
        database_url=url,
        data_dir=data_dir,
        jwt_issuer="mappa-record-test",
        jwt_audience="mappa-record",
        dev_tokens=True,
        pool_size=4,
    )
    db = open_database(s)
    migrate(db)
    clock = Clock()
    app = Application.build(s, db, clock=clock)
    store = app.ledger.app
    engine = create_engine(db.sqlalchemy_url("psycopg"), pool_size=2, max_overflow=0)
    runner = ProjectionRunner(engine, store.recorder, store.mapper)
    yield World(app, runner, clock, db)
    runner.engine.dispose()
    app.close()


@st.composite
def histories(draw):
    """Two records and up to 25 events over about eight months, each at an instant."""
    steps = []
    for _ in range(draw(st.integers(1, 25))):
        kind = draw(
            st.sampled_from(
                [
                    "MeetingHeld",
                    "MinutesUploaded",
                    "ActionSet",
                    "ActionCompleted",
                    "ReferralMade",
                    "ReferralDecided",
                    "LevelChanged",
                    "AreaTransferred",
                    "CustodyChanged",
                    "AgencyPartnered",
                    "PartneringEnded",
                    "RiskManagementPlanUpdated",
                    "RestrictionRecorded",
                    "BreachRecorded",
                    "Level1ReviewRecorded",
                    "DisclosureDecisionRecorded",
                    "EntryRecorded",
                    "PersonalDetailsCorrected",
                ]
            )
        )
        steps.append(
            {
                "record": draw(st.integers(0, 1)),
                "kind": kind,
                "after": timedelta(days=draw(st.integers(0, 20)), hours=draw(st.integers(0, 23))),
                "meeting": draw(st.sampled_from(MEETINGS)),
                "id": draw(st.sampled_from(IDS)),
                "level": draw(st.integers(1, 3)),
                "area": draw(st.sampled_from(["kent", "essex"])),
                "flag": draw(st.booleans()),
                "days": draw(st.integers(-30, 60)),
                "poster": draw(st.sampled_from(["police", "mappa", "probation"])),
            }
        )
    return {
        "levels": [draw(st.integers(1, 3)), draw(st.integers(1, 2))],
        "steps": steps,
        "t": draw(st.integers(0, 240)),
    }


def _payload(step: dict[str, Any], when: datetime, a: dict[str, str]) -> dict[str, Any]:
    today = london_date(when)
    on = (today + timedelta(days=step["days"])).isoformat()
    past = min(today, today + timedelta(days=step["days"])).isoformat()
    level = max(step["level"], 2)
    return {
        "MeetingHeld": {
            "meeting_id": step["meeting"],
            "level": level,
            "held_on": past,
            "chair": "C",
            "invited": [a["police"], a["health"]] if step["flag"] else [a["police"]],
            "attended": [{"agency": a["police"], "name": "N", "role": "R"}],
        },
        "MinutesUploaded": {
            "meeting_id": step["meeting"],
            "meeting_date": past,
            "level": level,
            "document": {
                "sha256": "c" * 64,
                "filename": "m.pdf",
                "media_type": "application/pdf",
                "size": 1,
            },
        },
        "ActionSet": {
            "action_id": step["id"],
            "description": "d",
            "assigned_agency": a["police"],
            "due_on": on,
        },
        "ActionCompleted": {"action_id": step["id"], "outcome": "done", "completed_on": past},
        "ReferralMade": {
            "referral_id": step["id"],
            "requested_level": level,
            "reasons": "r",
            "rosh_level": "high",
            "imminence": "soon",
            "agencies_to_invite": [{"agency": a["health"], "why": "w"}],
        },
        "ReferralDecided": {
            "referral_id": step["id"],
            "decision": "level_1" if step["flag"] else "level_2",
            "feedback": "f",
            "decided_on": past,
        },
        "LevelChanged": {"to": step["level"], "rationale": "r", "decided_on": past},
        "AreaTransferred": {"to_area": step["area"], "rationale": "r"},
        "CustodyChanged": (
            {"status": "received", "establishment": a["prison"], "expected_release_on": on}
            if step["flag"]
            else {"status": "released"}
        ),
        "AgencyPartnered": {"agency": a["prison"], "reason": "holds"},
        "PartneringEnded": {"agency": a["prison"], "reason": "released"},
        "RiskManagementPlanUpdated": {
            k: "x"
            for k in (
                "supervision",
                "monitoring_and_control",
                "interventions_and_treatment",
                "victim_safety_planning",
                "contingency",
            )
        },
        "RestrictionRecorded": {"kind": "other", "details": "d", "starts_on": past},
        "BreachRecorded": {"of": "licence", "occurred_on": past, "action": "warning"},
        "Level1ReviewRecorded": {
            "reviewed_on": past,
            "outcome": "remain_level_1",
            "reviewers": [a["police"]],
        },
        "DisclosureDecisionRecorded": {
            "meeting_id": step["meeting"],
            "decision": "defer",
            "rationale": "r",
            "decided_on": past,
        },
        "EntryRecorded": {"entry_type": "contact", "subject": "s", "body": "b"},
        "PersonalDetailsCorrected": {
            "ethnicity": "white_irish" if step["flag"] else "not_stated",
            "rationale": "r",
        },
    }[step["kind"]]


def _post(world: Application, clock: Clock, when: datetime, poster: str, nid, event) -> None:
    clock.now = when
    # A refused event is not stored, in either world: each refuses the same from the same past.
    with contextlib.suppress(DomainError, Forbidden, NotFound):
        world.records.post_event(principal(poster), nid, event, None)


def _register(app: Application, clock: Clock, when: datetime, police: str, body: dict):
    clock.now = when
    body = dict(body)
    event_id = uuid.UUID(body.pop("event_id"))
    return uuid.UUID(app.records.register(principal(police), event_id, None, body).nominal_id)


async def _reports(db, filters: list[Filters]) -> list[dict[str, Any]]:
    engine = reports_engine_for(db)
    try:
        async with engine.connect() as conn:
            return [{n: await q(conn, f) for n, q in REPORTS.items()} for f in filters]
    finally:
        await engine.dispose()


@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories())
def test_every_report_as_of_a_day_equals_the_report_of_the_events_recorded_by_then(
    history, writer, clock, runner, db, truncated
):
    tag = uuid.uuid4().hex[:10]
    a = {k: f"{k}:p-{tag}" for k in ("police", "mappa", "probation", "prison", "health")}
    # The history: two records, then the steps, each at its instant.
    when, plan = START, []
    for i, level in enumerate(history["levels"]):
        body = registration(
            level=level,
            category=2,
            area="kent",
            lead_agency=a["probation"],
            sentence_date=None,
            identifiers={"pnc": unique_pnc()},
        )
        plan.append(("register", when, a["police"], body))
        plan.append(
            (
                "post",
                when,
                a["police"],
                (i, "AgencyPartnered", {"agency": a["mappa"], "reason": "c"}),
            )
        )
    for step in history["steps"]:
        when += step["after"]
        poster = a[step["poster"]]
        if step["kind"] == "CustodyChanged":
            poster = a["police"]
        plan.append(("post", when, poster, (step["record"], step["kind"], _payload(step, when, a))))
    # T falls within the history, its place drawn (from its first day to its last).
    t = START.date() + timedelta(days=history["t"] * (when - START).days // 240)
    cutoff = end_of_london_day(t)

    ids: list[uuid.UUID] = []
    event_ids = [uuid.uuid4() for _ in plan]
    for world, world_clock, keep in (
        (writer, clock, lambda w: True),
        (truncated.records, truncated.clock, lambda w: w < cutoff),
    ):
        nominal_ids: list[uuid.UUID] = []
        for (what, at, poster, body), event_id in zip(plan, event_ids, strict=True):
            if not keep(at):
                break
            if what == "register":
                nominal_ids.append(
                    _register(world, world_clock, at, poster, body | {"event_id": str(event_id)})
                )
                continue
            record, kind, payload = body
            if record < len(nominal_ids):
                event = NewEvent(event_id, kind, london_date(at).isoformat(), payload)
                _post(world, world_clock, at, poster, nominal_ids[record], event)
        ids = ids or nominal_ids

    runner.catch_up()
    truncated.runner.catch_up()

    variants = [{"agency": agency} for agency in a.values()]
    variants += [{"agency": a["police"], "area": area} for area in ("kent", "essex")]
    variants += [{"agency": a["probation"], "level": level} for level in (1, 2, 3)]
    as_of = [Filters(today=t, cutoff=cutoff, **v) for v in variants]
    now = [Filters(today=t, cutoff=None, **v) for v in variants]
    whole = asyncio.run(_reports(db, as_of))
    by_then = asyncio.run(_reports(truncated.db, now))

    for variant, seen, expected in zip(variants, whole, by_then, strict=True):
        for name in REPORTS:
            assert seen[name] == expected[name], (name, variant, t.isoformat())
