"""Which disclosure decisions were recorded, and which meetings considered none?

Disclosure considered at each review (000, para 5.23): a gap for each meeting that no
`DisclosureDecisionRecorded` names.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from mappa_record.projections.base import (
    Batch,
    Filters,
    Projection,
    Table,
    day,
    fetch_all,
    fetch_one,
    plain,
    share,
)

DECISIONS = Table("rm_disclosure_decisions", key=("event_id",), append_only=True)


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


PROJECTION = Projection(
    name="disclosure_decisions",
    tables=(DECISIONS,),
    handlers={"DisclosureDecisionRecorded": _decision},
)

_COVERAGE = """
    SELECT m.nominal_id, m.meeting_id, m.level, m.held_on, n.area,
           count(d.event_id) AS decisions,
           count(d.event_id) FILTER (WHERE d.decision = 'disclose') AS disclosed,
           (count(d.event_id) = 0) AS gap
    FROM rm_meetings m JOIN rm_nominals n ON n.nominal_id = m.nominal_id
    LEFT JOIN rm_disclosure_decisions d
        ON d.nominal_id = m.nominal_id AND d.meeting_id = m.meeting_id
    WHERE (CAST(:area AS text) IS NULL OR n.area = :area)
      AND (CAST(:level AS integer) IS NULL OR m.level = :level)
      AND (CAST(:date_from AS date) IS NULL OR m.held_on >= :date_from)
      AND (CAST(:date_to AS date) IS NULL OR m.held_on <= :date_to)
      AND (CAST(:agency AS text) IS NULL OR EXISTS (
           SELECT 1 FROM rm_partnerships p WHERE p.nominal_id = m.nominal_id
           AND p.agency = :agency AND p.until IS NULL))
    GROUP BY m.nominal_id, m.meeting_id, m.level, m.held_on, n.area
"""


async def report(conn: AsyncConnection, f: Filters) -> dict[str, Any]:
    """Per meeting: the disclosure decisions naming it; a gap where there are none."""
    params = f.params()
    s = await fetch_one(
        conn,
        "SELECT count(*) AS meetings, count(*) FILTER (WHERE gap) AS without_decision,"  # noqa: S608
        f" coalesce(sum(decisions), 0) AS decisions FROM ({_COVERAGE}) c",  # noqa: S608
        params,
    )
    rows = await fetch_all(
        conn,
        f"SELECT * FROM ({_COVERAGE}) c"  # noqa: S608
        " ORDER BY c.held_on, c.nominal_id, c.meeting_id LIMIT :limit OFFSET :offset",  # noqa: S608
        params,
    )
    summary = {
        "meetings": s["meetings"],
        "without_decision": s["without_decision"],
        "decisions": int(s["decisions"]),
        "share_covered": share(s["meetings"] - s["without_decision"], s["meetings"]),
    }
    return {"summary": summary, "rows": [plain(r) for r in rows]}
