"""What is each record's current state, without names or identifiers? (rm_nominals)

The row the reports join on for area, level, category, lead agency and custody. The
authoritative current view of one record is still the fold of its events
(`GET /v1/nominals/{id}`, read-your-writes); this is the same fold kept as a table.
`events_applied` counts the events applied to the row, so a double application shows as
`events_applied != version`.
"""

from __future__ import annotations

from typing import Any

from projections.base import EVERY_EVENT, Batch, Projection, Table, day

NOMINALS = Table("rm_nominals", key=("nominal_id",))


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
    }


def _set(b: Batch, e: Any, **values: Any) -> None:
    row = b.row(NOMINALS, e.originator_id)
    if row is not None:
        row.update(values)


def _setter(column: str, payload_key: str):  # noqa: ANN202 - a handler
    def handle(b: Batch, e: Any, position: int) -> None:
        _set(b, e, **{column: e.payload[payload_key]})

    return handle


def _status(value: str):  # noqa: ANN202 - a handler
    def handle(b: Batch, e: Any, position: int) -> None:
        _set(b, e, status=value)

    return handle


def _custody(b: Batch, e: Any, position: int) -> None:
    p = e.payload
    _set(
        b,
        e,
        custody_status=p["status"],
        custody_establishment=p.get("establishment"),
        expected_release_on=day(p.get("expected_release_on")),
    )


def _every(b: Batch, e: Any, position: int) -> None:
    # Any event, decoded or not (base.Stored): only the header is read.
    row = b.row(NOMINALS, e.originator_id)
    if row is not None:
        row["version"] = e.originator_version
        row["events_applied"] += 1


PROJECTION = Projection(
    name="current_view",
    tables=(NOMINALS,),
    handlers={
        "NominalRegistered": _registered,
        "LevelChanged": _setter("level", "to"),
        "CategoryChanged": _setter("category", "to"),
        "LeadAgencyChanged": _setter("lead_agency", "agency"),
        "AreaTransferred": _setter("area", "to_area"),
        "AreaTransferAccepted": _setter("area", "to_area"),
        "CustodyChanged": _custody,
        "NominalDeregistered": _status("deregistered"),
        "NominalReregistered": _status("active"),
        EVERY_EVENT: _every,
    },
)
