"""Which Responsible Authority partners record nothing on a record?

Per record, each partner that is police, probation or a prison (the Responsible Authority)
and when it last posted anything on the record; flagged `silent` when its last sign on the
record (its last posting, or its partnering if it has posted nothing since) is more than
12 months old (000, paras 5.28 and 5.33: "in three-fifths of the cases inspected, those
agencies recorded information infrequently in the preceding 12 months. In seven of those,
they had not recorded any information at all"; `mappa.recording_silent`).

Every event counts as a posting, entries and all: the projection reads every event's
envelope (instant and poster), not its payload (`Projection.envelopes`). A partner's
postings on a record are kept as spans (rm_posting_spans): a span runs from a posting
through each next posting made before the last one fell silent, so a partner that posts
steadily has one row per record, and the report as of any past day finds its last posting
by then, or that it was inside a span (not silent), without a row per posting.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from domain.agencies import RESPONSIBLE_AUTHORITY
from domain.calendar import london_date
from domain.mappa import recording_silent, silence_threshold
from projections.base import (
    EVERY_EVENT,
    Batch,
    Filters,
    Projection,
    Table,
    fetch_all,
    fetch_one,
    known,
    not_ended,
    plain,
)
from projections.current_view import NOMINALS_AS_IT_STOOD

SPANS = Table("rm_posting_spans", key=("nominal_id", "agency", "first_on"))


def _posted(b: Batch, e: Any, position: int) -> None:
    agency = e.recorded_by["agency"]
    if agency.partition(":")[0] not in RESPONSIBLE_AUTHORITY:
        return
    nid, on = e.originator_id, london_date(e.timestamp)
    spans = [s for s in b.rows(SPANS, nid).values() if s["agency"] == agency]
    last = max(spans, key=lambda s: s["first_on"], default=None)
    if last is not None and not recording_silent(last["last_on"], on):
        last["last_on"] = max(last["last_on"], on)
        last["postings"] += 1
        return
    b.rows(SPANS, nid)[(nid, agency, on)] = {
        "nominal_id": nid,
        "agency": agency,
        "first_on": on,
        "last_on": on,
        "postings": 1,
    }


PROJECTION = Projection(
    name="recording_activity",
    tables=(SPANS,),
    handlers={EVERY_EVENT: _posted},
    envelopes=True,
)

# Per partner of a record: whether `today` falls inside one of its spans (not silent), and
# its last posting on or before `today`. Without a cutoff every posting counts, also one
# recorded at an instant still to come.
_SPANS = """
    SELECT nominal_id, agency,
           bool_or(last_on >= :today
                   AND (CAST(:cutoff AS timestamptz) IS NULL OR first_on <= :today)) AS inside,
           max(last_on) FILTER (WHERE last_on <= :today) AS last_posted_on,
           sum(postings) FILTER (WHERE last_on <= :today) AS postings
    FROM rm_posting_spans
    GROUP BY nominal_id, agency
"""
_PAIRS = f"""
    SELECT n.nominal_id, n.area, n.category, n.level, p.agency,
           CAST(p.since AT TIME ZONE 'Europe/London' AS date) AS partner_since,
           s.last_posted_on, coalesce(s.inside, false) AS inside
    FROM ({NOMINALS_AS_IT_STOOD}) n
    JOIN rm_partnerships p ON p.nominal_id = n.nominal_id
        AND {known("p.since")} AND {not_ended("p.until")}
        AND split_part(p.agency, ':', 1) = ANY(:responsible)
    LEFT JOIN ({_SPANS}) s ON s.nominal_id = p.nominal_id AND s.agency = p.agency
    WHERE n.status = 'active'
      AND (CAST(:area AS text) IS NULL OR n.area = :area)
      AND (CAST(:level AS integer) IS NULL OR n.level = :level)
      AND (CAST(:category AS integer) IS NULL OR n.category = :category)
      AND (CAST(:agency AS text) IS NULL OR p.agency = :agency)
"""  # noqa: S608 - our own fragments; every value is a bound parameter
# recording_silent, in SQL: the last sign before the day 12 calendar months back.
_FLAGGED = f"""
    SELECT q.*, greatest(q.last_posted_on, q.partner_since) AS last_sign,
           (NOT q.inside AND greatest(q.last_posted_on, q.partner_since) < :silent_before)
               AS silent
    FROM ({_PAIRS}) q
"""  # noqa: S608 - our own fragments; every value is a bound parameter


async def report(conn: AsyncConnection, f: Filters) -> dict[str, Any]:
    """Per record and Responsible Authority partner: silent partners, oldest sign first;
    counts of partners and of silent ones, by kind of agency."""
    params = f.params() | {
        "silent_before": silence_threshold(f.today),
        "responsible": sorted(RESPONSIBLE_AUTHORITY),
    }
    s = await fetch_one(
        conn,
        "SELECT count(*) AS partners, count(*) FILTER (WHERE silent) AS silent,"  # noqa: S608
        " count(*) FILTER (WHERE silent AND last_posted_on IS NULL) AS never_posted,"
        " count(DISTINCT nominal_id) FILTER (WHERE silent) AS records_with_silent_partner,"
        + ", ".join(
            f" count(*) FILTER (WHERE silent AND split_part(agency, ':', 1) = '{kind}')"
            f" AS silent_{kind}"
            for kind in sorted(RESPONSIBLE_AUTHORITY)
        )
        + f" FROM ({_FLAGGED}) q",
        params,
    )
    rows = await fetch_all(
        conn,
        "SELECT q.nominal_id, q.area, q.level, q.agency, q.partner_since, q.last_posted_on,"  # noqa: S608
        " CAST(:today AS date) - q.last_sign AS days_since_last_sign"
        f" FROM ({_FLAGGED}) q WHERE q.silent"
        " ORDER BY q.last_sign, q.nominal_id, q.agency LIMIT :limit OFFSET :offset",
        params,
    )
    return {
        "summary": dict(s) | {"as_of": f.today.isoformat()},
        "rows": [plain(r) for r in rows],
    }
