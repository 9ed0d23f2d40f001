"""Which actions are outstanding, and which are overdue?

Every action accounted for, with its outcome (000, recommendations): outstanding until an
`ActionCompleted` (which always carries an outcome); overdue when still outstanding after
its due date.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection

from mappa_record.domain.nominal import Nominal
from mappa_record.projections.base import Filters, Projection, day, fetch_all, fetch_one, plain


def _set(conn: Connection, e: Nominal.Event, position: int) -> None:
    p = e.payload
    conn.execute(
        text(
            "INSERT INTO rm_actions (nominal_id, action_id, meeting_id, assigned_agency, due_on,"
            " set_at) VALUES (:id, :action, :meeting, :agency, :due_on, :at)"
        ),
        {
            "id": e.originator_id,
            "action": p["action_id"],
            "meeting": p.get("meeting_id"),
            "agency": p["assigned_agency"],
            "due_on": day(p["due_on"]),
            "at": e.timestamp,
        },
    )


def _completed(conn: Connection, e: Nominal.Event, position: int) -> None:
    conn.execute(
        text(
            "UPDATE rm_actions SET completed_on = :completed_on"
            " WHERE nominal_id = :id AND action_id = :action"
        ),
        {
            "id": e.originator_id,
            "action": e.payload["action_id"],
            "completed_on": day(e.payload["completed_on"]),
        },
    )


PROJECTION = Projection(
    name="actions",
    tables=("rm_actions",),
    handlers={"ActionSet": _set, "ActionCompleted": _completed},
)

_WHERE = """
    FROM rm_actions a JOIN rm_nominals n ON n.nominal_id = a.nominal_id
    WHERE (CAST(:area AS text) IS NULL OR n.area = :area)
      AND (CAST(:agency AS text) IS NULL OR a.assigned_agency = :agency)
      AND (CAST(:level AS integer) IS NULL OR n.level = :level)
      AND (CAST(:date_from AS date) IS NULL OR a.due_on >= :date_from)
      AND (CAST(:date_to AS date) IS NULL OR a.due_on <= :date_to)
"""


async def report(conn: AsyncConnection, f: Filters) -> dict[str, Any]:
    """Actions not completed, overdue when past their due date; counts of all three."""
    params = f.params()
    s = await fetch_one(
        conn,
        "SELECT count(*) AS actions,"
        " count(*) FILTER (WHERE a.completed_on IS NOT NULL) AS completed,"
        " count(*) FILTER (WHERE a.completed_on IS NULL) AS outstanding,"
        " count(*) FILTER (WHERE a.completed_on IS NULL AND a.due_on < :today) AS overdue"
        f" {_WHERE}",  # noqa: S608
        params,
    )
    rows = await fetch_all(
        conn,
        "SELECT a.nominal_id, a.action_id, a.meeting_id, n.area, a.assigned_agency,"
        " a.due_on, (a.due_on < :today) AS overdue"
        f" {_WHERE} AND a.completed_on IS NULL"
        " ORDER BY a.due_on, a.nominal_id, a.action_id LIMIT :limit OFFSET :offset",  # noqa: S608
        params,
    )
    return {"summary": dict(s) | {"as_of": f.today.isoformat()}, "rows": [plain(r) for r in rows]}
