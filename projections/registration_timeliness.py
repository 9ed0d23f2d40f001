"""Were people identified within three days of sentence?

Registered late when the London date of the registration's recorded_at is more than
three calendar days after the sentence date (000, para 4.1; `mappa.registered_late`,
decided once, when the registration is applied). Records with no sentence date are
counted apart. A registration counts in its own area, at its own level (docs/adr/022), and
as of a past day once it was recorded.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from domain.calendar import london_date
from domain.mappa import registered_late
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
    median,
    plain,
    report_filters,
    share,
    with_area,
)

REGISTRATIONS = Table("rm_registrations", key=("nominal_id",), append_only=True)


def _registered(b: Batch, e: Any, position: int) -> None:
    sentence = day(e.payload.get("sentence_date"))
    registered_on = london_date(e.timestamp)
    b.rows(REGISTRATIONS, e.originator_id)[(e.originator_id,)] = {
        "nominal_id": e.originator_id,
        "registered_by": e.recorded_by["agency"],
        "registered_at": e.timestamp,
        "registered_on": registered_on,
        "sentence_date": sentence,
        "days_after_sentence": (registered_on - sentence).days if sentence else None,
        "late": registered_late(sentence, e.timestamp) if sentence else None,
    }


PROJECTION = Projection(
    name="registration_timeliness",
    tables=(REGISTRATIONS,),
    handlers={"NominalRegistered": _registered},
)


def _where(f: Filters) -> str:
    # Registration is its record's first event (version 1).
    return f"""
        FROM (SELECT *, 1 AS version FROM rm_registrations) r {area_join(f, "r", level=True)}
        WHERE {report_filters(level=None, date="r.registered_on", agency="r.registered_by")}
          AND {known("r.registered_at")}
    """  # noqa: S608 - our own fragments; every value is a bound parameter


async def report(conn: AsyncConnection, f: Filters) -> dict[str, Any]:
    """Registrations with days after sentence and lateness; the share registered late."""
    params = f.params()
    s = await fetch_one(
        conn,
        "SELECT count(*) AS registrations,"  # noqa: S608
        " count(*) FILTER (WHERE r.sentence_date IS NOT NULL) AS with_sentence_date,"
        " count(*) FILTER (WHERE r.late) AS late,"
        " percentile_cont(0.5) WITHIN GROUP (ORDER BY r.days_after_sentence)"
        f" AS median_days_after_sentence {_where(f)}",
        params,
    )
    page = (
        "SELECT r.nominal_id, r.version, r.registered_by AS agency, r.registered_on,"  # noqa: S608
        f" r.sentence_date, r.days_after_sentence, r.late {_where(f)}"
        " ORDER BY r.registered_on, r.nominal_id LIMIT :limit OFFSET :offset"
    )
    rows = await fetch_all(conn, with_area(page, "p.registered_on, p.nominal_id"), params)
    summary = dict(s) | {
        "share_late": share(s["late"], s["with_sentence_date"]),
        "median_days_after_sentence": median(s["median_days_after_sentence"]),
        "as_of": f.today.isoformat(),
    }
    return {"summary": summary, "rows": [plain(r) for r in rows]}
