"""Which meetings were held, and who was invited, attended, sent apologies or was absent?

Required against actual attendance, per agency (000, para 5.4 and 3.3): absent means
invited, not attending and sending no apologies.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from mappa_record.projections.base import (
    Batch,
    Filters,
    Projection,
    Table,
    day,
    fetch_all,
    plain,
    report_filters,
    share,
)

MEETINGS = Table("rm_meetings", key=("nominal_id", "meeting_id"))
ATTENDANCE = Table("rm_attendance", key=("nominal_id", "meeting_id", "agency"), append_only=True)


def _meeting(b: Batch, e: Any, position: int) -> None:
    p = e.payload
    nid, meeting = e.originator_id, p["meeting_id"]
    b.rows(MEETINGS, nid)[(nid, meeting)] = {
        "nominal_id": nid,
        "meeting_id": meeting,
        "level": p["level"],
        "held_on": day(p["held_on"]),
        "recorded_at": e.timestamp,
        "position": position,
    }
    invited = set(p.get("invited") or [])
    attended = {a["agency"] for a in p.get("attended") or []}
    apologies = set(p.get("apologies") or [])
    rows = b.rows(ATTENDANCE, nid)
    for agency in sorted(invited | attended | apologies):
        rows[(nid, meeting, agency)] = {
            "nominal_id": nid,
            "meeting_id": meeting,
            "agency": agency,
            "invited": agency in invited,
            "attended": agency in attended,
            "apologies": agency in apologies,
        }


PROJECTION = Projection(
    name="meetings",
    tables=(MEETINGS, ATTENDANCE),
    handlers={"MeetingHeld": _meeting},
)

_MEETINGS = f"""
    FROM rm_meetings m JOIN rm_nominals n ON n.nominal_id = m.nominal_id
    WHERE {report_filters(level="m.level", date="m.held_on")}
"""


async def report(conn: AsyncConnection, f: Filters) -> dict[str, Any]:
    """Per agency: meetings invited to, attended, apologies and absences."""
    rows = await fetch_all(
        conn,
        "SELECT a.agency, count(*) FILTER (WHERE a.invited) AS invited,"
        " count(*) FILTER (WHERE a.attended) AS attended,"
        " count(*) FILTER (WHERE a.apologies) AS apologies,"
        " count(*) FILTER (WHERE a.invited AND NOT a.attended AND NOT a.apologies)"
        "   AS absent"
        " FROM rm_attendance a JOIN rm_meetings m"
        "   ON m.nominal_id = a.nominal_id AND m.meeting_id = a.meeting_id"
        " JOIN rm_nominals n ON n.nominal_id = m.nominal_id"
        " WHERE (CAST(:area AS text) IS NULL OR n.area = :area)"
        "   AND (CAST(:level AS integer) IS NULL OR m.level = :level)"
        "   AND (CAST(:date_from AS date) IS NULL OR m.held_on >= :date_from)"
        "   AND (CAST(:date_to AS date) IS NULL OR m.held_on <= :date_to)"
        "   AND (CAST(:agency AS text) IS NULL OR a.agency = :agency)"
        " GROUP BY a.agency ORDER BY a.agency LIMIT :limit OFFSET :offset",  # noqa: S608
        f.params(),
    )
    meetings = (
        await conn.execute(text(f"SELECT count(*) {_MEETINGS}"), f.params())  # noqa: S608
    ).scalar_one()
    out = [plain(r) | {"share_attended": share(r["attended"], r["invited"])} for r in rows]
    invited = sum(r["invited"] for r in rows)
    attended = sum(r["attended"] for r in rows)
    summary = {
        "meetings": meetings,
        "invited": invited,
        "attended": attended,
        "apologies": sum(r["apologies"] for r in rows),
        "absent": sum(r["absent"] for r in rows),
        "share_attended": share(attended, invited),
    }
    return {"summary": summary, "rows": out}
