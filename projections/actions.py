"""Which actions are outstanding, and which are overdue?

Every action accounted for, with its outcome (000, recommendations): outstanding until an
`ActionCompleted` (which always carries an outcome); overdue when still outstanding after
its due date.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from projections.base import (
    Batch,
    Filters,
    Projection,
    Table,
    day,
    report_filters,
    summary_and_page,
)

ACTIONS = Table("rm_actions", key=("nominal_id", "action_id"))


def _set(b: Batch, e: Any, position: int) -> None:
    p = e.payload
    b.rows(ACTIONS, e.originator_id)[(e.originator_id, p["action_id"])] = {
        "nominal_id": e.originator_id,
        "action_id": p["action_id"],
        "meeting_id": p.get("meeting_id"),
        "assigned_agency": p["assigned_agency"],
        "due_on": day(p["due_on"]),
        "set_at": e.timestamp,
        "completed_on": None,
    }


def _completed(b: Batch, e: Any, position: int) -> None:
    row = b.row(ACTIONS, e.originator_id, e.payload["action_id"])
    if row is not None:
        row["completed_on"] = day(e.payload["completed_on"])


PROJECTION = Projection(
    name="actions",
    tables=(ACTIONS,),
    handlers={"ActionSet": _set, "ActionCompleted": _completed},
)

_WHERE = f"""
    FROM rm_actions a JOIN rm_nominals n ON n.nominal_id = a.nominal_id
    WHERE {report_filters(level="n.level", date="a.due_on", agency="a.assigned_agency")}
"""


async def report(conn: AsyncConnection, f: Filters) -> dict[str, Any]:
    """Actions not completed, overdue when past their due date; counts of all three."""
    s, rows = await summary_and_page(
        conn,
        f.params(),
        summary="SELECT count(*) AS actions,"
        " count(*) FILTER (WHERE a.completed_on IS NOT NULL) AS completed,"
        " count(*) FILTER (WHERE a.completed_on IS NULL) AS outstanding,"
        " count(*) FILTER (WHERE a.completed_on IS NULL AND a.due_on < :today) AS overdue"
        f" {_WHERE}",  # noqa: S608
        rows="SELECT a.nominal_id, a.action_id, a.meeting_id, n.area, a.assigned_agency,"
        " a.due_on, (a.due_on < :today) AS overdue"
        f" {_WHERE} AND a.completed_on IS NULL"
        " ORDER BY a.due_on, a.nominal_id, a.action_id",  # noqa: S608
    )
    return {"summary": dict(s) | {"as_of": f.today.isoformat()}, "rows": rows}
