"""Multi-agency management in meetings: meetings, their minutes, disclosure decisions and
the actions they set."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from domain.agencies import parse_agency
from domain.errors import InvalidValue, InvariantViolated
from domain.mappa import minutes_timeliness
from domain.nominal.common import Apply, Decide, Payload, stamp
from domain.nominal.management import require_multi_agency_level

if TYPE_CHECKING:
    from domain.nominal import Nominal


def _decide_meeting(n: Nominal, p: Payload, _: datetime) -> Payload:
    require_multi_agency_level(p["level"], "payload.level")
    if p["meeting_id"] in n.meetings:
        raise InvariantViolated(f"meeting {p['meeting_id']!r} is already recorded")
    return p


def _decide_minutes(n: Nominal, p: Payload, recorded_at: datetime) -> Payload:
    level = require_multi_agency_level(p["level"], "payload.level")
    timeliness = minutes_timeliness(date.fromisoformat(p["meeting_date"]), level, recorded_at)
    p["due_on"] = timeliness.due_on.isoformat()
    p["working_days_taken"] = timeliness.working_days_taken
    p["late"] = timeliness.late
    return p


def _decide_disclosure(n: Nominal, p: Payload, _: datetime) -> Payload:
    meeting_id = p.get("meeting_id")
    if meeting_id is not None and meeting_id not in n.meetings:
        raise InvariantViolated(
            f"no meeting {meeting_id!r} is recorded", field="payload.meeting_id"
        )
    if p["decision"] == "disclose" and not p.get("recipient"):
        raise InvalidValue("a disclosure names its recipient", field="payload.recipient")
    return p


def _decide_action_set(n: Nominal, p: Payload, _: datetime) -> Payload:
    if p["action_id"] in n.actions:
        raise InvariantViolated(f"action {p['action_id']!r} is already set")
    meeting_id = p.get("meeting_id")
    if meeting_id is not None and meeting_id not in n.meetings:
        raise InvariantViolated(
            f"no meeting {meeting_id!r} is recorded", field="payload.meeting_id"
        )
    p["assigned_agency"] = parse_agency(p["assigned_agency"])
    return p


def _decide_action_completed(n: Nominal, p: Payload, _: datetime) -> Payload:
    action = n.actions.get(p["action_id"])
    if action is None:
        raise InvariantViolated(f"no action {p['action_id']!r} is set", field="payload.action_id")
    if action.get("completed_on") is not None:
        raise InvariantViolated(f"action {p['action_id']!r} is already completed")
    if not str(p.get("outcome", "")).strip():
        raise InvalidValue("say what was found or done", field="payload.outcome")
    return p


def _apply_meeting(n: Nominal, e: Any) -> None:
    n.meetings[e.payload["meeting_id"]] = stamp(e) | e.payload


def _apply_minutes(n: Nominal, e: Any) -> None:
    n.minutes.append(stamp(e) | e.payload)


def _apply_disclosure(n: Nominal, e: Any) -> None:
    n.disclosure_decisions.append(stamp(e) | e.payload)


def _apply_action_set(n: Nominal, e: Any) -> None:
    n.actions[e.payload["action_id"]] = (
        stamp(e) | e.payload | {"completed_on": None, "outcome": None}
    )


def _apply_action_completed(n: Nominal, e: Any) -> None:
    action = n.actions[e.payload["action_id"]]
    action["completed_on"] = e.payload["completed_on"]
    action["outcome"] = e.payload["outcome"]


DECIDE: dict[str, Decide] = {
    "MeetingHeld": _decide_meeting,
    "MinutesUploaded": _decide_minutes,
    "DisclosureDecisionRecorded": _decide_disclosure,
    "ActionSet": _decide_action_set,
    "ActionCompleted": _decide_action_completed,
}

APPLY: dict[str, Apply] = {
    "MeetingHeld": _apply_meeting,
    "MinutesUploaded": _apply_minutes,
    "DisclosureDecisionRecorded": _apply_disclosure,
    "ActionSet": _apply_action_set,
    "ActionCompleted": _apply_action_completed,
}
