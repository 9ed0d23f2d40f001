"""Who is managed under MAPPA: how many records by gender, age band and ethnicity?

The profile of MAPPA cases by protected characteristics that a Strategic Management Board
should have (004, standards: "a sufficiently comprehensive and up-to-date analysis of the
profile of MAPPA cases, including by protected characteristics"), counted over the active
records as they stand (or stood, as of a past day: current_view.py), for an area, category,
level or lead agency by the filters.

No one may be recognised from it: a count from 1 to 4 is shown as "<5", and where that
leaves a single hidden cell in a breakdown (which the total would give away), the next
smallest is hidden too; with fewer than 5 records in all, every count is hidden. The age is
taken from the month of birth, as if born on its first day (the read model keeps no more:
docs/adr/025).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from domain.mappa import AGE_BANDS
from domain.nominal.identity import ETHNICITIES
from projections.base import Filters, fetch_all, report_filters
from projections.current_view import nominals_as_it_stood

SMALL_CELL = 5  # counts below this are not shown (the statistical disclosure control)
HIDDEN = f"<{SMALL_CELL}"
NOT_RECORDED = "not recorded"

# mappa.age_band, in SQL: whole years from the month of birth to `today`.
_AGE = "date_part('year', age(CAST(:today AS date), n.born_in))"
_AGE_BAND = (
    f"CASE WHEN n.born_in IS NULL THEN '{NOT_RECORDED}' "
    + " ".join(f"WHEN {_AGE} < {below} THEN '{label}'" for below, label in AGE_BANDS)
    + " END"
)


# Filters of a report of records as they stand: the record's area, level, category, lead.
_RECORD_FILTERS = report_filters(
    area="n.area", level="n.level", category="n.category", date=None, agency="n.lead_agency"
)


def _profile(f: Filters) -> str:
    return f"""
    SELECT coalesce(n.gender, '{NOT_RECORDED}') AS gender, {_AGE_BAND} AS age_band,
           coalesce(n.ethnicity, '{NOT_RECORDED}') AS ethnicity
    FROM ({nominals_as_it_stood(f)}) n
    WHERE n.status = 'active'
      AND {_RECORD_FILTERS}
"""  # noqa: S608 - our own fragments; every value is a bound parameter


# The values each breakdown always lists (a zero says nothing of anyone).
LISTED = {
    "gender": ("male", "female", "other", NOT_RECORDED),
    "age_band": (*(label for _, label in AGE_BANDS), NOT_RECORDED),
    "ethnicity": (*ETHNICITIES, NOT_RECORDED),
}


def suppressed(counts: dict[str, int], total: int) -> dict[str, int | str]:
    """One breakdown's counts with the small ones hidden (see the module's docstring)."""
    if total < SMALL_CELL:
        return dict.fromkeys(counts, HIDDEN)
    hidden = {v for v, c in counts.items() if 0 < c < SMALL_CELL}
    if len(hidden) == 1:
        others = [(c, v) for v, c in counts.items() if c > 0 and v not in hidden]
        hidden.add(min(others)[1])
    return {v: HIDDEN if v in hidden else c for v, c in counts.items()}


async def report(conn: AsyncConnection, f: Filters) -> dict[str, Any]:
    """Active records by gender, age band and ethnicity; small counts hidden."""
    rows = await fetch_all(
        conn,
        "SELECT gender, age_band, ethnicity, count(*) AS count"  # noqa: S608
        f" FROM ({_profile(f)}) p GROUP BY GROUPING SETS ((gender), (age_band), (ethnicity))",
        f.params(),
    )
    total = sum(r["count"] for r in rows if r["gender"] is not None)
    cells = []
    for dimension, listed in LISTED.items():
        counts = dict.fromkeys(listed, 0) | {
            r[dimension]: r["count"] for r in rows if r[dimension] is not None
        }
        shown = suppressed(counts, total)
        cells += [{"dimension": dimension, "value": v, "count": shown[v]} for v in counts]
    summary = {
        "records": total if total >= SMALL_CELL else HIDDEN,
        "hidden_below": SMALL_CELL,
        "as_of": f.today.isoformat(),
    }
    return {"summary": summary, "cells": cells}
