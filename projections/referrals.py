"""Which referrals were made, how were they decided, and were they on time?

- answered within ten days (000, para 4.8): late when the decision date, or today while
  undecided, is more than `REFERRAL_ANSWER_DAYS` calendar days after the London date the
  referral was recorded (`mappa.referral_answered_late`);
- from custody at least six months before release (000, para 4.11): late when the
  expected release is less than six calendar months after the referral
  (`mappa.referral_from_custody_late`, decided once, when the referral is applied).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from domain.calendar import london_date
from domain.mappa import REFERRAL_ANSWER_DAYS, referral_from_custody_late
from projections.base import (
    Batch,
    Filters,
    Projection,
    Table,
    day,
    report_filters,
    share,
    summary_and_page,
)

REFERRALS = Table("rm_referrals", key=("nominal_id", "referral_id"))


def _made(b: Batch, e: Any, position: int) -> None:
    p = e.payload
    referred_on = london_date(e.timestamp)
    release = day(p.get("expected_release_on"))
    b.rows(REFERRALS, e.originator_id)[(e.originator_id, p["referral_id"])] = {
        "nominal_id": e.originator_id,
        "referral_id": p["referral_id"],
        "requested_level": p["requested_level"],
        "referred_by": e.recorded_by["agency"],
        "referred_at": e.timestamp,
        "referred_on": referred_on,
        "expected_release_on": release,
        "custody_late": (
            referral_from_custody_late(referred_on, release) if release is not None else None
        ),
        "decision": None,
        "decided_on": None,
    }


def _decided(b: Batch, e: Any, position: int) -> None:
    row = b.row(REFERRALS, e.originator_id, e.payload["referral_id"])
    if row is not None:
        row["decision"] = e.payload["decision"]
        row["decided_on"] = day(e.payload["decided_on"])


PROJECTION = Projection(
    name="referrals",
    tables=(REFERRALS,),
    handlers={"ReferralMade": _made, "ReferralDecided": _decided},
)

# referral_answered_late, in SQL: (decided_on, or today) - referred_on > 10 days.
_ROWS = f"""
    SELECT r.nominal_id, r.referral_id, r.requested_level, n.area, r.referred_by AS agency,
           r.referred_on, r.decision, r.decided_on, r.expected_release_on,
           (coalesce(r.decided_on, CAST(:today AS date)) - r.referred_on > :answer_days)
               AS answered_late,
           (r.expected_release_on IS NOT NULL) AS from_custody, r.custody_late
    FROM rm_referrals r JOIN rm_nominals n ON n.nominal_id = r.nominal_id
    WHERE {report_filters(level="r.requested_level", date="r.referred_on", agency="r.referred_by")}
"""  # noqa: S608 - column names of ours; values are bound parameters


async def report(conn: AsyncConnection, f: Filters) -> dict[str, Any]:
    """Referrals: answered within ten days, and from custody six months before release."""
    s, rows = await summary_and_page(
        conn,
        f.params() | {"answer_days": REFERRAL_ANSWER_DAYS},
        summary="SELECT count(*) AS total, count(*) FILTER (WHERE decision IS NULL) AS undecided,"  # noqa: S608
        " count(*) FILTER (WHERE answered_late) AS answered_late,"
        " count(*) FILTER (WHERE from_custody) AS from_custody,"
        " count(*) FILTER (WHERE custody_late) AS from_custody_late"
        f" FROM ({_ROWS}) r",  # noqa: S608
        rows=f"SELECT * FROM ({_ROWS}) r ORDER BY r.referred_on, r.nominal_id, r.referral_id",  # noqa: S608
    )
    summary = dict(s) | {
        "share_answered_late": share(s["answered_late"], s["total"]),
        "share_from_custody_late": share(s["from_custody_late"], s["from_custody"]),
    }
    return {"summary": summary, "rows": rows}
