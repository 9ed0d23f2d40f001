"""In which area was each record when each of its events was recorded? (rm_event_areas)

An area figure counts a fact in the area the record was in when it happened, not the area it
is in today (docs/design.md#rules, "where a fact belongs"): a breach recorded in Kent stays a
Kent breach after the person moves to Essex. Each event gets a row naming that area; a move
(`AreaTransferred`, `AreaTransferAccepted`) is the sending area's, the events after it the
receiving area's. Reports join it on (nominal_id, version), or read it by area and type.

The area a record is in now is kept beside it (rm_record_areas), so the projection needs no
other read model; nothing here names or identifies a person (docs/adr/022).
"""

from __future__ import annotations

from typing import Any

from projections.base import EVERY_EVENT, Batch, Projection, Table

EVENT_AREAS = Table("rm_event_areas", key=("nominal_id", "version"), append_only=True)
RECORD_AREAS = Table("rm_record_areas", key=("nominal_id",))

# The events that move a record: each names the area it leaves (`from_area`, which the
# server fills) and the one it enters (`to_area`).
MOVES = ("AreaTransferred", "AreaTransferAccepted")


def _registered(b: Batch, e: Any, position: int) -> None:
    nid = e.originator_id
    b.rows(RECORD_AREAS, nid)[(nid,)] = {"nominal_id": nid, "area": e.payload["area"]}


def _moved(b: Batch, e: Any, position: int) -> None:
    row = b.row(RECORD_AREAS, e.originator_id)
    if row is not None:
        row["area"] = e.payload["to_area"]


def _every(b: Batch, e: Any, position: int) -> None:
    # Runs after the type's own handler: a move has already changed the record's area, and
    # is counted where it started.
    nid = e.originator_id
    now = b.row(RECORD_AREAS, nid)
    if now is None:
        return
    area = e.payload["from_area"] if e.type in MOVES else now["area"]
    b.rows(EVENT_AREAS, nid)[(nid, e.originator_version)] = {
        "nominal_id": nid,
        "version": e.originator_version,
        "position": position,
        "type": e.type,
        "area": area,
    }


PROJECTION = Projection(
    name="event_areas",
    tables=(EVENT_AREAS, RECORD_AREAS),
    handlers={
        "NominalRegistered": _registered,
        **dict.fromkeys(MOVES, _moved),
        EVERY_EVENT: _every,
    },
)
