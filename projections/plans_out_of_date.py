"""Which risk management plans are out of date?

A plan is out of date when it is older than the last meeting held, the last change of level
or the last new restriction (000, paras 4.19, 5.18, 5.20: "the RMP was insufficiently
updated even when there had been notable change"). The plan's date is the London day it was
last updated (`RiskManagementPlanUpdated` recorded); a meeting's is the day it was held, a
level change's its `decided_on`, a restriction's the day it was recorded. A record with no
plan is counted apart (`without_plan`). The dates are a history (`base.supersede`), so the
report as of a past day reads the plan and the changes known then; a record counts in the
area it was in then, `agency` is its lead agency.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from domain.calendar import london_date
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
    share,
    supersede,
)
from projections.current_view import nominals_as_it_stood

PLANS = Table("rm_plans", key=("nominal_id",))
PLANS_PAST = Table("rm_plans_past", key=("nominal_id", "since_position"), append_only=True)
TRACKED = ("plan_on", "meeting_on", "level_changed_on", "restriction_on")


def _later(a: Any, b: Any) -> Any:
    return max((d for d in (a, b) if d is not None), default=None)


def _registered(b: Batch, e: Any, position: int) -> None:
    b.rows(PLANS, e.originator_id)[(e.originator_id,)] = {
        "nominal_id": e.originator_id,
        "since": e.timestamp,
        "since_position": position,
    } | dict.fromkeys(TRACKED)


def _on(column: str, when):  # noqa: ANN001, ANN202 - a handler factory
    def handle(b: Batch, e: Any, position: int) -> None:
        row = b.row(PLANS, e.originator_id)
        if row is not None:
            value = _later(row[column], when(e))
            supersede(b, PLANS, PLANS_PAST, e, position, TRACKED, {column: value})

    return handle


PROJECTION = Projection(
    name="plans",
    tables=(PLANS, PLANS_PAST),
    handlers={
        "NominalRegistered": _registered,
        "RiskManagementPlanUpdated": _on("plan_on", lambda e: london_date(e.timestamp)),
        "MeetingHeld": _on("meeting_on", lambda e: day(e.payload["held_on"])),
        "LevelChanged": _on("level_changed_on", lambda e: day(e.payload["decided_on"])),
        "RestrictionRecorded": _on("restriction_on", lambda e: london_date(e.timestamp)),
    },
)

_CHANGED_ON = "greatest(p.meeting_on, p.level_changed_on, p.restriction_on)"


# Filters of a report of records as they stand: the record's area, level, category, lead.
_RECORD_FILTERS = report_filters(
    area="n.area", level="n.level", category="n.category", date=None, agency="n.lead_agency"
)


def _plans(f: Filters) -> str:
    return f"""
    SELECT p.nominal_id, n.area, n.category, n.level, n.lead_agency AS agency, p.plan_on,
           p.meeting_on, p.level_changed_on, p.restriction_on,
           {_CHANGED_ON} AS changed_on,
           (p.plan_on IS NOT NULL AND p.plan_on < {_CHANGED_ON}) AS out_of_date
    FROM ({as_it_stood(PLANS, PLANS_PAST, "nominal_id, " + ", ".join(TRACKED), f)}) p
    JOIN ({nominals_as_it_stood(f)}) n ON n.nominal_id = p.nominal_id
    WHERE n.status = 'active'
      AND {_RECORD_FILTERS}
"""  # noqa: S608 - our own fragments; every value is a bound parameter


async def report(conn: AsyncConnection, f: Filters) -> dict[str, Any]:
    """Plans older than the last meeting, level change or new restriction; the oldest first."""
    params = f.params()
    s = await fetch_one(
        conn,
        "SELECT count(*) AS records,"  # noqa: S608
        " count(*) FILTER (WHERE plan_on IS NOT NULL) AS with_plan,"
        " count(*) FILTER (WHERE plan_on IS NULL) AS without_plan,"
        " count(*) FILTER (WHERE out_of_date) AS out_of_date,"
        " count(*) FILTER (WHERE out_of_date AND changed_on = meeting_on) AS after_meeting,"
        " count(*) FILTER (WHERE out_of_date AND changed_on = level_changed_on)"
        "   AS after_level_change,"
        " count(*) FILTER (WHERE out_of_date AND changed_on = restriction_on)"
        f"   AS after_restriction FROM ({_plans(f)}) p",
        params,
    )
    rows = await fetch_all(
        conn,
        f"WITH p AS {cte(f)} ({_plans(f)})"  # noqa: S608
        " SELECT p.nominal_id, p.area, p.level, p.agency, p.plan_on, p.meeting_on,"
        " p.level_changed_on, p.restriction_on, p.changed_on,"
        " p.changed_on - p.plan_on AS days_older FROM p WHERE p.out_of_date"
        " ORDER BY p.plan_on, p.nominal_id LIMIT :limit OFFSET :offset",
        params,
    )
    summary = dict(s) | {
        "share_out_of_date": share(s["out_of_date"], s["with_plan"]),
        "as_of": f.today.isoformat(),
    }
    return {"summary": summary, "rows": [plain(r) for r in rows]}
