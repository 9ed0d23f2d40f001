"""Which actions are outstanding, which are overdue, and were they done on time?

Every action accounted for, with its outcome (000, recommendations): outstanding until an
`ActionCompleted` (which always carries an outcome); overdue when still outstanding after
its due date; completed late when its `completed_on` is after its due date, and per agency
the share completed and completed on time (000, paras 5.11 and 6.10). As of a past day an
action counts once it was set, and as completed once its completion was recorded. An action
counts in the area and at the level its record had when it was set (docs/adr/022).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from projections.base import (
    Batch,
    Filters,
    Projection,
    Table,
    area_join,
    day,
    fetch_all,
    known,
    plain,
    report_filters,
    share,
    with_area,
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
        "completed_at": None,
        "version": e.originator_version,
    }


def _completed(b: Batch, e: Any, position: int) -> None:
    row = b.row(ACTIONS, e.originator_id, e.payload["action_id"])
    if row is not None:
        row["completed_on"] = day(e.payload["completed_on"])
        row["completed_at"] = e.timestamp


PROJECTION = Projection(
    name="actions",
    tables=(ACTIONS,),
    handlers={"ActionSet": _set, "ActionCompleted": _completed},
)


def _actions(f: Filters) -> str:
    """Each action the filters select, as it stood at the cutoff."""
    return f"""
        SELECT a.nominal_id, a.version, a.action_id, a.meeting_id, a.assigned_agency, a.due_on,
               CASE WHEN {known("a.completed_at")} THEN a.completed_on END AS completed_on
        FROM rm_actions a {area_join(f, "a", level=True)}
        WHERE {report_filters(level=None, date="a.due_on", agency="a.assigned_agency")}
          AND {known("a.set_at")}
    """  # noqa: S608 - our own fragments; every value is a bound parameter


_COUNTS = """
    count(*) AS actions,
    count(*) FILTER (WHERE completed_on IS NOT NULL) AS completed,
    count(*) FILTER (WHERE completed_on > due_on) AS completed_late,
    count(*) FILTER (WHERE completed_on IS NULL) AS outstanding,
    count(*) FILTER (WHERE completed_on IS NULL AND due_on < :today) AS overdue
"""


def _shares(counts: dict[str, Any]) -> dict[str, Any]:
    on_time = counts["completed"] - counts["completed_late"]
    return counts | {
        "share_completed": share(counts["completed"], counts["actions"]),
        "share_completed_on_time": share(on_time, counts["completed"]),
    }


async def report(conn: AsyncConnection, f: Filters) -> dict[str, Any]:
    """Actions not completed, overdue when past their due date; counts, completed late, and
    per agency the shares completed and completed on time."""
    params = f.params()
    agencies = await fetch_all(
        conn,
        f"SELECT assigned_agency AS agency, {_COUNTS} FROM ({_actions(f)}) a"  # noqa: S608
        " GROUP BY assigned_agency ORDER BY assigned_agency",
        params,
    )
    per_agency = [_shares(dict(r)) for r in agencies]
    totals = {
        k: sum(r[k] for r in per_agency)
        for k in ("actions", "completed", "completed_late", "outstanding", "overdue")
    }
    page = (
        "SELECT a.nominal_id, a.version, a.action_id, a.meeting_id, a.assigned_agency,"  # noqa: S608
        f" a.due_on, (a.due_on < :today) AS overdue FROM ({_actions(f)}) a"
        " WHERE a.completed_on IS NULL"
        " ORDER BY a.due_on, a.nominal_id, a.action_id LIMIT :limit OFFSET :offset"
    )
    rows = await fetch_all(conn, with_area(page, "p.due_on, p.nominal_id, p.action_id"), params)
    summary = _shares(totals) | {"as_of": f.today.isoformat(), "agencies": per_agency}
    return {"summary": summary, "rows": [plain(r) for r in rows]}
