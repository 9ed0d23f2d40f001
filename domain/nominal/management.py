"""How the person is managed under MAPPA: level and category, referrals and level 1 reviews,
whether they were told, and Critical Public Protection Cases."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from domain.agencies import parse_agency
from domain.errors import InvalidValue, InvariantViolated, NoChange
from domain.mappa import Level, parse_category, parse_level, require_category_level
from domain.nominal.common import Apply, Decide, Payload, decide_free, not_after_recording, stamp

if TYPE_CHECKING:
    from domain.nominal import Nominal


def require_multi_agency_level(value: Any, field: str) -> Level:
    level = parse_level(value)
    if level is Level.ONE:
        raise InvariantViolated("meetings and minutes are for levels 2 and 3 only", field=field)
    return level


def _decide_level(n: Nominal, p: Payload, _: datetime) -> Payload:
    to = parse_level(p["to"])
    if to == n.level:
        raise NoChange(f"the record is already at level {int(to)}")
    require_category_level(parse_category(n.category), to)
    if n.critical_case is not None and to is not Level.THREE:
        # 000, para 7.5: a Critical Public Protection Case is a level 3 case.
        raise InvariantViolated(
            "the record is a Critical Public Protection Case: end it (CriticalCaseEnded) "
            "before it leaves level 3",
            field="payload.to",
        )
    p["from"] = n.level
    return p


def _decide_category(n: Nominal, p: Payload, _: datetime) -> Payload:
    to = parse_category(p["to"])
    if to == n.category:
        raise NoChange(f"the record is already category {int(to)}")
    require_category_level(to, parse_level(n.level))
    p["from"] = n.category
    return p


def _decide_referral(n: Nominal, p: Payload, _: datetime) -> Payload:
    require_multi_agency_level(p["requested_level"], "payload.requested_level")
    if p["referral_id"] in n.referrals:
        raise InvariantViolated(f"referral {p['referral_id']!r} is already recorded")
    for i, invite in enumerate(p["agencies_to_invite"]):
        invite["agency"] = parse_agency(invite["agency"])
        if not invite.get("why"):
            raise InvalidValue(
                "say why the agency is invited", field=f"payload.agencies_to_invite.{i}.why"
            )
    return p


def _decide_referral_decided(n: Nominal, p: Payload, _: datetime) -> Payload:
    referral = n.referrals.get(p["referral_id"])
    if referral is None:
        raise InvariantViolated(
            f"no referral {p['referral_id']!r} is recorded", field="payload.referral_id"
        )
    if referral.get("decision") is not None:
        raise InvariantViolated(f"referral {p['referral_id']!r} is already decided")
    return p


def _decide_status_explained(n: Nominal, p: Payload, recorded_at: datetime) -> Payload:
    not_after_recording(p["explained_on"], recorded_at, "payload.explained_on", "an explanation")
    p["by"] = parse_agency(p["by"])
    p["level_explained"] = int(parse_level(p["level_explained"]))
    return p


def _decide_critical_case(n: Nominal, p: Payload, recorded_at: datetime) -> Payload:
    not_after_recording(p["on"], recorded_at, "payload.on", "a registration")
    if n.critical_case is not None:
        raise NoChange("the record is already a Critical Public Protection Case")
    if n.level != Level.THREE:
        raise InvariantViolated(
            f"a Critical Public Protection Case is managed at level 3; the record is at level "
            f"{n.level} (000, para 7.5)"
        )
    return p


def _decide_critical_case_ended(n: Nominal, p: Payload, recorded_at: datetime) -> Payload:
    not_after_recording(p["on"], recorded_at, "payload.on", "an ending")
    if n.critical_case is None:
        raise NoChange("the record is not a Critical Public Protection Case")
    if p["on"] < n.critical_case["on"]:
        raise InvalidValue("a case ends after it was registered", field="payload.on")
    return p


def _apply_level(n: Nominal, e: Any) -> None:
    n.level = e.payload["to"]


def _apply_category(n: Nominal, e: Any) -> None:
    n.category = e.payload["to"]


def _apply_referral(n: Nominal, e: Any) -> None:
    n.referrals[e.payload["referral_id"]] = stamp(e) | e.payload | {"decision": None}


def _apply_referral_decided(n: Nominal, e: Any) -> None:
    referral = n.referrals[e.payload["referral_id"]]
    referral["decision"] = {k: v for k, v in e.payload.items() if k != "referral_id"}


def _apply_level1_review(n: Nominal, e: Any) -> None:
    n.level1_reviews.append(stamp(e) | e.payload)


def _apply_status_explained(n: Nominal, e: Any) -> None:
    n.mappa_status_explained.append(stamp(e) | e.payload)


def _apply_critical_case(n: Nominal, e: Any) -> None:
    n.critical_case = stamp(e) | e.payload


def _apply_critical_case_ended(n: Nominal, e: Any) -> None:
    assert n.critical_case is not None
    n.critical_cases_ended.append(n.critical_case | {"ended": stamp(e) | e.payload})
    n.critical_case = None


DECIDE: dict[str, Decide] = {
    "LevelChanged": _decide_level,
    "CategoryChanged": _decide_category,
    "ReferralMade": _decide_referral,
    "ReferralDecided": _decide_referral_decided,
    "Level1ReviewRecorded": decide_free,
    "MappaStatusExplained": _decide_status_explained,
    "CriticalCaseRegistered": _decide_critical_case,
    "CriticalCaseEnded": _decide_critical_case_ended,
}

APPLY: dict[str, Apply] = {
    "LevelChanged": _apply_level,
    "CategoryChanged": _apply_category,
    "ReferralMade": _apply_referral,
    "ReferralDecided": _apply_referral_decided,
    "Level1ReviewRecorded": _apply_level1_review,
    "MappaStatusExplained": _apply_status_explained,
    "CriticalCaseRegistered": _apply_critical_case,
    "CriticalCaseEnded": _apply_critical_case_ended,
}
