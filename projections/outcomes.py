"""What happened next: breaches, recalls, further and serious further offences.

The outcomes the 2015 inspection asked Strategic Management Boards to be shown (000,
recommendations and para 3.5; 004, standards), counted by the area, category and level the
record had when each was recorded (copied to the row from rm_record_areas, as the event
areas projection keeps it: docs/adr/022): a breach recorded in Kent stays a Kent breach
after the person moves. Dated by the day it happened (`occurred_on`,
`recalled_on`, `charged_on`); `from`/`to` select those days, `agency` the agency that
recorded it; as of a past day only what was recorded by then counts. `by=quarter` gives the
series a board compares.
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
    fetch_all,
    known,
    plain,
    report_filters,
)
from projections.event_areas import RECORD_AREAS

OUTCOMES = Table("rm_outcomes", key=("nominal_id", "version"), append_only=True)
BREACH_ACTIONS = ("warning", "recall", "arrest", "charge", "none")
OFFENCE_OUTCOMES = ("charged", "convicted", "acquitted", "nfa")


def _outcome(kind: str, date_key: str, detail):  # noqa: ANN001, ANN202 - a handler factory
    def handle(b: Batch, e: Any, position: int) -> None:
        p, nid = e.payload, e.originator_id
        # The record's area, category and level when it was recorded, as the event areas
        # projection keeps them (it runs first in each batch, at the same position).
        where = b.row(RECORD_AREAS, nid) or {}
        b.rows(OUTCOMES, nid)[(nid, e.originator_version)] = {
            "nominal_id": nid,
            "version": e.originator_version,
            "kind": kind,
            "detail": detail(p),
            "serious": bool(p.get("serious")),
            "occurred_on": day(p[date_key]),
            "recorded_at": e.timestamp,
            "posted_by": e.recorded_by["agency"],
            "area": where.get("area"),
            "category": where.get("category"),
            "level": where.get("level"),
        }

    return handle


def _breach_detail(p: dict[str, Any]) -> str:
    return p["action"]


PROJECTION = Projection(
    name="outcomes",
    tables=(OUTCOMES,),
    handlers={
        "BreachRecorded": _outcome("breach", "occurred_on", _breach_detail),
        "RecallRecorded": _outcome("recall", "recalled_on", lambda p: None),
        "FurtherOffenceRecorded": _outcome("further_offence", "charged_on", lambda p: p["outcome"]),
    },
    reads=(RECORD_AREAS,),
)

# Each count's name and the condition it counts.
COUNTS: dict[str, str] = {
    "breaches": "o.kind = 'breach'",
    **{f"breaches_{a}": f"o.kind = 'breach' AND o.detail = '{a}'" for a in BREACH_ACTIONS},
    "recalls": "o.kind = 'recall'",
    "further_offences": "o.kind = 'further_offence'",
    "serious_further_offences": "o.kind = 'further_offence' AND o.serious",
    **{
        f"further_offences_{x}": f"o.kind = 'further_offence' AND o.detail = '{x}'"
        for x in OFFENCE_OUTCOMES
    },
}
_COUNTS = ", ".join(f"count(*) FILTER (WHERE {c}) AS {k}" for k, c in COUNTS.items())
_FROM = f"""
    FROM rm_outcomes o
    WHERE {
    report_filters(level="o.level", date="o.occurred_on", agency="o.posted_by", area="o.area")
}
      AND (CAST(:category AS integer) IS NULL OR o.category = :category)
      AND {known("o.recorded_at")}
"""  # noqa: S608 - our own fragments; every value is a bound parameter


async def report(conn: AsyncConnection, f: Filters) -> dict[str, Any]:
    """Outcomes by area, category and level: breaches by action, recalls, further offences
    by outcome and how many were serious; the totals."""
    params = f.params()
    rows = await fetch_all(
        conn,
        f"SELECT o.area, o.category, o.level, {_COUNTS} {_FROM}"  # noqa: S608
        " GROUP BY o.area, o.category, o.level ORDER BY o.area, o.category, o.level",
        params,
    )
    counted = [plain(r) for r in rows]
    totals = {k: sum(r[k] for r in counted) for k in COUNTS}
    summary = totals | {"as_of": f.today.isoformat()}
    return {"summary": summary, "rows": counted[f.offset : f.offset + f.limit]}
