"""Who is partnered to each record, since when and by whom, and where are the gaps?

The gaps are the rules of docs/design.md#rules about who should be on a record:
- the current prison is partnered (000, para 5.35 and recommendations),
- a lead agency is recorded (000, para 4.15),
- a named police offender manager at levels 2 and 3 (000, recommendations),
- the recorded level matches the level of the latest meeting (000, para 5.29).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from projections.attendance import MEETINGS
from projections.base import (
    Batch,
    Filters,
    Projection,
    Table,
    fetch_all,
    fetch_one,
    plain,
)
from projections.current_view import NOMINALS

PARTNERSHIPS = Table("rm_partnerships", key=("nominal_id", "agency", "since_position"))
OFFICERS = Table("rm_officers", key=("nominal_id", "agency"))
GAPS = Table("rm_partnering_gaps", key=("nominal_id",))


def _partner(b: Batch, nominal_id: UUID, agency: str, e: Any, position: int, reason: str) -> None:
    b.rows(PARTNERSHIPS, nominal_id)[(nominal_id, agency, position)] = {
        "nominal_id": nominal_id,
        "agency": agency,
        "since": e.timestamp,
        "since_position": position,
        "by_agency": e.recorded_by["agency"],
        "reason": reason,
        "until": None,
        "ended_by": None,
        "end_reason": None,
    }


def _registered(b: Batch, e: Any, position: int) -> None:
    # The registering agency and the lead agency, if another, are the first partners.
    for agency in dict.fromkeys([e.recorded_by["agency"], e.payload.get("lead_agency")]):
        if agency is not None:
            _partner(b, e.originator_id, agency, e, position, "registration")


def _partnered(b: Batch, e: Any, position: int) -> None:
    _partner(b, e.originator_id, e.payload["agency"], e, position, e.payload["reason"])


def _transfer_accepted(b: Batch, e: Any, position: int) -> None:
    # The receiving MAPPA unit becomes a partner, unless it is one already.
    nid, agency = e.originator_id, e.payload["receiving"]
    current = any(
        p["agency"] == agency and p["until"] is None for p in b.rows(PARTNERSHIPS, nid).values()
    )
    if not current:
        _partner(b, nid, agency, e, position, f"area transfer from {e.payload['from_area']}")


def _ended(b: Batch, e: Any, position: int) -> None:
    nid, agency = e.originator_id, e.payload["agency"]
    for row in b.rows(PARTNERSHIPS, nid).values():
        if row["agency"] == agency and row["until"] is None:
            row["until"] = e.timestamp
            row["ended_by"] = e.recorded_by["agency"]
            row["end_reason"] = e.payload["reason"]
    b.rows(OFFICERS, nid).pop((nid, agency), None)


def _officer(b: Batch, e: Any, position: int) -> None:
    nid, agency = e.originator_id, e.payload["agency"]
    b.rows(OFFICERS, nid)[(nid, agency)] = {
        "nominal_id": nid,
        "agency": agency,
        "since": e.timestamp,
    }


PROJECTION = Projection(
    name="partnerships",
    tables=(PARTNERSHIPS, OFFICERS),
    handlers={
        "NominalRegistered": _registered,
        "AgencyPartnered": _partnered,
        "AreaTransferAccepted": _transfer_accepted,
        "PartneringEnded": _ended,
        "OfficerAssigned": _officer,
    },
)


def _recompute(b: Batch, e: Any, position: int) -> None:
    """The record's gaps, from its current view, partnerships, officers and meetings.

    Kept in rm_partnering_gaps by GAPS_PROJECTION, which runs after those read models on
    each event, so the report counts them with no per-record subqueries.
    """
    nid = e.originator_id
    n = b.row(NOMINALS, nid)
    if n is None:
        return
    current = {p["agency"] for p in b.rows(PARTNERSHIPS, nid).values() if p["until"] is None}
    meetings = b.rows(MEETINGS, nid).values()
    latest = max(meetings, key=lambda m: m["position"])["level"] if meetings else None
    b.rows(GAPS, nid)[(nid,)] = {
        "nominal_id": nid,
        "prison_not_partnered": n["custody_status"] in ("received", "transferred")
        and n["custody_establishment"] not in current,
        "no_lead_agency": n["lead_agency"] is None,
        "no_police_offender_manager": n["level"] >= 2
        and not any(
            o["agency"].startswith("police:") and o["agency"] in current
            for o in b.rows(OFFICERS, nid).values()
        ),
        "latest_meeting_level": latest,
        "level_mismatch": latest is not None and latest != n["level"],
    }


GAPS_PROJECTION = Projection(
    name="partnering_gaps",
    tables=(GAPS,),
    handlers={
        kind: _recompute
        for kind in (
            "NominalRegistered",
            "AgencyPartnered",
            "PartneringEnded",
            "AreaTransferAccepted",
            "OfficerAssigned",
            "LevelChanged",
            "LeadAgencyChanged",
            "MeetingHeld",
            "CustodyChanged",
        )
    },
    reads=(NOMINALS, PARTNERSHIPS, OFFICERS, MEETINGS),
)

_GAPS = """
    SELECT n.nominal_id, n.area, n.category, n.level, n.lead_agency,
           n.custody_status, n.custody_establishment,
           g.prison_not_partnered, g.no_lead_agency, g.no_police_offender_manager,
           g.latest_meeting_level, g.level_mismatch
    FROM rm_nominals n JOIN rm_partnering_gaps g ON g.nominal_id = n.nominal_id
    WHERE n.status = 'active'
      AND (CAST(:area AS text) IS NULL OR n.area = :area)
      AND (CAST(:level AS integer) IS NULL OR n.level = :level)
      AND (CAST(:agency AS text) IS NULL OR EXISTS (
           SELECT 1 FROM rm_partnerships p WHERE p.nominal_id = n.nominal_id
           AND p.agency = :agency AND p.until IS NULL))
"""


def _utc(column: str) -> str:
    """SQL for an instant as the API writes it (format_instant): UTC, microseconds, Z."""
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


async def report(conn: AsyncConnection, f: Filters) -> dict[str, Any]:
    """Per record: current and past partners, and the gaps; counts of each gap."""
    params = f.params()
    summary = await fetch_one(
        conn,
        "SELECT count(*) AS nominals,"  # noqa: S608
        " count(*) FILTER (WHERE prison_not_partnered) AS prison_not_partnered,"
        " count(*) FILTER (WHERE no_lead_agency) AS no_lead_agency,"
        " count(*) FILTER (WHERE no_police_offender_manager) AS no_police_offender_manager,"
        " count(*) FILTER (WHERE level_mismatch) AS level_mismatch,"
        " count(*) FILTER (WHERE prison_not_partnered OR no_lead_agency"
        "   OR no_police_offender_manager OR level_mismatch) AS with_any_gap"
        f" FROM ({_GAPS}) g",  # noqa: S608
        params,
    )
    rows = await fetch_all(
        conn,
        "SELECT g.*,"  # noqa: S608
        " (SELECT coalesce(json_agg(json_build_object('agency', p.agency,"
        f"   'since', {_utc('p.since')}, 'by', p.by_agency) ORDER BY p.agency), '[]')"
        "   FROM rm_partnerships p"
        "   WHERE p.nominal_id = g.nominal_id AND p.until IS NULL) AS partners,"
        " (SELECT coalesce(json_agg(json_build_object('agency', p.agency,"
        f"   'since', {_utc('p.since')}, 'by', p.by_agency, 'until', {_utc('p.until')},"
        "   'ended_by', p.ended_by) ORDER BY p.since_position), '[]')"
        "   FROM rm_partnerships p"
        "   WHERE p.nominal_id = g.nominal_id AND p.until IS NOT NULL) AS past_partners"
        f" FROM ({_GAPS}) g ORDER BY g.nominal_id LIMIT :limit OFFSET :offset",  # noqa: S608
        params,
    )
    return {"summary": dict(summary), "rows": [plain(r) for r in rows]}
