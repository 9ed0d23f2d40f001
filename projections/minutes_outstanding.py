"""Which meetings' minutes never arrived?

A level 2 or 3 meeting (`MeetingHeld`) with no `MinutesUploaded` for its meeting_id after
its minutes' due date (10 working days for level 2, 5 for level 3, from the day it was held;
000, para 5.37; `mappa.minutes_due_on`, kept on rm_meetings when the meeting is recorded) is
outstanding. As of a past day, only the meetings and minutes recorded by then count: minutes
uploaded late end an outstanding spell on the day they arrive. The meeting counts in the area
the record was in when it was recorded; `agency` is the agency that recorded the meeting.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from projections.base import (
    Filters,
    area_join,
    fetch_all,
    fetch_one,
    known,
    plain,
    report_filters,
    with_area,
)


def outstanding(f: Filters) -> str:
    """SQL: the meetings the filters select whose minutes are overdue and not uploaded."""
    return f"""
        SELECT m.nominal_id, m.version, m.meeting_id, m.level, m.held_on,
               m.posted_by AS agency, m.minutes_due_on AS due_on,
               CAST(:today AS date) - m.minutes_due_on AS days_overdue
        FROM rm_meetings m {area_join(f, "m")}
        WHERE m.minutes_due_on < :today
          AND {known("m.recorded_at")}
          AND {report_filters(level="m.level", date="m.held_on", agency="m.posted_by")}
          AND NOT EXISTS (
              SELECT 1 FROM rm_minutes u
              WHERE u.nominal_id = m.nominal_id AND u.meeting_id = m.meeting_id
                AND {known("u.recorded_at")})
    """  # noqa: S608 - our own fragments; every value is a bound parameter


async def report(conn: AsyncConnection, f: Filters) -> dict[str, Any]:
    """Meetings past their minutes' due date with nothing uploaded, oldest due first."""
    params = f.params()
    s = await fetch_one(
        conn,
        "SELECT count(*) AS outstanding,"  # noqa: S608
        " count(*) FILTER (WHERE o.level = 2) AS level_2,"
        " count(*) FILTER (WHERE o.level = 3) AS level_3,"
        f" max(o.days_overdue) AS most_days_overdue FROM ({outstanding(f)}) o",
        params,
    )
    page = (
        f"SELECT * FROM ({outstanding(f)}) o"  # noqa: S608
        " ORDER BY o.due_on, o.nominal_id, o.meeting_id LIMIT :limit OFFSET :offset"
    )
    rows = await fetch_all(conn, with_area(page, "p.due_on, p.nominal_id, p.meeting_id"), params)
    return {
        "summary": dict(s) | {"as_of": f.today.isoformat()},
        "rows": [plain(r) for r in rows],
    }
