"""Where the person is: custody, and the area whose MAPPA manages them.

A move between areas is a request by the sending side naming the receiving area's MAPPA unit
and, once that unit accepts, the move itself (004, "Transfer of MAPPA cases"): the area
changes on acceptance, and the receiving unit becomes a partner. The one-step
`AreaTransferred` stays valid for records that moved before the pair existed. Either way
the move is kept in the area's history, and a request still open when the record moves
otherwise is superseded.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from domain.agencies import agency_type, parse_agency
from domain.calendar import london_date
from domain.chain import format_instant
from domain.errors import InvalidValue, InvariantViolated, NoChange
from domain.mappa import parse_area
from domain.nominal.common import Apply, Decide, Payload, not_after_recording, stamp
from domain.nominal.partnering import partner

if TYPE_CHECKING:
    from domain.nominal import Nominal


def _decide_custody(n: Nominal, p: Payload, _: datetime) -> Payload:
    status = p["status"]
    in_custody = n.custody is not None and n.custody["status"] != "released"
    if status in ("received", "transferred"):
        establishment = parse_agency(p.get("establishment") or "")
        if not establishment.startswith("prison:"):
            raise InvalidValue(
                "the establishment is a prison: agency", field="payload.establishment"
            )
        p["establishment"] = establishment
        if status == "transferred" and not in_custody:
            raise InvariantViolated("a transfer is between prisons: the person is not in custody")
        if status == "transferred" and n.custody and establishment == n.custody["establishment"]:
            raise NoChange(f"the person is already held at {establishment}")
    elif not in_custody:
        raise InvariantViolated("the person is not in custody")
    return p


def _apply_custody(n: Nominal, e: Any) -> None:
    n.custody = {
        "status": e.payload["status"],
        "establishment": e.payload.get("establishment"),
        "expected_release_on": e.payload.get("expected_release_on"),
        "since": e.occurred_at,
    }


# -- areas ---------------------------------------------------------------------------------


def open_transfer_receivers(n: Nominal) -> frozenset[str]:
    """The MAPPA units named by transfer requests still open: each may accept its own."""
    return frozenset(t["receiving"] for t in n.transfers.values() if t["status"] == "open")


def known_transfer(n: Nominal, transfer_id: Any) -> dict[str, Any]:
    """A transfer request of this record (InvariantViolated naming it otherwise)."""
    transfer = n.transfers.get(str(transfer_id))
    if transfer is None:
        raise InvariantViolated(
            f"no transfer {transfer_id} was requested for this record (the event_id of its "
            "AreaTransferRequested)",
            field="payload.transfer",
        )
    return transfer


def _decide_area(n: Nominal, p: Payload, _: datetime) -> Payload:
    p["to_area"] = parse_area(p["to_area"])
    if p["to_area"] == n.area:
        raise NoChange(f"the record is already in {n.area}")
    p["from_area"] = n.area
    return p


def _decide_transfer_requested(n: Nominal, p: Payload, _: datetime) -> Payload:
    p["to_area"] = parse_area(p["to_area"])
    if p["to_area"] == n.area:
        raise NoChange(f"the record is already in {n.area}")
    receiving = parse_agency(p["receiving"])
    if agency_type(receiving) != "mappa":
        raise InvalidValue(
            "the receiving side is the MAPPA unit of the receiving area (a mappa: agency)",
            field="payload.receiving",
        )
    for transfer_id, t in n.transfers.items():
        if t["status"] == "open" and (t["to_area"], t["receiving"]) == (p["to_area"], receiving):
            raise NoChange(f"a transfer to {receiving} is already open ({transfer_id})")
    p["receiving"] = receiving
    p["from_area"] = n.area
    return p


def _decide_transfer_accepted(n: Nominal, p: Payload, recorded_at: datetime) -> Payload:
    t = known_transfer(n, p["transfer"])
    if t["status"] == "accepted":
        raise NoChange(f"transfer {p['transfer']} was accepted already")
    if t["status"] == "superseded":
        raise InvariantViolated(
            f"the record has moved to {n.area} since transfer {p['transfer']} was requested",
            field="payload.transfer",
        )
    accepted_on = not_after_recording(
        p["accepted_on"], recorded_at, "payload.accepted_on", "an acceptance"
    )
    requested_on = london_date(datetime.fromisoformat(t["recorded_at"].replace("Z", "+00:00")))
    if accepted_on < requested_on:
        raise InvalidValue(
            f"the transfer was requested on {requested_on}: it is accepted after",
            field="payload.accepted_on",
        )
    p["from_area"], p["to_area"], p["receiving"] = n.area, t["to_area"], t["receiving"]
    return p


def _moved(n: Nominal, e: Any, to_area: str) -> None:
    n.area = to_area
    since = format_instant(e.timestamp)
    n.area_history.append(
        {"area": to_area, "since": since, "event_id": e.event_id, "type": type(e).__name__}
    )
    for t in n.transfers.values():
        if t["status"] == "open":
            t["status"] = "superseded"


def _apply_area(n: Nominal, e: Any) -> None:
    _moved(n, e, e.payload["to_area"])


def _apply_transfer_requested(n: Nominal, e: Any) -> None:
    n.transfers[e.event_id] = stamp(e) | e.payload | {"status": "open", "accepted": None}


def _apply_transfer_accepted(n: Nominal, e: Any) -> None:
    p = e.payload
    _moved(n, e, p["to_area"])
    transfer = n.transfers[p["transfer"]]
    transfer["status"] = "accepted"
    transfer["accepted"] = stamp(e) | {"accepted_on": p["accepted_on"]}
    if p["receiving"] not in n.partners:
        partner(n, p["receiving"], e, f"area transfer from {p['from_area']}")


DECIDE: dict[str, Decide] = {
    "CustodyChanged": _decide_custody,
    "AreaTransferred": _decide_area,
    "AreaTransferRequested": _decide_transfer_requested,
    "AreaTransferAccepted": _decide_transfer_accepted,
}

APPLY: dict[str, Apply] = {
    "CustodyChanged": _apply_custody,
    "AreaTransferred": _apply_area,
    "AreaTransferRequested": _apply_transfer_requested,
    "AreaTransferAccepted": _apply_transfer_accepted,
}
