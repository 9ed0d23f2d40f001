"""Who is coming out of custody without the work release needs?

Prisons tell the offender manager of a release eight months before it, and the referral to
MAPPA is due six months before (000, paras 4.11 and 6.39; 004, early identification). For
each person in custody (received, or transferred between prisons) whose expected release is
within eight months of `today`:

- `no_referral`: managed at level 1 and no referral made since this spell in custody began;
- `no_level_decision`: release within six months, managed at level 1, and no referral made
  in this spell decided `level_2` or `level_3`;
- `prison_not_partnered`: the holding prison is not a partner of the record (000, para 5.35).

Rows are the people with at least one flag, soonest release first. A person still in custody
whose expected release has passed is counted apart (`release_date_passed`): the record needs
its custody brought up to date before anything else. As of a past day, the
custody, level, referrals, decisions and partners as they stood then; `agency` is a partner
of the record then; `from`/`to` select expected release dates.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from domain.mappa import CUSTODY_REFERRAL_MONTHS, RELEASE_NOTICE_MONTHS, add_calendar_months
from projections.base import (
    Filters,
    cte,
    fetch_all,
    fetch_one,
    known,
    not_ended,
    partner_at_cutoff,
    plain,
    report_filters,
)
from projections.current_view import nominals_as_it_stood

# A referral of this spell in custody, known at the cutoff.
_REFERRED = f"""
    FROM rm_referrals r WHERE r.nominal_id = n.nominal_id
    AND r.referred_at >= n.custody_since AND {known("r.referred_at")}
"""
_PARTNERED = f"""EXISTS (
    SELECT 1 FROM rm_partnerships p WHERE p.nominal_id = n.nominal_id
    AND p.agency = n.custody_establishment AND {known("p.since")} AND {not_ended("p.until")})
"""  # noqa: S608 - our own fragments; every value is a bound parameter


def _held(f: Filters) -> str:
    return f"""
    SELECT n.nominal_id, n.area, n.category, n.level, n.custody_establishment AS establishment,
           CAST(n.custody_since AT TIME ZONE 'Europe/London' AS date) AS in_custody_since,
           n.expected_release_on,
           n.expected_release_on - CAST(:today AS date) AS days_to_release,
           (n.expected_release_on < :today) AS passed,
           (n.expected_release_on >= :today AND n.expected_release_on <= :referral_by)
               AS within_6_months,
           (n.expected_release_on >= :today AND n.level = 1
            AND NOT EXISTS (SELECT 1 {_REFERRED})) AS no_referral,
           (n.expected_release_on >= :today AND n.level = 1
            AND n.expected_release_on <= :referral_by AND NOT EXISTS (
               SELECT 1 {_REFERRED} AND r.decision IN ('level_2', 'level_3')
               AND {known("r.decided_at")})) AS no_level_decision,
           (n.expected_release_on >= :today AND NOT {_PARTNERED}) AS prison_not_partnered
    FROM ({nominals_as_it_stood(f)}) n
    WHERE n.status = 'active' AND n.custody_status IN ('received', 'transferred')
      AND n.expected_release_on <= :notice_by
      AND {report_filters(level="n.level", date="n.expected_release_on", area="n.area")}
      AND (CAST(:category AS integer) IS NULL OR n.category = :category)
      AND {partner_at_cutoff("n.nominal_id")}
"""  # noqa: S608 - our own fragments; every value is a bound parameter


async def report(conn: AsyncConnection, f: Filters) -> dict[str, Any]:
    """People in custody released within eight months without a referral, within six without
    a level 2/3 decision, or held by a prison that is not a partner."""
    params = f.params() | {
        "notice_by": add_calendar_months(f.today, RELEASE_NOTICE_MONTHS),
        "referral_by": add_calendar_months(f.today, CUSTODY_REFERRAL_MONTHS),
    }
    flagged = "(no_referral OR no_level_decision OR prison_not_partnered)"
    s = await fetch_one(
        conn,
        "SELECT count(*) FILTER (WHERE NOT passed) AS releasing_within_8_months,"  # noqa: S608
        " count(*) FILTER (WHERE within_6_months) AS releasing_within_6_months,"
        " count(*) FILTER (WHERE no_referral) AS no_referral,"
        " count(*) FILTER (WHERE no_level_decision) AS no_level_decision,"
        " count(*) FILTER (WHERE prison_not_partnered) AS prison_not_partnered,"
        f" count(*) FILTER (WHERE {flagged}) AS flagged,"
        " count(*) FILTER (WHERE passed) AS release_date_passed"
        f" FROM ({_held(f)}) h",
        params,
    )
    rows = await fetch_all(
        conn,
        f"WITH h AS {cte(f)} ({_held(f)})"  # noqa: S608
        " SELECT h.nominal_id, h.area, h.category, h.level, h.establishment,"
        " h.in_custody_since, h.expected_release_on, h.days_to_release, h.no_referral,"
        f" h.no_level_decision, h.prison_not_partnered FROM h WHERE {flagged}"
        " ORDER BY h.expected_release_on, h.nominal_id LIMIT :limit OFFSET :offset",
        params,
    )
    return {
        "summary": dict(s) | {"as_of": f.today.isoformat()},
        "rows": [plain(r) for r in rows],
    }
