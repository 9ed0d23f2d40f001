"""When is each record's next review due, and which are overdue, now or on a past day?

- levels 2 and 3: the next meeting is due 16 / 8 weeks after the last meeting's held_on
  (000, para 5.1; `mappa.next_review_due`), at the level the record is managed at now;
  a level 2 or 3 record with no meeting yet has no due date and is counted apart;
- level 1: a review is due 16 weeks after the latest of the registration, the last
  `Level1ReviewRecorded` and the day the level fell to 1 (the `decided_on` of the
  `LevelChanged` that lowered it) (000, para 4.9; 004, North Wales;
  `mappa.level1_review_due`; docs/design.md#rules, as amended by issue 18).
Overdue when today is after the due date.

The schedule is a history (`base.supersede`): each change keeps the row it replaced in
`rm_review_schedule_past`, so the report as of a past day reads the schedule that stood then.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from domain.calendar import london_date
from domain.mappa import Level, level1_review_due, next_review_due
from projections.base import (
    Batch,
    Filters,
    Projection,
    Table,
    as_it_stood,
    cte,
    day,
    fetch_all,
    fetch_one,
    plain,
    report_filters,
    supersede,
)
from projections.current_view import nominals_as_it_stood

SCHEDULE = Table("rm_review_schedule", key=("nominal_id",))
SCHEDULE_PAST = Table(
    "rm_review_schedule_past", key=("nominal_id", "since_position"), append_only=True
)
TRACKED = ("level", "last_meeting_on", "level1_since", "review_due")


def review_due(level: int, last_meeting_on: date | None, level1_since: date) -> date | None:
    """The date the record's next review is due, by the rules above."""
    if level == Level.ONE:
        return level1_review_due(level1_since)
    if last_meeting_on is None:
        return None
    return next_review_due(last_meeting_on, Level(level))


def _later(a: date | None, b: date | None) -> date | None:
    """SQL's greatest(): the later date, NULLs ignored."""
    return max((d for d in (a, b) if d is not None), default=None)


def _registered(b: Batch, e: Any, position: int) -> None:
    level, since = e.payload["level"], london_date(e.timestamp)
    b.rows(SCHEDULE, e.originator_id)[(e.originator_id,)] = {
        "nominal_id": e.originator_id,
        "level": level,
        "last_meeting_on": None,
        "level1_since": since,
        "review_due": review_due(level, None, since),
        "since": e.timestamp,
        "since_position": position,
    }


def _update(change):  # noqa: ANN001, ANN202 - a handler factory
    def handle(b: Batch, e: Any, position: int) -> None:
        row = b.row(SCHEDULE, e.originator_id)
        if row is None:
            return
        values = {k: row[k] for k in TRACKED} | change(row, e.payload)
        values["review_due"] = review_due(
            values["level"], values["last_meeting_on"], values["level1_since"]
        )
        supersede(b, SCHEDULE, SCHEDULE_PAST, e, position, TRACKED, values)

    return handle


def _level(row: dict[str, Any], p: dict[str, Any]) -> dict[str, Any]:
    if p["to"] == Level.ONE and row["level"] != Level.ONE:
        # The day the level fell to 1 starts the 16 weeks, unless a later day already has.
        return {"level": p["to"], "level1_since": _later(row["level1_since"], day(p["decided_on"]))}
    return {"level": p["to"]}


def _meeting(row: dict[str, Any], p: dict[str, Any]) -> dict[str, Any]:
    return {"last_meeting_on": _later(row["last_meeting_on"], day(p["held_on"]))}


def _level1_review(row: dict[str, Any], p: dict[str, Any]) -> dict[str, Any]:
    return {"level1_since": _later(row["level1_since"], day(p["reviewed_on"]))}


PROJECTION = Projection(
    name="review_schedule",
    tables=(SCHEDULE, SCHEDULE_PAST),
    handlers={
        "NominalRegistered": _registered,
        "LevelChanged": _update(_level),
        "MeetingHeld": _update(_meeting),
        "Level1ReviewRecorded": _update(_level1_review),
    },
)


# Filters of a report of records as they stand: the record's area, level, category, lead.
_RECORD_FILTERS = report_filters(
    area="n.area", level="r.level", category="n.category", date=None, agency="n.lead_agency"
)


def schedule_as_it_stood(f: Filters) -> str:
    """SQL: each active record's schedule and state as they stood at the cutoff (now,
    without one), as the filters select them."""
    return f"""
        SELECT r.nominal_id, n.area, r.level, n.lead_agency, r.last_meeting_on,
               r.level1_since, r.review_due
        FROM ({as_it_stood(SCHEDULE, SCHEDULE_PAST, "nominal_id, " + ", ".join(TRACKED), f)}) r
        JOIN ({nominals_as_it_stood(f)}) n ON n.nominal_id = r.nominal_id
        WHERE n.status = 'active'
          AND {_RECORD_FILTERS}
    """  # noqa: S608 - our own fragments; every value is a bound parameter


async def report(conn: AsyncConnection, f: Filters) -> dict[str, Any]:
    """Records whose review is overdue today (levels 2 and 3, and level 1 reviews)."""
    params = f.params()
    s = await fetch_one(
        conn,
        "SELECT count(*) AS records,"  # noqa: S608
        " count(*) FILTER (WHERE r.review_due < :today) AS overdue,"
        " count(*) FILTER (WHERE r.level >= 2 AND r.review_due < :today)"
        "   AS overdue_levels_2_and_3,"
        " count(*) FILTER (WHERE r.level = 1 AND r.review_due < :today)"
        "   AS overdue_level_1,"
        " count(*) FILTER (WHERE r.level >= 2 AND r.last_meeting_on IS NULL)"
        f"   AS no_meeting_recorded FROM ({schedule_as_it_stood(f)}) r",
        params,
    )
    rows = await fetch_all(
        conn,
        f"WITH r AS {cte(f)} ({schedule_as_it_stood(f)})"  # noqa: S608
        " SELECT r.nominal_id, r.area, r.level, r.lead_agency, r.last_meeting_on,"
        " CASE WHEN r.level = 1 THEN r.level1_since END AS level1_review_since,"
        " r.review_due, :today - r.review_due AS days_overdue"
        " FROM r WHERE r.review_due < :today"
        " ORDER BY r.review_due, r.nominal_id LIMIT :limit OFFSET :offset",
        params,
    )
    return {"summary": dict(s) | {"as_of": f.today.isoformat()}, "rows": [plain(r) for r in rows]}
