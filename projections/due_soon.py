"""What falls due in the next N days?

The list a MAPPA coordinator or case administrator works from (004, North Wales: the case
administrator who "tracks Level 1 reviews and ensures they take place"): from `today` (or
`as_of`) to `within_days` days on, each thing due, with who must act where recorded:

- `level_1_review`: a level 1 record's review (review_schedule.py), the lead agency's;
- `review`: a level 2 or 3 record's next meeting (000, para 5.1), the lead agency's;
- `minutes`: the minutes of a meeting not yet uploaded (000, para 5.37), the agency that
  recorded the meeting;
- `action`: an action not yet completed, the assigned agency's;
- `referral_decision`: a referral not yet decided, due ten days after it was made (000,
  para 4.8), the referring agency's.

Nothing already overdue is listed: the other reports say what is late. A review counts in
the area the record is in; the others in the area it was in when their event was recorded.
`level` is the record's level (reviews, actions), the meeting's (minutes) or the one
requested (referrals).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from domain.mappa import REFERRAL_ANSWER_DAYS
from projections.base import Filters, cte, fetch_all, known, plain
from projections.review_schedule import schedule_as_it_stood

KINDS = ("level_1_review", "review", "minutes", "action", "referral_decision")
MAX_DAYS = 366

_WINDOW = "BETWEEN CAST(:today AS date) AND CAST(:until AS date)"
_AREA = "(CAST(:area AS text) IS NULL OR ea.area = :area)"
_EVENT_AREA = (
    "LEFT JOIN rm_event_areas ea ON ea.nominal_id = {0}.nominal_id AND ea.version = {0}.version"
)


def _due(f: Filters) -> str:
    return f"""
    SELECT CASE WHEN r.level = 1 THEN 'level_1_review' ELSE 'review' END AS kind,
           r.nominal_id, CAST(NULL AS text) AS ref, r.area, r.lead_agency AS agency, r.level,
           r.review_due AS due_on
    FROM ({schedule_as_it_stood(f)}) r
    WHERE r.review_due {_WINDOW}
    UNION ALL
    SELECT 'minutes', m.nominal_id, m.meeting_id, ea.area, m.posted_by, m.level,
           m.minutes_due_on
    FROM rm_meetings m {_EVENT_AREA.format("m")}
    WHERE m.minutes_due_on {_WINDOW} AND {known("m.recorded_at")} AND {_AREA}
      AND (CAST(:agency AS text) IS NULL OR m.posted_by = :agency)
      AND (CAST(:level AS integer) IS NULL OR m.level = :level)
      AND NOT EXISTS (SELECT 1 FROM rm_minutes u WHERE u.nominal_id = m.nominal_id
                      AND u.meeting_id = m.meeting_id AND {known("u.recorded_at")})
    UNION ALL
    SELECT 'action', a.nominal_id, a.action_id, ea.area, a.assigned_agency, ea.level, a.due_on
    FROM rm_actions a {_EVENT_AREA.format("a")}
    WHERE a.due_on {_WINDOW} AND {known("a.set_at")} AND {_AREA}
      AND (a.completed_at IS NULL OR NOT {known("a.completed_at")})
      AND (CAST(:agency AS text) IS NULL OR a.assigned_agency = :agency)
      AND (CAST(:level AS integer) IS NULL OR ea.level = :level)
    UNION ALL
    SELECT 'referral_decision', q.nominal_id, q.referral_id, ea.area, q.referred_by,
           q.requested_level, q.referred_on + CAST(:answer_days AS integer)
    FROM rm_referrals q {_EVENT_AREA.format("q")}
    WHERE q.referred_on + CAST(:answer_days AS integer) {_WINDOW}
      AND {known("q.referred_at")} AND {_AREA}
      AND (q.decided_at IS NULL OR NOT {known("q.decided_at")})
      AND (CAST(:agency AS text) IS NULL OR q.referred_by = :agency)
      AND (CAST(:level AS integer) IS NULL OR q.requested_level = :level)
"""  # noqa: S608 - our own fragments; every value is a bound parameter


async def report(conn: AsyncConnection, f: Filters) -> dict[str, Any]:
    """Reviews, minutes, actions and referral decisions falling due, soonest first."""
    until = f.today + timedelta(days=f.within_days)
    params = f.params() | {"until": until, "answer_days": REFERRAL_ANSWER_DAYS}
    counted = await fetch_all(
        conn,
        f"SELECT kind, count(*) AS n FROM ({_due(f)}) d GROUP BY kind",  # noqa: S608
        params,
    )
    by_kind = dict.fromkeys(KINDS, 0) | {r["kind"]: r["n"] for r in counted}
    rows = await fetch_all(
        conn,
        f"WITH d AS {cte(f)} ({_due(f)})"  # noqa: S608
        " SELECT d.*, d.due_on - CAST(:today AS date) AS days_left FROM d"
        " ORDER BY d.due_on, d.kind, d.nominal_id, d.ref LIMIT :limit OFFSET :offset",
        params,
    )
    summary = {
        "from": f.today.isoformat(),
        "to": until.isoformat(),
        "within_days": f.within_days,
        "total": sum(by_kind.values()),
        "by_kind": by_kind,
        "as_of": f.today.isoformat(),
    }
    return {"summary": summary, "rows": [plain(r) for r in rows]}
