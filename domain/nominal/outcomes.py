"""What happened next: breaches, recalls and further offences, the outcomes the 2015
inspection asked Strategic Management Boards to be shown (000, recommendations, para 3.5)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from domain.errors import InvariantViolated
from domain.nominal.common import Apply, Decide, Payload, not_after_recording, stamp

if TYPE_CHECKING:
    from domain.nominal import Nominal

# What a breach may be of, besides a restriction of the record (named by its event_id).
BREACH_OF = ("licence", "notification_requirements")


def _decide_breach(n: Nominal, p: Payload, recorded_at: datetime) -> Payload:
    not_after_recording(p["occurred_on"], recorded_at, "payload.occurred_on", "a breach")
    of = str(p["of"])
    orders = n.items["restrictions"].keys() | n.ended_restrictions.keys()
    if of not in BREACH_OF and of not in orders:
        raise InvariantViolated(
            f"a breach is of the licence, the notification requirements or a restriction "
            f"of this record (its event_id); no restriction {of} is on this record",
            field="payload.of",
        )
    return p


def _decide_recall(n: Nominal, p: Payload, recorded_at: datetime) -> Payload:
    not_after_recording(p["recalled_on"], recorded_at, "payload.recalled_on", "a recall")
    return p


def _decide_further_offence(n: Nominal, p: Payload, recorded_at: datetime) -> Payload:
    not_after_recording(p["charged_on"], recorded_at, "payload.charged_on", "a charge")
    return p


def _appender(kind: str) -> Apply:
    def apply(n: Nominal, e: Any) -> None:
        getattr(n, kind).append(stamp(e) | e.payload)

    return apply


DECIDE: dict[str, Decide] = {
    "BreachRecorded": _decide_breach,
    "RecallRecorded": _decide_recall,
    "FurtherOffenceRecorded": _decide_further_offence,
}

APPLY: dict[str, Apply] = {
    "BreachRecorded": _appender("breaches"),
    "RecallRecorded": _appender("recalls"),
    "FurtherOffenceRecorded": _appender("further_offences"),
}
