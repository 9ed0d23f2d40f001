"""Who is partnered to each record, since when and by whom, and where are the gaps?

The gaps are the rules of docs/design.md#rules about who should be on a record:
- the current prison is partnered (000, para 5.35 and recommendations),
- a lead agency is recorded (000, para 4.15),
- a named police offender manager at levels 2 and 3 (000, recommendations),
- the recorded level matches the level of the latest meeting (000, para 5.29).

The gaps are a history (`base.supersede`): when a record's flags change, the row they
replace is kept in `rm_partnering_gaps_past`, so the audit as of a past day reads the flags,
the state and the partners (since, until) that stood then.
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
    as_it_stood,
    cte,
    fetch_all,
    fetch_one,
    known,
    not_ended,
    partner_at_cutoff,
    plain,
    report_filters,
    supersede,
)
from projections.current_view import NOMINALS, nominals_as_it_stood

PARTNERSHIPS = Table("rm_partnerships", key=("nominal_id", "agency", "since_position"))
OFFICERS = Table("rm_officers", key=("nominal_id", "agency"))
GAPS = Table("rm_partnering_gaps", key=("nominal_id",))
GAPS_PAST = Table("rm_partnering_gaps_past", key=("nominal_id", "since_position"), append_only=True)
FLAGS = (
    "prison_not_partnered",
    "no_lead_agency",
    "no_police_offender_manager",
    "latest_meeting_level",
    "level_mismatch",
)


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
    flags = {
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
    if b.row(GAPS, nid) is None:
        b.rows(GAPS, nid)[(nid,)] = {
            "nominal_id": nid,
            "since": e.timestamp,
            "since_position": position,
        } | flags
    else:
        supersede(b, GAPS, GAPS_PAST, e, position, FLAGS, flags)


GAPS_PROJECTION = Projection(
    name="partnering_gaps",
    tables=(GAPS, GAPS_PAST),
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


# Filters of a report of records as they stand: the record's area, level, category.
_RECORD_FILTERS = report_filters(area="n.area", level="n.level", category="n.category", date=None)


def _gaps(f: Filters) -> str:
    return f"""
    SELECT n.nominal_id, n.area, n.category, n.level, n.lead_agency,
           n.custody_status, n.custody_establishment,
           g.prison_not_partnered, g.no_lead_agency, g.no_police_offender_manager,
           g.latest_meeting_level, g.level_mismatch
    FROM ({nominals_as_it_stood(f)}) n
    JOIN ({as_it_stood(GAPS, GAPS_PAST, "nominal_id, " + ", ".join(FLAGS), f)}) g
        ON g.nominal_id = n.nominal_id
    WHERE n.status = 'active'
      AND {_RECORD_FILTERS}
      AND {partner_at_cutoff("n.nominal_id")}
"""  # noqa: S608 - our own fragments; every value is a bound parameter


def _utc(column: str) -> str:
    """SQL for an instant as the API writes it (format_instant): UTC, microseconds, Z."""
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


# A partnership stood at the cutoff if it began before it and had not ended by it; it was
# past if it had ended before it.
_CURRENT = f"{known('p.since')} AND {not_ended('p.until')}"
_PAST = f"p.until IS NOT NULL AND {known('p.until')}"


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
        f" FROM ({_gaps(f)}) g",
        params,
    )
    rows = await fetch_all(
        conn,
        f"WITH g AS {cte(f)} ({_gaps(f)}), page AS ("  # noqa: S608
        " SELECT * FROM g ORDER BY g.nominal_id LIMIT :limit OFFSET :offset)"
        " SELECT g.*,"
        " (SELECT coalesce(json_agg(json_build_object('agency', p.agency,"
        f"   'since', {_utc('p.since')}, 'by', p.by_agency) ORDER BY p.agency), '[]')"
        f"   FROM rm_partnerships p WHERE p.nominal_id = g.nominal_id AND {_CURRENT})"
        "   AS partners,"
        " (SELECT coalesce(json_agg(json_build_object('agency', p.agency,"
        f"   'since', {_utc('p.since')}, 'by', p.by_agency, 'until', {_utc('p.until')},"
        "   'ended_by', p.ended_by) ORDER BY p.since_position), '[]')"
        f"   FROM rm_partnerships p WHERE p.nominal_id = g.nominal_id AND {_PAST})"
        "   AS past_partners"
        " FROM page g ORDER BY g.nominal_id",
        params,
    )
    return {
        "summary": dict(summary) | {"as_of": f.today.isoformat()},
        "rows": [plain(r) for r in rows],
    }
