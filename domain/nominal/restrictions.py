"""Orders and risk: restrictions as they are made, varied and ended; risk assessments; the
risk management plan.

An order stays on the record until a `RestrictionEnded` says it ended (or a retraction says
it was never right); one past its `ends_on` that nobody has ended shows as expired. Whether
an order is in force depends on the day it is asked, so the view says it for a given day
(`status_on`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from domain.calendar import london_date
from domain.errors import InvalidValue, InvariantViolated, NoChange
from domain.nominal.common import (
    Apply,
    Decide,
    Payload,
    day_of,
    decide_free,
    not_after_recording,
    stamp,
)

if TYPE_CHECKING:
    from domain.nominal import Nominal


def status_on(restriction: dict[str, Any], today: date) -> str:
    """An order not ended, on a day: not yet in force, in force, or expired (past ends_on)."""
    if date.fromisoformat(restriction["starts_on"]) > today:
        return "not_yet_in_force"
    ends_on = restriction.get("ends_on")
    if ends_on is not None and date.fromisoformat(ends_on) < today:
        return "expired"
    return "in_force"


def known_restriction(n: Nominal, restriction_id: Any, field: str) -> dict[str, Any]:
    """A restriction of this record not ended (InvariantViolated naming it otherwise)."""
    restriction = n.items["restrictions"].get(str(restriction_id))
    if restriction is not None:
        return restriction
    ended = n.ended_restrictions.get(str(restriction_id))
    if ended is not None:
        raise InvariantViolated(
            f"restriction {restriction_id} ended on {ended['ended']['ended_on']}", field=field
        )
    raise InvariantViolated(
        f"no restriction {restriction_id} is on this record (the event_id of its "
        "RestrictionRecorded, not retracted)",
        field=field,
    )


def _decide_varied(n: Nominal, p: Payload, recorded_at: datetime) -> Payload:
    r = known_restriction(n, p["restriction"], "payload.restriction")
    if status_on(r, london_date(recorded_at)) == "expired":
        raise InvariantViolated(
            f"restriction {p['restriction']} expired on {r['ends_on']}: record its end "
            "(RestrictionEnded) or the new order (RestrictionRecorded)",
            field="payload.restriction",
        )
    details, ends_on = p.get("details"), p.get("ends_on")
    if details is None and ends_on is None:
        raise InvalidValue("say what is varied: details, ends_on or both", field="payload")
    if ends_on is not None and day_of(ends_on, "payload.ends_on") < day_of(
        r["starts_on"], "payload.ends_on"
    ):
        raise InvalidValue(
            f"the order starts on {r['starts_on']}: it cannot end before", field="payload.ends_on"
        )
    if details in (None, r["details"]) and ends_on in (None, r.get("ends_on")):
        raise NoChange("the order already says this")
    p["from"] = {"details": r["details"], "ends_on": r.get("ends_on")}
    return p


def _decide_ended(n: Nominal, p: Payload, recorded_at: datetime) -> Payload:
    r = known_restriction(n, p["restriction"], "payload.restriction")
    ended_on = not_after_recording(p["ended_on"], recorded_at, "payload.ended_on", "an ending")
    if ended_on < date.fromisoformat(r["starts_on"]):
        raise InvalidValue(
            f"the order starts on {r['starts_on']}: it cannot end before", field="payload.ended_on"
        )
    return p


def _apply_recorded(n: Nominal, e: Any) -> None:
    n.items["restrictions"][e.event_id] = stamp(e) | e.payload


def _apply_varied(n: Nominal, e: Any) -> None:
    p = e.payload
    r = n.items["restrictions"][p["restriction"]]
    if p.get("details") is not None:
        r["details"] = p["details"]
    if p.get("ends_on") is not None:
        r["ends_on"] = p["ends_on"]
    variation = {k: v for k, v in p.items() if k != "restriction"}
    r["variations"] = [*r.get("variations", []), stamp(e) | variation]


def _apply_ended(n: Nominal, e: Any) -> None:
    p = e.payload
    r = n.items["restrictions"].pop(p["restriction"])
    ended = {"ended_on": p["ended_on"], "reason": p["reason"]}
    n.ended_restrictions[p["restriction"]] = r | {"ended": stamp(e) | ended}


def _apply_assessment(n: Nominal, e: Any) -> None:
    n.items["risk_assessments"][e.event_id] = stamp(e) | e.payload


def _apply_plan(n: Nominal, e: Any) -> None:
    n.risk_management_plan = stamp(e) | e.payload


DECIDE: dict[str, Decide] = {
    "RestrictionRecorded": decide_free,
    "RestrictionVaried": _decide_varied,
    "RestrictionEnded": _decide_ended,
    "RiskAssessmentRecorded": decide_free,
    "RiskManagementPlanUpdated": decide_free,
}

APPLY: dict[str, Apply] = {
    "RestrictionRecorded": _apply_recorded,
    "RestrictionVaried": _apply_varied,
    "RestrictionEnded": _apply_ended,
    "RiskAssessmentRecorded": _apply_assessment,
    "RiskManagementPlanUpdated": _apply_plan,
}
