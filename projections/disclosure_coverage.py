"""Which disclosure decisions were recorded, and which meetings considered none?

Disclosure considered at each review (000, para 5.23): a gap for each meeting that no
`DisclosureDecisionRecorded` names.
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
    report_filters,
    share,
    summary_and_page,
)

DECISIONS = Table("rm_disclosure_decisions", key=("event_id",), append_only=True)
# Per meeting named by a decision: how many decisions, and how many to disclose.
PER_MEETING = Table("rm_meeting_disclosures", key=("nominal_id", "meeting_id"))


def _decision(b: Batch, e: Any, position: int) -> None:
    p = e.payload
    event_id = UUID(e.event_id)
    b.rows(DECISIONS, e.originator_id)[(event_id,)] = {
        "event_id": event_id,
        "nominal_id": e.originator_id,
        "meeting_id": p.get("meeting_id"),
        "decision": p["decision"],
        "decided_on": day(p["decided_on"]),
    }
    meeting = p.get("meeting_id")
    if meeting:
        counts = b.rows(PER_MEETING, e.originator_id).setdefault(
            (e.originator_id, meeting),
            {"nominal_id": e.originator_id, "meeting_id": meeting, "decisions": 0, "disclosed": 0},
        )
        counts["decisions"] += 1
        counts["disclosed"] += p["decision"] == "disclose"


PROJECTION = Projection(
    name="disclosure_decisions",
    tables=(DECISIONS, PER_MEETING),
    handlers={"DisclosureDecisionRecorded": _decision},
)

# The agency filter means a current partner of the meeting's record.
_CONDITIONS = f"""{report_filters(level="m.level", date="m.held_on")}
      AND (CAST(:agency AS text) IS NULL OR EXISTS (
           SELECT 1 FROM rm_partnerships p WHERE p.nominal_id = m.nominal_id
           AND p.agency = :agency AND p.until IS NULL))
"""  # noqa: S608 - our own fragments; every value is a bound parameter
# Each meeting's decisions are counted as they are recorded (rm_meeting_disclosures,
# migration 0005), so coverage joins one row per meeting, and the rows are a page of
# meetings in held_on order (an index walk, not a sort of every meeting).
_FROM = """
    FROM rm_meetings m JOIN rm_nominals n ON n.nominal_id = m.nominal_id
    LEFT JOIN rm_meeting_disclosures c
        ON c.nominal_id = m.nominal_id AND c.meeting_id = m.meeting_id
"""
_SUMMARY = f"""
    SELECT count(*) AS meetings, count(*) FILTER (WHERE c.decisions IS NULL) AS without_decision,
           coalesce(sum(c.decisions), 0) AS decisions
    {_FROM} WHERE {_CONDITIONS}
"""  # noqa: S608 - our own fragments; every value is a bound parameter
_ROWS = f"""
    SELECT m.nominal_id, m.meeting_id, m.level, m.held_on, n.area,
           coalesce(c.decisions, 0) AS decisions, coalesce(c.disclosed, 0) AS disclosed,
           (c.decisions IS NULL) AS gap
    {_FROM} WHERE {_CONDITIONS}
    ORDER BY m.held_on, m.nominal_id, m.meeting_id
"""  # noqa: S608 - our own fragments; every value is a bound parameter


async def report(conn: AsyncConnection, f: Filters) -> dict[str, Any]:
    """Per meeting: the disclosure decisions naming it; a gap where there are none."""
    s, rows = await summary_and_page(conn, f.params(), summary=_SUMMARY, rows=_ROWS)
    summary = {
        "meetings": s["meetings"],
        "without_decision": s["without_decision"],
        "decisions": int(s["decisions"]),
        "share_covered": share(s["meetings"] - s["without_decision"], s["meetings"]),
    }
    return {"summary": summary, "rows": rows}
