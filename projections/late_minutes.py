"""Which minutes were posted late?

Minutes are due within 10 working days of a level 2 meeting and 5 of a level 3 one
(000, para 5.37). The due date, working days taken and lateness are decided once, by the
domain (`mappa.minutes_timeliness`), when the minutes are recorded, and stored in the
event's payload; this read model keeps them as they were decided.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from projections.base import (
    Batch,
    Filters,
    Projection,
    Table,
    day,
    median,
    report_filters,
    share,
    summary_and_page,
)

MINUTES = Table("rm_minutes", key=("event_id",), append_only=True)


def _minutes(b: Batch, e: Any, position: int) -> None:
    p = e.payload
    event_id = UUID(e.event_id)
    b.rows(MINUTES, e.originator_id)[(event_id,)] = {
        "event_id": event_id,
        "nominal_id": e.originator_id,
        "meeting_id": p["meeting_id"],
        "meeting_date": day(p["meeting_date"]),
        "level": p["level"],
        "posted_by": e.recorded_by["agency"],
        "recorded_at": e.timestamp,
        "due_on": day(p["due_on"]),
        "working_days_taken": p["working_days_taken"],
        "late": p["late"],
    }


PROJECTION = Projection(
    name="minutes",
    tables=(MINUTES,),
    handlers={"MinutesUploaded": _minutes},
)

_WHERE = f"""
    FROM rm_minutes m JOIN rm_nominals n ON n.nominal_id = m.nominal_id
    WHERE {report_filters(level="m.level", date="m.meeting_date", agency="m.posted_by")}
"""


async def report(conn: AsyncConnection, f: Filters) -> dict[str, Any]:
    """Minutes with due date, working days taken and lateness; total, late, share, median."""
    s, rows = await summary_and_page(
        conn,
        f.params(),
        summary="SELECT count(*) AS total, count(*) FILTER (WHERE m.late) AS late,"
        " percentile_cont(0.5) WITHIN GROUP (ORDER BY m.working_days_taken)"
        f" AS median_working_days {_WHERE}",  # noqa: S608
        rows="SELECT m.nominal_id, m.meeting_id, m.meeting_date, m.level, n.area,"
        " m.posted_by AS agency, m.recorded_at, m.due_on, m.working_days_taken, m.late"
        f" {_WHERE} ORDER BY m.meeting_date, m.nominal_id, m.meeting_id",  # noqa: S608
    )
    summary = {
        "total": s["total"],
        "late": s["late"],
        "share_late": share(s["late"], s["total"]),
        "median_working_days": median(s["median_working_days"]),
    }
    return {"summary": summary, "rows": rows}
