"""What is each record's state, now and at any past instant, without names or identifiers?
(rm_nominals, rm_nominals_past)

The row the reports join on for area, level, category, lead agency, custody and the
characteristics the profile counts (gender, ethnicity, month of birth). The authoritative
current view of one record is still the fold of its events (`GET /v1/nominals/{id}`,
read-your-writes); this is the same fold kept as a table. `events_applied` counts the events
applied to the row, so a double application shows as `events_applied != version`.

When one of the `TRACKED` values changes, the row as it was goes to `rm_nominals_past` with
the instant it stopped holding (`base.supersede`), so a report as of a past day reads the
state that stood then (`base.as_it_stood`, docs/adr/025). The month of birth, not the day, is
kept: enough for an age band, less to identify a person by (docs/adr/025).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from projections.base import (
    EVERY_EVENT,
    Batch,
    Filters,
    Projection,
    Table,
    as_it_stood,
    day,
    supersede,
)

NOMINALS = Table("rm_nominals", key=("nominal_id",))
NOMINALS_PAST = Table("rm_nominals_past", key=("nominal_id", "since_position"), append_only=True)

TRACKED = (
    "area",
    "category",
    "level",
    "lead_agency",
    "status",
    "custody_status",
    "custody_establishment",
    "expected_release_on",
    "custody_since",
    "gender",
    "ethnicity",
    "born_in",
)
IN_CUSTODY = ("received", "transferred")


def born_in(date_of_birth: str | None) -> date | None:
    """The first day of the month of birth (the day itself is not kept)."""
    born = day(date_of_birth)
    return born.replace(day=1) if born else None


# Gender is free text on the record; the profile counts it in these groups and never shows
# the text itself, which could say anything (docs/adr/025).
GENDERS = {"male": "male", "m": "male", "man": "male", "female": "female", "f": "female"}
GENDERS |= {"woman": "female"}


def gender(value: str | None) -> str | None:
    """`male`, `female`, `other` (anything else recorded) or None (nothing recorded)."""
    if not value or not value.strip():
        return None
    return GENDERS.get(" ".join(value.split()).lower(), "other")


def _registered(b: Batch, e: Any, position: int) -> None:
    p = e.payload
    b.rows(NOMINALS, e.originator_id)[(e.originator_id,)] = {
        "nominal_id": e.originator_id,
        "version": 0,
        "events_applied": 0,
        "area": p["area"],
        "category": p["category"],
        "level": p["level"],
        "lead_agency": p.get("lead_agency"),
        "status": "active",
        "custody_status": None,
        "custody_establishment": None,
        "expected_release_on": None,
        "registered_at": e.timestamp,
        "registered_by": e.recorded_by["agency"],
        "custody_since": None,
        "gender": gender(p.get("gender")),
        "ethnicity": p.get("ethnicity"),
        "born_in": born_in(p.get("date_of_birth")),
        "since": e.timestamp,
        "since_position": position,
    }


def _set(b: Batch, e: Any, position: int, **values: Any) -> None:
    supersede(b, NOMINALS, NOMINALS_PAST, e, position, TRACKED, values)


def _setter(column: str, payload_key: str):  # noqa: ANN202 - a handler
    def handle(b: Batch, e: Any, position: int) -> None:
        _set(b, e, position, **{column: e.payload[payload_key]})

    return handle


def _status(value: str):  # noqa: ANN202 - a handler
    def handle(b: Batch, e: Any, position: int) -> None:
        _set(b, e, position, status=value)

    return handle


def _custody(b: Batch, e: Any, position: int) -> None:
    p = e.payload
    row = b.row(NOMINALS, e.originator_id)
    if row is None:
        return
    # A custody spell begins when the person is received and lasts through transfers
    # between prisons until release (pre-release work counts referrals made within it).
    held = p["status"] in IN_CUSTODY
    began = row["custody_since"] if row["custody_status"] in IN_CUSTODY else e.timestamp
    _set(
        b,
        e,
        position,
        custody_status=p["status"],
        custody_establishment=p.get("establishment"),
        expected_release_on=day(p.get("expected_release_on")),
        custody_since=began if held else None,
    )


def _personal_details(b: Batch, e: Any, position: int) -> None:
    p = e.payload
    changes: dict[str, Any] = {}
    if p.get("gender") is not None:
        changes["gender"] = gender(p["gender"])
    if p.get("ethnicity") is not None:
        changes["ethnicity"] = p["ethnicity"]
    if p.get("date_of_birth") is not None:
        changes["born_in"] = born_in(p["date_of_birth"])
    if changes:
        _set(b, e, position, **changes)


def _every(b: Batch, e: Any, position: int) -> None:
    # Any event, decoded or not (base.Stored): only the header is read.
    row = b.row(NOMINALS, e.originator_id)
    if row is not None:
        row["version"] = e.originator_version
        row["events_applied"] += 1


PROJECTION = Projection(
    name="current_view",
    tables=(NOMINALS, NOMINALS_PAST),
    handlers={
        "NominalRegistered": _registered,
        "LevelChanged": _setter("level", "to"),
        "CategoryChanged": _setter("category", "to"),
        "LeadAgencyChanged": _setter("lead_agency", "agency"),
        "AreaTransferred": _setter("area", "to_area"),
        "AreaTransferAccepted": _setter("area", "to_area"),
        "CustodyChanged": _custody,
        "PersonalDetailsCorrected": _personal_details,
        "NominalDeregistered": _status("deregistered"),
        "NominalReregistered": _status("active"),
        EVERY_EVENT: _every,
    },
)

COLUMNS = "nominal_id, " + ", ".join(TRACKED)


def nominals_as_it_stood(f: Filters) -> str:
    """SQL: each record's state as it stood at the cutoff (as it stands, without one)."""
    return as_it_stood(NOMINALS, NOMINALS_PAST, COLUMNS, f)
