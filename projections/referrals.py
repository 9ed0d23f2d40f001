"""Which referrals were made, how were they decided, and were they on time?

- answered within ten days (000, para 4.8): late when the decision date, or today while
  undecided, is more than `REFERRAL_ANSWER_DAYS` calendar days after the London date the
  referral was recorded (`mappa.referral_answered_late`);
- from custody at least six months before release (000, para 4.11): late when the
  expected release is less than six calendar months after the referral
  (`mappa.referral_from_custody_late`, decided once, when the referral is applied).

As of a past day a referral counts once it was made, and as decided once its decision was
recorded; it counts in the area its record was in when it was made (docs/adr/022).
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
    area_join,
    day,
    fetch_all,
    fetch_one,
    known,
    plain,
    report_filters,
    share,
    with_area,
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
        "decided_at": None,
        "version": e.originator_version,
    }


def _decided(b: Batch, e: Any, position: int) -> None:
    row = b.row(REFERRALS, e.originator_id, e.payload["referral_id"])
    if row is not None:
        row["decision"] = e.payload["decision"]
        row["decided_on"] = day(e.payload["decided_on"])
        row["decided_at"] = e.timestamp


PROJECTION = Projection(
    name="referrals",
    tables=(REFERRALS,),
    handlers={"ReferralMade": _made, "ReferralDecided": _decided},
)


def referrals_as_they_stood(f: Filters) -> str:
    """SQL: each referral the filters select, its decision only if recorded by the cutoff."""
    decided = known("r.decided_at")
    return f"""
        SELECT r.nominal_id, r.version, r.referral_id, r.requested_level,
               r.referred_by AS agency, r.referred_on, r.expected_release_on, r.custody_late,
               CASE WHEN {decided} THEN r.decision END AS decision,
               CASE WHEN {decided} THEN r.decided_on END AS decided_on
        FROM rm_referrals r {area_join(f, "r")}
        WHERE {
        report_filters(level="r.requested_level", date="r.referred_on", agency="r.referred_by")
    }
          AND {known("r.referred_at")}
    """  # noqa: S608 - our own fragments; every value is a bound parameter


def _rows(f: Filters) -> str:
    # referral_answered_late, in SQL: (decided_on, or today) - referred_on > 10 days.
    return f"""
        SELECT r.*,
               (coalesce(r.decided_on, CAST(:today AS date)) - r.referred_on > :answer_days)
                   AS answered_late,
               (r.expected_release_on IS NOT NULL) AS from_custody
        FROM ({referrals_as_they_stood(f)}) r
    """  # noqa: S608 - our own fragments; every value is a bound parameter


async def report(conn: AsyncConnection, f: Filters) -> dict[str, Any]:
    """Referrals: answered within ten days, and from custody six months before release."""
    params = f.params() | {"answer_days": REFERRAL_ANSWER_DAYS}
    s = await fetch_one(
        conn,
        "SELECT count(*) AS total, count(*) FILTER (WHERE decision IS NULL) AS undecided,"  # noqa: S608
        " count(*) FILTER (WHERE answered_late) AS answered_late,"
        " count(*) FILTER (WHERE from_custody) AS from_custody,"
        " count(*) FILTER (WHERE custody_late) AS from_custody_late"
        f" FROM ({_rows(f)}) r",
        params,
    )
    page = (
        f"SELECT r.nominal_id, r.version, r.referral_id, r.requested_level, r.agency,"  # noqa: S608
        " r.referred_on, r.decision, r.decided_on, r.expected_release_on, r.answered_late,"
        f" r.from_custody, r.custody_late FROM ({_rows(f)}) r"
        " ORDER BY r.referred_on, r.nominal_id, r.referral_id LIMIT :limit OFFSET :offset"
    )
    rows = await fetch_all(
        conn, with_area(page, "p.referred_on, p.nominal_id, p.referral_id"), params
    )
    summary = dict(s) | {
        "share_answered_late": share(s["answered_late"], s["total"]),
        "share_from_custody_late": share(s["from_custody_late"], s["from_custody"]),
        "as_of": f.today.isoformat(),
    }
    return {"summary": summary, "rows": [plain(r) for r in rows]}
