"""Which meetings were held, and who was required, invited, attended, sent apologies or was
absent?

Required against actual attendance, per agency (000, paras 5.4 and 3.3): absent means
invited, not attending and sending no apologies. An agency a referral names among the
agencies to invite is required at the next meeting of the record (the first recorded after
the referral and held on or after the day it was made); missing from that meeting's invited
list, it is `required_not_invited` (000, paras 3.3 (KPI MAP008), 4.23, 6.47), the absence no
attendance figure shows. A referral decided `level_1` before any meeting requires no one.

A meeting's figures count in the area the record was in when it was recorded
(rm_event_areas, docs/adr/022) and, as of a past day, only if recorded by then.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from domain.calendar import london_date
from domain.mappa import Level, minutes_due_on
from projections.base import (
    Batch,
    Filters,
    Projection,
    Table,
    area_join,
    fetch_all,
    fetch_one,
    known,
    plain,
    report_filters,
    share,
)

MEETINGS = Table("rm_meetings", key=("nominal_id", "meeting_id"))
ATTENDANCE = Table("rm_attendance", key=("nominal_id", "meeting_id", "agency"), append_only=True)
REQUIRED = Table("rm_required_invitations", key=("nominal_id", "referral_id", "agency"))


def _meeting(b: Batch, e: Any, position: int) -> None:
    p = e.payload
    nid, meeting = e.originator_id, p["meeting_id"]
    held_on = date.fromisoformat(p["held_on"])
    b.rows(MEETINGS, nid)[(nid, meeting)] = {
        "nominal_id": nid,
        "meeting_id": meeting,
        "level": p["level"],
        "held_on": held_on,
        "recorded_at": e.timestamp,
        "position": position,
        "version": e.originator_version,
        "posted_by": e.recorded_by["agency"],
        "minutes_due_on": minutes_due_on(held_on, Level(p["level"])),
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
            "level": p["level"],
            "held_on": held_on,
            "version": e.originator_version,
            "recorded_at": e.timestamp,
        }
    # The referrals still waiting for their next meeting: this is it.
    for row in b.rows(REQUIRED, nid).values():
        if row["meeting_id"] is None and held_on >= row["referred_on"]:
            row |= {
                "meeting_id": meeting,
                "version": e.originator_version,
                "meeting_recorded_at": e.timestamp,
                "held_on": held_on,
                "level": p["level"],
                "invited": row["agency"] in invited,
            }


def _referral(b: Batch, e: Any, position: int) -> None:
    p, nid = e.payload, e.originator_id
    rows = b.rows(REQUIRED, nid)
    for agency in dict.fromkeys(i["agency"] for i in p["agencies_to_invite"]):
        rows[(nid, p["referral_id"], agency)] = {
            "nominal_id": nid,
            "referral_id": p["referral_id"],
            "agency": agency,
            "referred_on": london_date(e.timestamp),
            "meeting_id": None,
            "version": None,
            "meeting_recorded_at": None,
            "held_on": None,
            "level": None,
            "invited": None,
        }


def _decided(b: Batch, e: Any, position: int) -> None:
    if e.payload["decision"] != "level_1":
        return
    rows = b.rows(REQUIRED, e.originator_id)
    for key, row in list(rows.items()):
        if row["referral_id"] == e.payload["referral_id"] and row["meeting_id"] is None:
            del rows[key]


PROJECTION = Projection(
    name="meetings",
    tables=(MEETINGS, ATTENDANCE, REQUIRED),
    handlers={"MeetingHeld": _meeting, "ReferralMade": _referral, "ReferralDecided": _decided},
)


def _attendance(f: Filters) -> str:
    # Each attendance row carries its meeting's level, date, version and instant (migrations
    # 0005, 0013): the report reads rm_attendance alone, joining the event areas only for an
    # area.
    return f"""
        SELECT a.agency, count(*) FILTER (WHERE a.invited) AS invited,
               count(*) FILTER (WHERE a.attended) AS attended,
               count(*) FILTER (WHERE a.apologies) AS apologies,
               count(*) FILTER (WHERE a.invited AND NOT a.attended AND NOT a.apologies) AS absent
        FROM rm_attendance a {area_join(f, "a")}
        WHERE {report_filters(level="a.level", date="a.held_on", agency="a.agency")}
          AND {known("a.recorded_at")}
        GROUP BY a.agency
    """  # noqa: S608 - our own fragments; every value is a bound parameter


def _required(f: Filters) -> str:
    return f"""
        SELECT q.agency, count(*) AS required,
               count(*) FILTER (WHERE NOT q.invited) AS required_not_invited
        FROM rm_required_invitations q {area_join(f, "q")}
        WHERE q.meeting_id IS NOT NULL
          AND {report_filters(level="q.level", date="q.held_on", agency="q.agency")}
          AND {known("q.meeting_recorded_at")}
        GROUP BY q.agency
    """  # noqa: S608 - our own fragments; every value is a bound parameter


def _meetings(f: Filters) -> str:
    # With an agency: the meetings it was invited to, attended, sent apologies to or was
    # required at.
    return f"""
        SELECT count(*) AS meetings FROM rm_meetings m {area_join(f, "m")}
        WHERE {report_filters(level="m.level", date="m.held_on")}
          AND {known("m.recorded_at")}
          AND (CAST(:agency AS text) IS NULL
               OR EXISTS (SELECT 1 FROM rm_attendance a WHERE a.nominal_id = m.nominal_id
                          AND a.meeting_id = m.meeting_id AND a.agency = :agency)
               OR EXISTS (SELECT 1 FROM rm_required_invitations q
                          WHERE q.nominal_id = m.nominal_id AND q.meeting_id = m.meeting_id
                          AND q.agency = :agency))
    """  # noqa: S608 - our own fragments; every value is a bound parameter


COUNTS = ("invited", "attended", "apologies", "absent", "required", "required_not_invited")


async def report(conn: AsyncConnection, f: Filters) -> dict[str, Any]:
    """Per agency: meetings invited to, attended, apologies, absences, and how often a
    referral required it and the next meeting did not invite it."""
    params = f.params()
    rows = await fetch_all(
        conn,
        f"SELECT coalesce(a.agency, q.agency) AS agency,"  # noqa: S608
        " coalesce(a.invited, 0) AS invited, coalesce(a.attended, 0) AS attended,"
        " coalesce(a.apologies, 0) AS apologies, coalesce(a.absent, 0) AS absent,"
        " coalesce(q.required, 0) AS required,"
        " coalesce(q.required_not_invited, 0) AS required_not_invited"
        f" FROM ({_attendance(f)}) a FULL JOIN ({_required(f)}) q ON q.agency = a.agency"
        " ORDER BY 1",
        params,
    )
    meetings = (await fetch_one(conn, _meetings(f), params))["meetings"]
    out = [plain(r) | {"share_attended": share(r["attended"], r["invited"])} for r in rows]
    summary: dict[str, Any] = {"meetings": meetings} | {k: sum(r[k] for r in out) for k in COUNTS}
    summary["share_attended"] = share(summary["attended"], summary["invited"])
    summary["as_of"] = f.today.isoformat()
    return {"summary": summary, "rows": out[f.offset : f.offset + f.limit]}
