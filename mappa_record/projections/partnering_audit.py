"""Who is partnered to each record, since when and by whom, and where are the gaps?

The gaps are the rules of DESIGN.md section 4 about who should be on a record:
- the current prison is partnered (000, para 5.35 and recommendations),
- a lead agency is recorded (000, para 4.15),
- a named police offender manager at levels 2 and 3 (000, recommendations),
- the recorded level matches the level of the latest meeting (000, para 5.29).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection

from mappa_record.domain.nominal import Nominal
from mappa_record.projections.base import Filters, Projection, fetch_all, fetch_one, plain


def _partner(
    conn: Connection, nominal_id: Any, agency: str, e: Nominal.Event, position: int, reason: str
) -> None:
    conn.execute(
        text(
            "INSERT INTO rm_partnerships (nominal_id, agency, since, since_position, by_agency,"
            " reason) VALUES (:id, :agency, :since, :position, :by, :reason)"
        ),
        {
            "id": nominal_id,
            "agency": agency,
            "since": e.timestamp,
            "position": position,
            "by": e.recorded_by["agency"],
            "reason": reason,
        },
    )


def _registered(conn: Connection, e: Nominal.Event, position: int) -> None:
    # The registering agency and the lead agency, if another, are the first partners.
    for agency in dict.fromkeys([e.recorded_by["agency"], e.payload.get("lead_agency")]):
        if agency is not None:
            _partner(conn, e.originator_id, agency, e, position, "registration")


def _partnered(conn: Connection, e: Nominal.Event, position: int) -> None:
    _partner(conn, e.originator_id, e.payload["agency"], e, position, e.payload["reason"])


def _ended(conn: Connection, e: Nominal.Event, position: int) -> None:
    params = {"id": e.originator_id, "agency": e.payload["agency"]}
    conn.execute(
        text(
            "UPDATE rm_partnerships SET until = :until, ended_by = :by, end_reason = :reason"
            " WHERE nominal_id = :id AND agency = :agency AND until IS NULL"
        ),
        params
        | {"until": e.timestamp, "by": e.recorded_by["agency"], "reason": e.payload["reason"]},
    )
    conn.execute(
        text("DELETE FROM rm_officers WHERE nominal_id = :id AND agency = :agency"), params
    )


def _officer(conn: Connection, e: Nominal.Event, position: int) -> None:
    conn.execute(
        text(
            "INSERT INTO rm_officers (nominal_id, agency, since) VALUES (:id, :agency, :since)"
            " ON CONFLICT (nominal_id, agency) DO UPDATE SET since = EXCLUDED.since"
        ),
        {"id": e.originator_id, "agency": e.payload["agency"], "since": e.timestamp},
    )


PROJECTION = Projection(
    name="partnerships",
    tables=("rm_partnerships", "rm_officers"),
    handlers={
        "NominalRegistered": _registered,
        "AgencyPartnered": _partnered,
        "PartneringEnded": _ended,
        "OfficerAssigned": _officer,
    },
)

# The gaps of one record, from the current view, partnerships, officers and meetings; kept
# in rm_partnering_gaps by GAPS_PROJECTION, which runs after those read models in each
# batch, so the report counts them with no per-record subqueries.
_RECOMPUTE = text(
    """
    INSERT INTO rm_partnering_gaps AS g (nominal_id, prison_not_partnered, no_lead_agency,
        no_police_offender_manager, latest_meeting_level, level_mismatch)
    SELECT n.nominal_id,
           coalesce(n.custody_status IN ('received', 'transferred'), false) AND NOT EXISTS (
               SELECT 1 FROM rm_partnerships p WHERE p.nominal_id = n.nominal_id
               AND p.agency = n.custody_establishment AND p.until IS NULL),
           n.lead_agency IS NULL,
           n.level >= 2 AND NOT EXISTS (
               SELECT 1 FROM rm_officers o JOIN rm_partnerships p
               ON p.nominal_id = o.nominal_id AND p.agency = o.agency AND p.until IS NULL
               WHERE o.nominal_id = n.nominal_id AND o.agency LIKE 'police:%'),
           m.level,
           m.level IS NOT NULL AND m.level <> n.level
    FROM rm_nominals n
    LEFT JOIN LATERAL (SELECT level FROM rm_meetings WHERE nominal_id = n.nominal_id
                       ORDER BY position DESC LIMIT 1) m ON true
    WHERE n.nominal_id = :id
    ON CONFLICT (nominal_id) DO UPDATE SET
        prison_not_partnered = EXCLUDED.prison_not_partnered,
        no_lead_agency = EXCLUDED.no_lead_agency,
        no_police_offender_manager = EXCLUDED.no_police_offender_manager,
        latest_meeting_level = EXCLUDED.latest_meeting_level,
        level_mismatch = EXCLUDED.level_mismatch
    """
)


def _recompute(conn: Connection, e: Nominal.Event, position: int) -> None:
    conn.execute(_RECOMPUTE, {"id": e.originator_id})


GAPS_PROJECTION = Projection(
    name="partnering_gaps",
    tables=("rm_partnering_gaps",),
    handlers={
        kind: _recompute
        for kind in (
            "NominalRegistered",
            "AgencyPartnered",
            "PartneringEnded",
            "OfficerAssigned",
            "LevelChanged",
            "LeadAgencyChanged",
            "MeetingHeld",
            "CustodyChanged",
        )
    },
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
