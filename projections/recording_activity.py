"""Which Responsible Authority partners record nothing on a record?

Per record, each partner that is police, probation or a prison (the Responsible Authority)
is `silent` from the day its last sign on the record (its last posting, or its partnering if
it has posted nothing since) is more than 12 months old, until it posts again or stops being
a partner (000, paras 5.28 and 5.33: "in three-fifths of the cases inspected, those agencies
recorded information infrequently in the preceding 12 months. In seven of those, they had
not recorded any information at all"; `mappa.recording_silent`, `mappa.first_silent_day`).

Every event counts as a posting, entries and all: the projection reads every event's
envelope (instant and poster), not its payload (`Projection.envelopes`). Silence comes with
the passing of time, not with an event, so each partner's row says the day it will be
silent if nothing comes (rm_recording.silent_from); when a sign or the end of the
partnership comes after that day, the silence it ends is kept (rm_silences, append-only).
The partners silent on a day are then the silences spanning it and the partners whose day
has come: a few rows, found by their day, as they stand or on any past day.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from domain.agencies import RESPONSIBLE_AUTHORITY
from domain.calendar import london_date
from domain.mappa import first_silent_day
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
    report_filters,
)
from projections.current_view import nominals_as_it_stood

RECORDING = Table("rm_recording", key=("nominal_id", "agency"))
SILENCES = Table("rm_silences", key=("nominal_id", "agency", "silent_from"), append_only=True)


def _responsible(agency: str | None) -> bool:
    return agency is not None and agency.partition(":")[0] in RESPONSIBLE_AUTHORITY


def _row(b: Batch, nid: UUID, agency: str) -> dict[str, Any]:
    return b.rows(RECORDING, nid).setdefault(
        (nid, agency),
        {
            "nominal_id": nid,
            "agency": agency,
            "partnered": False,
            "last_sign_on": None,
            "last_posted_on": None,
            "silent_from": None,
        },
    )


def _end_silence(b: Batch, row: dict[str, Any], on: date) -> None:
    """Keep the silence a sign or an ending on `on` ends, if it had begun."""
    if row["partnered"] and row["silent_from"] is not None and row["silent_from"] <= on:
        key = (row["nominal_id"], row["agency"], row["silent_from"])
        b.rows(SILENCES, row["nominal_id"])[key] = {
            "nominal_id": row["nominal_id"],
            "agency": row["agency"],
            "silent_from": row["silent_from"],
            "until": on,
            "last_posted_on": row["last_posted_on"],
        }


def _sign(b: Batch, nid: UUID, agency: str, on: date, *, posting: bool) -> None:
    row = _row(b, nid, agency)
    _end_silence(b, row, on)
    row["last_sign_on"] = max(row["last_sign_on"] or on, on)
    if posting:
        row["last_posted_on"] = max(row["last_posted_on"] or on, on)
    row["silent_from"] = first_silent_day(row["last_sign_on"]) if row["partnered"] else None


def _partner(b: Batch, nid: UUID, agency: str | None, on: date) -> None:
    if _responsible(agency):
        assert agency is not None
        row = _row(b, nid, agency)
        if not row["partnered"]:
            row["partnered"] = True
            _sign(b, nid, agency, on, posting=False)


def _registered(b: Batch, e: Any, position: int) -> None:
    # The registering agency and the lead agency, if another, are the first partners.
    on = london_date(e.timestamp)
    for agency in dict.fromkeys([e.recorded_by["agency"], e.payload.get("lead_agency")]):
        _partner(b, e.originator_id, agency, on)


def _partnered(b: Batch, e: Any, position: int) -> None:
    _partner(b, e.originator_id, e.payload["agency"], london_date(e.timestamp))


def _ended(b: Batch, e: Any, position: int) -> None:
    row = b.row(RECORDING, e.originator_id, e.payload["agency"])
    if row is not None and row["partnered"]:
        _end_silence(b, row, london_date(e.timestamp))
        row["partnered"], row["silent_from"] = False, None


def _posted(b: Batch, e: Any, position: int) -> None:
    # Runs after the type's own handler (a registration partners before it posts).
    agency = e.recorded_by["agency"]
    if _responsible(agency):
        _sign(b, e.originator_id, agency, london_date(e.timestamp), posting=True)


# Filters of a report of records as they stand: the record's area, level, category.
_RECORD_FILTERS = report_filters(area="n.area", level="n.level", category="n.category", date=None)


PROJECTION = Projection(
    name="recording_activity",
    tables=(RECORDING, SILENCES),
    handlers={
        "NominalRegistered": _registered,
        "AgencyPartnered": _partnered,
        "PartneringEnded": _ended,
        EVERY_EVENT: _posted,
    },
    envelopes=True,
)

_FILTERS = f"""
    n.status = 'active'
    AND {_RECORD_FILTERS}
"""


def _silent(f: Filters) -> str:
    """SQL: the partners silent on `today`, in records the filters select."""
    return f"""
        SELECT s.nominal_id, n.area, n.level, s.agency, s.silent_from, s.last_posted_on
        FROM (
            SELECT nominal_id, agency, silent_from, last_posted_on FROM rm_silences
            WHERE silent_from <= :today AND until > :today
            UNION ALL
            SELECT nominal_id, agency, silent_from, last_posted_on FROM rm_recording
            WHERE partnered AND silent_from <= :today
        ) s
        JOIN ({nominals_as_it_stood(f)}) n ON n.nominal_id = s.nominal_id
        WHERE {_FILTERS} AND (CAST(:agency AS text) IS NULL OR s.agency = :agency)
    """  # noqa: S608 - our own fragments; every value is a bound parameter


def _partners(f: Filters) -> str:
    """SQL: the Responsible Authority partners at the cutoff of the records selected."""
    return f"""
        SELECT count(*) AS partners FROM rm_partnerships p
        JOIN ({nominals_as_it_stood(f)}) n ON n.nominal_id = p.nominal_id
        WHERE {known("p.since")} AND {not_ended("p.until")}
          AND split_part(p.agency, ':', 1) = ANY(:responsible)
          AND (CAST(:agency AS text) IS NULL OR p.agency = :agency)
          AND {_FILTERS}
    """  # noqa: S608 - our own fragments; every value is a bound parameter


async def report(conn: AsyncConnection, f: Filters) -> dict[str, Any]:
    """Per record and Responsible Authority partner: the silent ones, longest silent first;
    counts of partners and of silent ones, by kind of agency."""
    params = f.params() | {"responsible": sorted(RESPONSIBLE_AUTHORITY)}
    partners = await fetch_one(conn, _partners(f), params)
    s = await fetch_one(
        conn,
        "SELECT count(*) AS silent,"  # noqa: S608
        " count(*) FILTER (WHERE last_posted_on IS NULL) AS never_posted,"
        " count(DISTINCT nominal_id) AS records_with_silent_partner,"
        + ", ".join(
            f" count(*) FILTER (WHERE split_part(agency, ':', 1) = '{kind}') AS silent_{kind}"
            for kind in sorted(RESPONSIBLE_AUTHORITY)
        )
        + f" FROM ({_silent(f)}) q",
        params,
    )
    rows = await fetch_all(
        conn,
        "SELECT q.nominal_id, q.area, q.level, q.agency, q.last_posted_on,"  # noqa: S608
        " q.silent_from AS silent_since,"
        " CAST(:today AS date) - q.silent_from + 1 AS days_silent"
        f" FROM ({_silent(f)}) q"
        " ORDER BY q.silent_from, q.nominal_id, q.agency LIMIT :limit OFFSET :offset",
        params,
    )
    summary = {"partners": partners["partners"]} | dict(s) | {"as_of": f.today.isoformat()}
    return {"summary": summary, "rows": [plain(r) for r in rows]}
