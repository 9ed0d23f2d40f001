"""What is each record's current state, without names or identifiers? (rm_nominals)

The row the reports join on for area, level, category, lead agency and custody. The
authoritative current view of one record is still the fold of its events
(`GET /v1/nominals/{id}`, read-your-writes); this is the same fold kept as a table.
`events_applied` counts the events applied to the row, so a double application shows as
`events_applied != version`.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from mappa_record.domain.nominal import Nominal
from mappa_record.projections.base import EVERY_EVENT, Projection, day


def _registered(conn: Connection, e: Nominal.Event, position: int) -> None:
    p = e.payload
    conn.execute(
        text(
            "INSERT INTO rm_nominals (nominal_id, version, events_applied, area, category, level,"
            " lead_agency, status, registered_at, registered_by)"
            " VALUES (:id, 0, 0, :area, :category, :level, :lead, 'active', :at, :by)"
        ),
        {
            "id": e.originator_id,
            "area": p["area"],
            "category": p["category"],
            "level": p["level"],
            "lead": p.get("lead_agency"),
            "at": e.timestamp,
            "by": e.recorded_by["agency"],
        },
    )


def _setter(column: str, payload_key: str):  # noqa: ANN202 - a handler
    statement = text(f"UPDATE rm_nominals SET {column} = :value WHERE nominal_id = :id")  # noqa: S608

    def handle(conn: Connection, e: Nominal.Event, position: int) -> None:
        conn.execute(statement, {"id": e.originator_id, "value": e.payload[payload_key]})

    return handle


def _status(value: str):  # noqa: ANN202 - a handler
    def handle(conn: Connection, e: Nominal.Event, position: int) -> None:
        conn.execute(
            text("UPDATE rm_nominals SET status = :value WHERE nominal_id = :id"),
            {"id": e.originator_id, "value": value},
        )

    return handle


def _custody(conn: Connection, e: Nominal.Event, position: int) -> None:
    p = e.payload
    conn.execute(
        text(
            "UPDATE rm_nominals SET custody_status = :status, custody_establishment = :est,"
            " expected_release_on = :release WHERE nominal_id = :id"
        ),
        {
            "id": e.originator_id,
            "status": p["status"],
            "est": p.get("establishment"),
            "release": day(p.get("expected_release_on")),
        },
    )


def _every(conn: Connection, e: Nominal.Event, position: int) -> None:
    conn.execute(
        text(
            "UPDATE rm_nominals SET version = :version, events_applied = events_applied + 1"
            " WHERE nominal_id = :id"
        ),
        {"id": e.originator_id, "version": e.originator_version},
    )


PROJECTION = Projection(
    name="current_view",
    tables=("rm_nominals",),
    handlers={
        "NominalRegistered": _registered,
        "LevelChanged": _setter("level", "to"),
        "CategoryChanged": _setter("category", "to"),
        "LeadAgencyChanged": _setter("lead_agency", "agency"),
        "AreaTransferred": _setter("area", "to_area"),
        "CustodyChanged": _custody,
        "NominalDeregistered": _status("deregistered"),
        "NominalReregistered": _status("active"),
        EVERY_EVENT: _every,
    },
)
