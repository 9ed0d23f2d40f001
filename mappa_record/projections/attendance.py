"""Which meetings were held, and who was invited, attended, sent apologies or was absent?

Required against actual attendance, per agency (000, para 5.4 and 3.3): absent means
invited, not attending and sending no apologies.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection

from mappa_record.domain.nominal import Nominal
from mappa_record.projections.base import (
    Filters,
    Projection,
    day,
    fetch_all,
    plain,
    share,
)


def _meeting(conn: Connection, e: Nominal.Event, position: int) -> None:
    p = e.payload
    conn.execute(
        text(
            "INSERT INTO rm_meetings (nominal_id, meeting_id, level, held_on, recorded_at,"
            " position) VALUES (:id, :meeting, :level, :held_on, :at, :position)"
        ),
        {
            "id": e.originator_id,
            "meeting": p["meeting_id"],
            "level": p["level"],
            "held_on": day(p["held_on"]),
            "at": e.timestamp,
            "position": position,
        },
    )
    invited = set(p.get("invited") or [])
    attended = {a["agency"] for a in p.get("attended") or []}
    apologies = set(p.get("apologies") or [])
    rows = [
        {
            "id": e.originator_id,
            "meeting": p["meeting_id"],
            "agency": agency,
            "invited": agency in invited,
            "attended": agency in attended,
            "apologies": agency in apologies,
        }
        for agency in sorted(invited | attended | apologies)
    ]
    if rows:
        conn.execute(
            text(
                "INSERT INTO rm_attendance (nominal_id, meeting_id, agency, invited, attended,"
                " apologies) VALUES (:id, :meeting, :agency, :invited, :attended, :apologies)"
            ),
            rows,
        )


PROJECTION = Projection(
    name="meetings",
    tables=("rm_meetings", "rm_attendance"),
    handlers={"MeetingHeld": _meeting},
)

_MEETINGS = """
    FROM rm_meetings m JOIN rm_nominals n ON n.nominal_id = m.nominal_id
    WHERE (CAST(:area AS text) IS NULL OR n.area = :area)
      AND (CAST(:level AS integer) IS NULL OR m.level = :level)
      AND (CAST(:date_from AS date) IS NULL OR m.held_on >= :date_from)
      AND (CAST(:date_to AS date) IS NULL OR m.held_on <= :date_to)
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
