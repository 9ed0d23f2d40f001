"""What the agencies write on the record: entries (some restricted to named agencies), and
retractions, which hide a wrong item from current views and keep it in history."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from domain.agencies import parse_agency
from domain.errors import InvalidValue, InvariantViolated, NoChange
from domain.nominal.common import Apply, Decide, Payload, stamp

if TYPE_CHECKING:
    from domain.nominal import Nominal

# Events whose item a retraction may hide from current views (they stay in history).
RETRACTABLE = frozenset({"EntryRecorded", "RestrictionRecorded", "RiskAssessmentRecorded"})

# What stands in for the posting officer of a restricted entry, shown to other partners.
WITHHELD = "restricted"


def _decide_entry(n: Nominal, p: Payload, _: datetime) -> Payload:
    if p.get("restricted_to") is None:
        p.pop("restricted_to", None)  # an entry for every partner is stored as before
        return p
    if not p["restricted_to"]:
        raise InvalidValue(
            "a restricted entry names the agencies that may read it", field="payload.restricted_to"
        )
    p["restricted_to"] = list(dict.fromkeys(parse_agency(a) for a in p["restricted_to"]))
    return p


def _apply_entry(n: Nominal, e: Any) -> None:
    n.items["entries"][e.event_id] = stamp(e) | e.payload
    if e.payload.get("restricted_to"):
        n.restricted[e.event_id] = {
            "agency": e.recorded_by["agency"],
            "restricted_to": list(e.payload["restricted_to"]),
        }


def may_read(poster: str, restricted_to: list[str], agency: str) -> bool:
    """Whether an agency reads a restricted entry whole: the one that posted it, or one it
    names (auditors read every entry, and say why: the service decides that)."""
    return agency == poster or agency in restricted_to


def placeholder(item: dict[str, Any]) -> dict[str, Any]:
    """A restricted entry as other partners see it in a view: that it exists, its type, its
    date and the posting agency; never its subject, body, officer or who may read it."""
    return {
        "event_id": item["event_id"],
        "occurred_at": item["occurred_at"],
        "recorded_at": item["recorded_at"],
        "recorded_by": {"sub": WITHHELD, "agency": item["recorded_by"]["agency"]},
        "entry_type": item["entry_type"],
        "restricted": True,
    }


def is_restricted(event: dict[str, Any]) -> bool:
    """Whether a stored event (as the API shows it) is a restricted entry."""
    return event["type"] == "EntryRecorded" and bool(event["payload"].get("restricted_to"))


def redacted(event: dict[str, Any]) -> dict[str, Any]:
    """A restricted entry's stored event as other partners see it in a history: its place in
    the chain (version, hashes) and the placeholder's fields as its payload. Its hash is over
    the whole event, so it cannot be checked from this; the next event's `prev_hash` still
    links to it."""
    return event | {
        "recorded_by": {"sub": WITHHELD, "agency": event["recorded_by"]["agency"]},
        "payload": {"entry_type": event["payload"]["entry_type"], "restricted": True},
    }


def _decide_retraction(n: Nominal, p: Payload, _: datetime) -> Payload:
    target = n.event_log.get(p["retracts"])
    if target is None or target["type"] not in RETRACTABLE:
        raise InvariantViolated(
            "only an entry, restriction or risk assessment of this record can be retracted",
            field="payload.retracts",
        )
    if p["retracts"] in n.retracted:
        raise NoChange("that entry is already retracted")
    return p


def _apply_retraction(n: Nominal, e: Any) -> None:
    target = e.payload["retracts"]
    for items in n.items.values():
        items.pop(target, None)
    n.ended_restrictions.pop(target, None)
    n.retracted[target] = stamp(e) | e.payload


DECIDE: dict[str, Decide] = {
    "EntryRecorded": _decide_entry,
    "EntryRetracted": _decide_retraction,
}

APPLY: dict[str, Apply] = {
    "EntryRecorded": _apply_entry,
    "EntryRetracted": _apply_retraction,
}
