"""Which disclosure decisions were recorded, and which meetings considered none?

Disclosure considered at each review (000, para 5.23): a gap for each meeting that no
`DisclosureDecisionRecorded` names. As of a past day, only the meetings and decisions
recorded by then count; a meeting counts in the area its record was in when it was recorded
(docs/adr/022).
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
    partner_at_cutoff,
    plain,
    report_filters,
    share,
    with_area,
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
        "recorded_at": e.timestamp,
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


def _decisions(f: Filters) -> str:
    # Each meeting's decisions are counted as they are recorded (rm_meeting_disclosures,
    # migration 0005), so coverage joins one row per meeting; as of a past day they are
    # counted from the decisions recorded by then.
    if f.cutoff is None:
        return "rm_meeting_disclosures"
    return """(
        SELECT nominal_id, meeting_id, count(*) AS decisions,
               count(*) FILTER (WHERE decision = 'disclose') AS disclosed
        FROM rm_disclosure_decisions
        WHERE meeting_id IS NOT NULL AND recorded_at < :cutoff
        GROUP BY nominal_id, meeting_id)"""


def _meetings(f: Filters) -> str:
    """SQL: the meetings the filters select, with their decisions as they stood."""
    return f"""
        SELECT m.nominal_id, m.version, m.meeting_id, m.level, m.held_on,
               coalesce(c.decisions, 0) AS decisions, coalesce(c.disclosed, 0) AS disclosed,
               (c.decisions IS NULL) AS gap
        FROM rm_meetings m {area_join(f, "m")}
        LEFT JOIN {_decisions(f)} c ON c.nominal_id = m.nominal_id AND c.meeting_id = m.meeting_id
        WHERE {report_filters(level="m.level", date="m.held_on")}
          AND {known("m.recorded_at")} AND {partner_at_cutoff("m.nominal_id")}
    """  # noqa: S608 - our own fragments; every value is a bound parameter


async def report(conn: AsyncConnection, f: Filters) -> dict[str, Any]:
    """Per meeting: the disclosure decisions naming it; a gap where there are none."""
    params = f.params()
    s = await fetch_one(
        conn,
        "SELECT count(*) AS meetings, count(*) FILTER (WHERE gap) AS without_decision,"  # noqa: S608
        f" coalesce(sum(decisions), 0) AS decisions FROM ({_meetings(f)}) m",
        params,
    )
    # A page of meetings in held_on order (an index walk, not a sort of every meeting).
    page = (
        f"SELECT * FROM ({_meetings(f)}) m"  # noqa: S608
        " ORDER BY m.held_on, m.nominal_id, m.meeting_id LIMIT :limit OFFSET :offset"
    )
    rows = await fetch_all(conn, with_area(page, "p.held_on, p.nominal_id, p.meeting_id"), params)
    summary = {
        "meetings": s["meetings"],
        "without_decision": s["without_decision"],
        "decisions": int(s["decisions"]),
        "share_covered": share(s["meetings"] - s["without_decision"], s["meetings"]),
        "as_of": f.today.isoformat(),
    }
    return {"summary": summary, "rows": [plain(r) for r in rows]}
