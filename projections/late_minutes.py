"""Which minutes were posted late, and which never arrived?

Minutes are due within 10 working days of a level 2 meeting and 5 of a level 3 one
(000, para 5.37). The due date, working days taken and lateness are decided once, by the
domain (`mappa.minutes_timeliness`), when the minutes are recorded, and stored in the
event's payload; this read model keeps them as they were decided. A meeting past its
minutes' due date with none uploaded is counted as `missing` (minutes_outstanding.py lists
them). Minutes count in the area the record was in when they were posted (docs/adr/022).
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
    area_join,
    day,
    fetch_all,
    fetch_one,
    known,
    median,
    plain,
    report_filters,
    share,
    with_area,
)
from projections.minutes_outstanding import outstanding

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
        "version": e.originator_version,
    }


PROJECTION = Projection(
    name="minutes",
    tables=(MINUTES,),
    handlers={"MinutesUploaded": _minutes},
)


def _where(f: Filters) -> str:
    return f"""
        FROM rm_minutes m {area_join(f, "m")}
        WHERE {report_filters(level="m.level", date="m.meeting_date", agency="m.posted_by")}
          AND {known("m.recorded_at")}
    """  # noqa: S608 - our own fragments; every value is a bound parameter


async def report(conn: AsyncConnection, f: Filters) -> dict[str, Any]:
    """Minutes with due date, working days taken and lateness; total, late, share, median,
    and the meetings whose minutes are missing."""
    params = f.params()
    s = await fetch_one(
        conn,
        "SELECT count(*) AS total, count(*) FILTER (WHERE m.late) AS late,"  # noqa: S608
        " percentile_cont(0.5) WITHIN GROUP (ORDER BY m.working_days_taken)"
        f" AS median_working_days {_where(f)}",
        params,
    )
    missing = await fetch_one(
        conn,
        f"SELECT count(*) AS missing FROM ({outstanding(f)}) o",  # noqa: S608
        params,
    )
    page = (
        "SELECT m.nominal_id, m.version, m.meeting_id, m.meeting_date, m.level,"  # noqa: S608
        " m.posted_by AS agency, m.recorded_at, m.due_on, m.working_days_taken, m.late"
        f" {_where(f)} ORDER BY m.meeting_date, m.nominal_id, m.meeting_id, m.version"
        " LIMIT :limit OFFSET :offset"
    )
    rows = await fetch_all(
        conn, with_area(page, "p.meeting_date, p.nominal_id, p.meeting_id, p.version"), params
    )
    total, late, absent = s["total"], s["late"], missing["missing"]
    summary = {
        "total": total,
        "late": late,
        "share_late": share(late, total),
        "median_working_days": median(s["median_working_days"]),
        "missing": absent,
        "share_late_or_missing": share(late + absent, total + absent),
        "as_of": f.today.isoformat(),
    }
    return {"summary": summary, "rows": [plain(r) for r in rows]}
