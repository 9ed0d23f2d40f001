"""Were people identified within three days of sentence?

Registered late when the London date of the registration's recorded_at is more than
three calendar days after the sentence date (000, para 4.1; `mappa.registered_late`,
decided once, when the registration is applied). Records with no sentence date are
counted apart.
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
    day,
    median,
    report_filters,
    share,
    summary_and_page,
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

_WHERE = f"""
    FROM rm_registrations r JOIN rm_nominals n ON n.nominal_id = r.nominal_id
    WHERE {report_filters(level="n.level", date="r.registered_on", agency="r.registered_by")}
"""


async def report(conn: AsyncConnection, f: Filters) -> dict[str, Any]:
    """Registrations with days after sentence and lateness; the share registered late."""
    s, rows = await summary_and_page(
        conn,
        f.params(),
        summary="SELECT count(*) AS registrations,"
        " count(*) FILTER (WHERE r.sentence_date IS NOT NULL) AS with_sentence_date,"
        " count(*) FILTER (WHERE r.late) AS late,"
        " percentile_cont(0.5) WITHIN GROUP (ORDER BY r.days_after_sentence)"
        f" AS median_days_after_sentence {_WHERE}",  # noqa: S608
        rows="SELECT r.nominal_id, n.area, r.registered_by AS agency, r.registered_on,"
        " r.sentence_date, r.days_after_sentence, r.late"
        f" {_WHERE} ORDER BY r.registered_on, r.nominal_id",  # noqa: S608
    )
    summary = dict(s) | {
        "share_late": share(s["late"], s["with_sentence_date"]),
        "median_days_after_sentence": median(s["median_days_after_sentence"]),
    }
    return {"summary": summary, "rows": rows}
