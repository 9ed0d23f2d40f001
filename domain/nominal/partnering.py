"""Who is on the record: partners, their officers, and the lead agency."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from domain.agencies import is_responsible_authority, parse_agency
from domain.chain import format_instant
from domain.errors import InvariantViolated, NoChange
from domain.nominal.common import Apply, Decide, Payload, partnered

if TYPE_CHECKING:
    from domain.nominal import Nominal


def _decide_partnered(n: Nominal, p: Payload, _: datetime) -> Payload:
    p["agency"] = parse_agency(p["agency"])
    if p["agency"] in n.partners:
        raise NoChange(f"{p['agency']} is already a partner of this record")
    return p


def _decide_partnering_ended(n: Nominal, p: Payload, _: datetime) -> Payload:
    agency = partnered(n, p["agency"], "payload.agency")
    p["agency"] = agency
    if agency == n.lead_agency:
        raise InvariantViolated(
            f"{agency} leads this record: change the lead agency before ending its partnering"
        )
    remaining = [a for a in n.partners if a != agency and is_responsible_authority(a)]
    if not remaining:
        raise InvariantViolated(
            "ending this partnering would leave no Responsible Authority "
            "(police, probation or prison) partnered to the record"
        )
    return p


def _decide_officer(n: Nominal, p: Payload, _: datetime) -> Payload:
    p["agency"] = partnered(n, p["agency"], "payload.agency")
    return p


def _decide_lead(n: Nominal, p: Payload, _: datetime) -> Payload:
    agency = partnered(n, p["agency"], "payload.agency")
    if agency == n.lead_agency:
        raise NoChange(f"{agency} already leads this record")
    p["agency"] = agency
    p["from"] = n.lead_agency
    return p


def partner(n: Nominal, agency: str, e: Any, reason: str) -> None:
    """Make the agency a partner from this event on."""
    n.partners[agency] = {
        "since": format_instant(e.timestamp),
        "by": e.recorded_by["agency"],
        "reason": reason,
    }


def _apply_partnered(n: Nominal, e: Any) -> None:
    partner(n, e.payload["agency"], e, e.payload["reason"])


def _apply_partnering_ended(n: Nominal, e: Any) -> None:
    agency = e.payload["agency"]
    was = n.partners.pop(agency)
    n.officers.pop(agency, None)
    n.past_partners.append(
        {
            "agency": agency,
            "since": was["since"],
            "by": was["by"],
            "until": format_instant(e.timestamp),
            "ended_by": e.recorded_by["agency"],
            "reason": e.payload["reason"],
        }
    )


def _apply_officer(n: Nominal, e: Any) -> None:
    n.officers[e.payload["agency"]] = {
        "officer": e.payload["officer"],
        "supervisor": e.payload.get("supervisor"),
        "since": format_instant(e.timestamp),
    }


def _apply_lead(n: Nominal, e: Any) -> None:
    n.lead_agency = e.payload["agency"]


DECIDE: dict[str, Decide] = {
    "AgencyPartnered": _decide_partnered,
    "PartneringEnded": _decide_partnering_ended,
    "OfficerAssigned": _decide_officer,
    "LeadAgencyChanged": _decide_lead,
}

APPLY: dict[str, Apply] = {
    "AgencyPartnered": _apply_partnered,
    "PartneringEnded": _apply_partnering_ended,
    "OfficerAssigned": _apply_officer,
    "LeadAgencyChanged": _apply_lead,
}
